"""Digests to Teams channels through the outbox, by Graph (the real msgraph-sdk against the fake)
and by a Workflows webhook: valid cards, Retry-After, failures classified, no duplicates."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState, Marking, Platform
from bot.microsoft365.graph import (
    USER_SCOPES,
    GraphMessenger,
    graph_client,
    key_attachment_id,
)
from bot.models import Channel, Delivery
from bot.outbox import Pacer, PermanentError, RateLimited, Target, TransientError
from bot.platforms.teams.messengers import TeamsMessenger, WebhookMessenger
from bot.scheduler import make_sender
from bot.services.digests import run_digest
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.graph_api import FakeCredential, FakeGraph
from tests.outbox_support import quick_policy
from tests.support.cards import assert_valid_card

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TEAM = "2b1c3d4e-0000-4000-8000-00000000aaaa"
THREAD = "19:torfaen0000000000000000000000000@thread.tacv2"


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph() as graph:
        yield graph


@pytest.fixture
def messenger(fake: FakeGraph) -> Iterator[TeamsMessenger]:
    graph = GraphMessenger(graph_client(FakeCredential(), USER_SCOPES, fake.url, retry=False))
    yield TeamsMessenger(WebhookMessenger(timeout=5), graph)
    graph.runner.close()


def with_digest(
    app: ScrutinyApp, session: Session, seed: Seed, slug: str, webhook: str | None = None
) -> Channel:
    """A Torfaen Teams channel (Graph unless a webhook is given) with its digest queued."""
    channel = Channel(
        slug=slug,
        name=slug,
        platform=Platform.TEAMS,
        external_id=f"{TEAM}/{THREAD}" if webhook is None else f"19:{slug}@thread.tacv2",
        webhook_url=webhook,
        partner=seed.partners["torfaen"],
        clearance=Marking.OFFICIAL,
        digest_cron="0 9 * * mon",
    )
    session.add(channel)
    session.commit()
    run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    return channel


def sender(app: ScrutinyApp, messenger: TeamsMessenger) -> Any:
    return make_sender(
        app,
        {Platform.TEAMS: messenger},
        policy=quick_policy(),
        pacer=Pacer(per_channel=0, per_second=0),
    )


def deliveries(session: Session) -> list[Delivery]:
    session.expire_all()
    found = list(session.scalars(select(Delivery).order_by(Delivery.id)))
    session.commit()  # end the read, so the sender's writers never wait on this session
    return found


def test_a_digest_reaches_a_teams_channel_by_each_route_as_a_valid_card(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, messenger: TeamsMessenger
) -> None:
    with_digest(app, session, seed, "teams-graph")
    with_digest(app, session, seed, "teams-hook", fake.webhook_url("torfaen"))
    graph_row, _hook_row = deliveries(session)
    assert graph_row.payload["teams"]["body"][0]["text"].startswith(
        "SRS boards — digest for Torfaen"
    )

    report = sender(app, messenger).send_due(NOW)
    assert report.sent == 2

    [posted] = fake.messages[(TEAM, THREAD)]
    [attachment] = posted["attachments"]
    assert attachment["id"] == key_attachment_id(graph_row.idempotency_key)
    assert posted["body"] == {
        "contentType": "html",
        "content": f'<attachment id="{attachment["id"]}"></attachment>',
    }
    card = json.loads(attachment["content"])
    assert_valid_card(card)
    assert card == graph_row.payload["teams"]
    assert card["body"][0]["text"].startswith("SRS boards — digest for Torfaen")
    assert any("TP-001" in block["text"] for block in card["body"])

    [hooked] = fake.webhooks["torfaen"]
    assert hooked["type"] == "message"
    assert_valid_card(hooked["attachments"][0]["content"])
    rows = deliveries(session)
    assert [r.state for r in rows] == [DeliveryState.SENT, DeliveryState.SENT]
    assert rows[0].platform_message_id == posted["id"]


def test_graph_429_with_retry_after_defers_then_the_post_goes_once(
    app: ScrutinyApp,
    session: Session,
    seed: Seed,
    fake: FakeGraph,
    messenger: TeamsMessenger,
    clock: Clock,
) -> None:
    with_digest(app, session, seed, "teams-graph")
    fake.fail("/messages", 429, retry_after="30", method="POST")
    assert sender(app, messenger).send_due(NOW).deferred == 1
    [row] = deliveries(session)
    assert row.state is DeliveryState.PENDING and row.next_try_at == NOW + timedelta(seconds=30)
    clock.set(NOW + timedelta(seconds=10))
    assert sender(app, messenger).send_due().handled == 0
    clock.set(NOW + timedelta(seconds=31))
    assert sender(app, messenger).send_due().sent == 1
    assert len(fake.messages[(TEAM, THREAD)]) == 1


def test_after_an_uncertain_failure_graph_finds_the_post_instead_of_posting_again(
    app: ScrutinyApp, session: Session, seed: Seed, fake: FakeGraph, messenger: TeamsMessenger
) -> None:
    channel = with_digest(app, session, seed, "teams-graph")
    [row] = deliveries(session)
    # The first attempt reached Teams, but its answer was lost.
    messenger.post(Target.of(channel), row.payload, key=row.idempotency_key)
    row.maybe_posted = True
    session.commit()
    report = sender(app, messenger).send_due(NOW)
    assert report.found_already_posted == 1 and report.sent == 0
    assert len(fake.messages[(TEAM, THREAD)]) == 1


def test_an_uncertain_graph_post_settles_past_the_client_timeout_before_it_is_looked_up(
    app: ScrutinyApp,
    session: Session,
    seed: Seed,
    fake: FakeGraph,
    messenger: TeamsMessenger,
    clock: Clock,
) -> None:
    with_digest(app, session, seed, "teams-graph")
    fake.fail("/messages", 500, method="POST")
    assert sender(app, messenger).send_due(NOW).retrying == 1
    [row] = deliveries(session)
    # Graph calls may take 60 s: the same rule as Slack's, three client timeouts.
    settle = timedelta(seconds=3 * 60)
    assert row.maybe_posted and row.next_try_at == NOW + settle
    clock.set(NOW + settle - timedelta(seconds=1))
    assert sender(app, messenger).send_due().handled == 0
    clock.set(NOW + settle)
    assert sender(app, messenger).send_due().sent == 1
    assert len(fake.messages[(TEAM, THREAD)]) == 1


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        (429, "7", RateLimited),
        (503, "5", RateLimited),
        (500, None, TransientError),
        (502, None, TransientError),
        (400, None, PermanentError),
        (404, None, PermanentError),
    ],
)
def test_failures_are_classified_for_the_outbox(
    fake: FakeGraph,
    messenger: TeamsMessenger,
    status: int,
    retry_after: str | None,
    expected: type[Exception],
) -> None:
    hook = Target(Platform.TEAMS, "19:x@thread.tacv2", "hook", "hook", fake.webhook_url("x"))
    graph = Target(Platform.TEAMS, f"{TEAM}/{THREAD}", "graph", "graph")
    for target, path in ((hook, "/workflows/"), (graph, "/messages")):
        fake.fail(path, status, retry_after=retry_after)
        with pytest.raises(expected) as raised:
            messenger.post(target, {"text": "Hello", "languages": ["en"]}, key=f"k-{status}")
        if isinstance(raised.value, RateLimited):
            assert raised.value.retry_after == float(retry_after or 0)
        if isinstance(raised.value, TransientError):
            assert raised.value.maybe_posted
    assert fake.messages == {} and fake.webhooks == {}


def test_a_webhook_keeps_no_history_and_a_graph_channel_needs_its_team(
    messenger: TeamsMessenger, fake: FakeGraph
) -> None:
    hook = Target(Platform.TEAMS, "19:x@thread.tacv2", "hook", "hook", fake.webhook_url("x"))
    assert messenger.post(hook, {"text": "Hi"}, key="k1") == "webhook:k1"
    assert messenger.find_posted(hook, "k1", since=NOW) is None
    no_team = Target(Platform.TEAMS, "19:x@thread.tacv2", "lonely", "lonely")
    with pytest.raises(PermanentError, match="team id"):
        messenger.post(no_team, {"text": "Hi"}, key="k2")
    unreachable = Target(
        Platform.TEAMS, "19:y@thread.tacv2", "down", "down", "http://127.0.0.1:9/workflows/y"
    )
    with pytest.raises(TransientError) as refused:
        messenger.post(unreachable, {"text": "Hi"}, key="k3")
    assert not refused.value.maybe_posted
