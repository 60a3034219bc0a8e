"""The Slack messenger's kept-alive connections (`bot.platforms.slack.keepalive`), against the
fake Web API on 127.0.0.1: posts share connections, a connection the server closed is replaced
without posting twice, and the SDK's answers (429 Retry-After, errors) still reach the outbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState, Platform
from bot.outbox import Pacer, RateLimited, Target, TransientError
from tests.conftest import NOW
from tests.factories import Seed
from tests.outbox_support import add_post, fake_slack, reload, seconds_of, sender_for
from tests.outbox_support import slack_messenger as messenger_for

TARGET = Target(Platform.SLACK, "C0TOR00001", "srs-torfaen", "#srs-torfaen")
PAYLOAD = {"text": "Papers due"}


def test_many_posts_share_one_connection(app: ScrutinyApp) -> None:
    with fake_slack() as fake:
        messenger = messenger_for(fake, app.sessions)
        for n in range(25):
            messenger.post(TARGET, PAYLOAD, key=f"k-{n}")
        assert len(fake.posted) == 25
        assert fake.connections_seen == 1


def test_a_fan_out_opens_a_connection_per_post_in_flight_not_per_post(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    channels = [c for c in seed.channels.values() if c.platform is Platform.SLACK]
    deliveries = [
        add_post(session, app, channel, f"k-fan-{n}-{channel.slug}")
        for n in range(5)
        for channel in channels
    ]
    with fake_slack() as fake, clock.frozen(NOW):
        report = sender_for(app, fake, concurrency=3).send_due()
        assert report.sent == len(deliveries)
        assert set(fake.keys().values()) == {1}
        assert 1 <= fake.connections_seen <= 3
    assert {reload(session, d.id).state for d in deliveries} == {DeliveryState.SENT}


def test_a_connection_the_server_closed_is_replaced_without_posting_twice(
    app: ScrutinyApp,
) -> None:
    with fake_slack() as fake:
        messenger = messenger_for(fake, app.sessions)
        messenger.post(TARGET, PAYLOAD, key="k-before")
        # As an idle timeout would: the kept connection is closed from the server's side.
        assert fake.close_connections() == 1
        messenger.post(TARGET, PAYLOAD, key="k-after")
        assert fake.keys() == {"k-before": 1, "k-after": 1}
        assert fake.connections_seen == 2


def test_a_connection_dropped_after_the_request_is_not_posted_again_blindly(
    app: ScrutinyApp,
) -> None:
    with fake_slack() as fake:
        messenger = messenger_for(fake, app.sessions)
        messenger.post(TARGET, PAYLOAD, key="k-first")
        fake.drop_after_post()
        # The request arrived whole and was stored; the answer never came. Sending it again
        # here would post twice, so the outbox is told it may have been posted.
        with pytest.raises(TransientError) as raised:
            messenger.post(TARGET, PAYLOAD, key="k-dropped")
        assert raised.value.maybe_posted
        assert fake.keys()["k-dropped"] == 1
        messenger.post(TARGET, PAYLOAD, key="k-next")
        assert fake.keys()["k-next"] == 1


def test_a_429_on_a_kept_connection_still_holds_the_channel(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-held")
    with fake_slack() as fake, clock.frozen(NOW) as traveller:
        pacer = Pacer(per_channel=1.0, per_second=50, clock=seconds_of(app))
        sender = sender_for(app, fake, pacer=pacer)
        fake.fail_next("chat.postMessage", 429, retry_after=7)
        with pytest.raises(RateLimited) as raised:
            sender.messengers[Platform.SLACK].post(TARGET, PAYLOAD, key="k-direct")
        assert raised.value.retry_after == 7

        fake.fail_next("chat.postMessage", 429, retry_after=7)
        assert sender.send_due().deferred == 1
        assert pacer.delay(Platform.SLACK, "C0TOR00001") == pytest.approx(7)
        assert sender.send_due().handled == 0
        traveller.advance(timedelta(seconds=7))
        assert sender.send_due().sent == 1
        # Both 429s and the post went over the one kept connection.
        assert fake.connections_seen == 1
    assert reload(session, delivery.id).state is DeliveryState.SENT
    assert fake.keys()["k-held"] == 1
