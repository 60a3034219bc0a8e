"""The outbox posting to Teams as the app: the real Teams SDK API client against the local Bot
Connector, signed in at the local token issuer. Digests start a new thread in the channel,
a post naming an earlier one replies in its thread or updates it in place, a 429 is waited out
without a second post, and a post whose answer was lost is found by its key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import DeliveryState, Platform
from bot.models import Channel, Delivery
from bot.outbox import THREAD_OF, UPDATE_OF, Target, enqueue
from bot.platforms.teams.connector_messenger import ConnectorMessenger
from bot.posted_messages import PostedRegister
from bot.services.digests import run_digest
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import THREAD, add_teams_channel, connector_messenger, send

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def messenger(
    app: ScrutinyApp, issuer: FakeTokenIssuer, connector: FakeBotConnector
) -> ConnectorMessenger:
    return connector_messenger(app, issuer, connector)


@pytest.fixture
def teams_channel(session: Session, seed: Seed) -> Channel:
    return add_teams_channel(session, seed, digest_cron="0 9 * * mon")


def card(text: str) -> dict[str, Any]:
    return {
        "teams": {
            "type": "AdaptiveCard",
            "version": "1.5",
            "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        }
    }


def test_a_digest_starts_a_new_thread_in_the_channel_as_the_app(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
    issuer: FakeTokenIssuer,
) -> None:
    run_digest(session, app.renderer, teams_channel, now=NOW)
    session.commit()
    assert send(app, messenger).sent == 1

    [created] = connector.calls_of("create")
    assert created.body["isGroup"] is True
    assert created.body["channelData"] == {"channel": {"id": THREAD}}
    [posted] = created.cards
    assert_valid_card(posted)
    assert posted["body"][0]["text"].startswith("SRS boards — digest for Torfaen")
    assert created.bearer  # the bot's own app-only token from the issuer's Entra ID
    # The activity id is kept under the delivery's key, where a retry looks for it.
    [row] = session.scalars(select(Delivery)).all()
    assert row.state is DeliveryState.SENT and row.platform_message_id in connector.posted
    found = PostedRegister(app.sessions).find(
        Platform.TEAMS, teams_channel.external_id, row.idempotency_key
    )
    assert found is not None and found.message_id == row.platform_message_id


def test_a_post_naming_an_earlier_one_replies_in_its_thread_then_updates_it_in_place(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
) -> None:
    enqueue(session, key="call", channel=teams_channel, kind="test", payload=card("Call"))
    session.commit()
    send(app, messenger)
    root = connector.calls_of("create")[0]
    root_id = next(iter(connector.posted))

    reply = {**card("Answer"), THREAD_OF: "call"}
    enqueue(session, key="answer", channel=teams_channel, kind="test", payload=reply)
    update = {**card("Call, 2 supporters"), UPDATE_OF: "call"}
    enqueue(session, key="update:call:1", channel=teams_channel, kind="test", payload=update)
    session.commit()
    assert send(app, messenger).sent == 2

    [replied] = connector.calls_of("reply")
    assert replied.conversation_id == f"{THREAD};messageid={root_id}"
    assert root_id in (replied.activity_id, replied.body.get("replyToId"))
    assert replied.cards[0]["body"][0]["text"] == "Answer"
    [updated] = connector.calls_of("update")
    assert updated.activity_id == root_id
    assert connector.posted[root_id]["attachments"][0]["content"]["body"][0]["text"] == (
        "Call, 2 supporters"
    )
    assert len(connector.calls_of("create")) == 1 and root.status == 201


@pytest.mark.parametrize("status", [429, 500])
def test_a_failed_post_waits_its_time_then_goes_once(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
    clock: Any,
    status: int,
) -> None:
    row = enqueue(session, key="digest", channel=teams_channel, kind="test", payload=card("D"))
    session.commit()
    assert row is not None
    connector.fail_next("create", status, retry_after=30)
    report = send(app, messenger)
    session.refresh(row)
    assert row.state is DeliveryState.PENDING
    if status == 429:
        # The connector's Retry-After, and the post is known not to have gone.
        assert report.deferred == 1 and not row.maybe_posted
        wait = timedelta(seconds=30)
    else:
        # Maybe posted: it settles three client timeouts (Slack's rule) before it is looked
        # up, so a slow post has landed by then.
        assert report.retrying == 1 and row.maybe_posted
        wait = timedelta(seconds=3 * messenger.client_timeout)
    assert row.next_try_at == NOW + wait
    clock.advance(wait - timedelta(seconds=1))
    assert send(app, messenger).handled == 0
    clock.advance(timedelta(seconds=1))
    assert send(app, messenger).sent == 1
    assert len(connector.calls_of("create")) == 1


def test_after_a_lost_answer_the_post_is_found_by_its_key_not_posted_again(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
) -> None:
    row = enqueue(session, key="digest", channel=teams_channel, kind="test", payload=card("D"))
    assert row is not None
    session.commit()
    # The first attempt reached Teams, but the sender died before marking the row sent.
    activity_id = messenger.post(Target.of(teams_channel), row.payload, key="digest")
    row.maybe_posted = True
    session.commit()
    report = send(app, messenger)
    assert report.found_already_posted == 1 and report.sent == 0
    session.refresh(row)
    assert row.platform_message_id == activity_id
    assert len(connector.calls_of("create")) == 1


def test_connector_failures_are_classified_for_the_outbox(
    app: ScrutinyApp,
    session: Session,
    teams_channel: Channel,
    messenger: ConnectorMessenger,
    connector: FakeBotConnector,
) -> None:
    first = enqueue(session, key="d1", channel=teams_channel, kind="test", payload=card("D"))
    session.commit()
    assert first is not None
    connector.fail_next("create", 500)
    assert send(app, messenger).retrying == 1
    session.refresh(first)
    assert first.maybe_posted and first.state is DeliveryState.PENDING

    connector.fail_next("create", 403)
    second = enqueue(session, key="d2", channel=teams_channel, kind="test", payload=card("D"))
    session.commit()
    assert send(app, messenger).failed == 1
    assert len(connector.calls_of("create")) == 0

    # An update waits for the post it updates (and fails, telling the secretariat, if that
    # post never goes).
    update = {**card("U"), UPDATE_OF: "d1"}
    enqueue(session, key="update:d1:1", channel=teams_channel, kind="test", payload=update)
    session.commit()
    assert send(app, messenger).retrying == 1
    assert connector.calls_of("update", ok=False) == []
    assert second is not None
