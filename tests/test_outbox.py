"""The outbox against the fake Slack Web API through the real slack_sdk client: posts once,
records the ts, retries, honours Retry-After, never double-posts after an ambiguous failure."""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState, Marking, Platform
from bot.models import AuditEvent, Channel, Delivery
from bot.outbox import Pacer, Target, enqueue, retry_failed
from bot.platforms.console.messenger import ConsoleMessenger
from bot.platforms.slack.messenger import SlackMessenger
from bot.scheduler import make_sender
from bot.services.digests import run_digest
from tests.conftest import NOW
from tests.factories import Seed
from tests.outbox_support import (
    add_post,
    fake_slack,
    quick_policy,
    reload,
    seconds_of,
    sender_for,
    slack_messenger,
    slack_with_events,
)


def test_enqueue_ignores_a_key_that_exists(session: Session, app: ScrutinyApp, seed: Seed) -> None:
    channel = seed.channels["srs-torfaen"]
    first = enqueue(session, key="k1", channel=channel, kind="reminder", payload={"text": "a"})
    second = enqueue(session, key="k1", channel=channel, kind="reminder", payload={"text": "b"})
    session.commit()
    assert first is not None and second is None
    rows = session.scalars(select(Delivery)).all()
    assert [(r.idempotency_key, r.payload["text"]) for r in rows] == [("k1", "a")]


def test_a_post_carries_its_key_and_the_ts_is_kept(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "reminder:1:2026-11-23T09:00")
    with fake_slack() as fake, clock.frozen(NOW):
        report = sender_for(app, fake).send_due()
        assert report.sent == 1
        [posted] = fake.posted
    row = reload(session, delivery.id)
    assert row.state is DeliveryState.SENT
    assert row.platform_message_id == posted.ts
    assert posted.channel == "C0TOR00001"
    assert posted.key == "reminder:1:2026-11-23T09:00"
    assert "Papers due" in posted.text
    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.verb == "post")
        )
        == 1
    )


def test_a_429_storm_waits_as_told_and_never_gives_up(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-429")
    with fake_slack() as fake, clock.frozen(NOW) as traveller:
        fake.fail_next("chat.postMessage", 429, times=6, retry_after=7)
        sender = sender_for(app, fake, policy=quick_policy(max_attempts=2))
        for _ in range(6):
            report = sender.send_due()
            assert report.deferred == 1
            row = reload(session, delivery.id)
            assert row.state is DeliveryState.PENDING and row.attempts == 0
            assert row.next_try_at == clock.now() + timedelta(seconds=7)
            # Not before Retry-After has passed.
            traveller.advance(timedelta(seconds=6))
            assert sender.send_due().handled == 0
            traveller.advance(timedelta(seconds=1))
        assert sender.send_due().sent == 1
        assert fake.keys()["k-429"] == 1
    assert reload(session, delivery.id).state is DeliveryState.SENT


def test_a_500_storm_backs_off_then_fails_and_tells_the_secretariat_once(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-500")
    policy = quick_policy(max_attempts=4, base_delay=2.0, settle=timedelta(seconds=7))
    with fake_slack() as fake, clock.frozen(NOW) as traveller:
        fake.fail_next("chat.postMessage", 500, times=4)
        sender = sender_for(app, fake, policy=policy)
        for attempt in range(1, 4):
            assert sender.send_due().retrying == 1
            row = reload(session, delivery.id)
            wait = (row.next_try_at - clock.now()).total_seconds()
            # Backoff with jitter, but never sooner than the settle delay (a 500 may have posted).
            ceiling = 2.0 * 2 ** (attempt - 1)
            assert max(7.0, ceiling / 2) <= wait <= max(7.0, ceiling), (attempt, wait)
            assert row.attempts == attempt and row.maybe_posted
            traveller.advance(timedelta(seconds=wait))
        report = sender.send_due()
        assert report.failed == 1
        # The failure notice went to the secretariat channel, once.
        assert report.sent == 1
        notices = [p for p in fake.posted if p.channel == "C0SEC00001"]
        assert len(notices) == 1 and "k-500" in notices[0].text
        traveller.advance(timedelta(hours=1))
        assert sender.send_due().handled == 0
    row = reload(session, delivery.id)
    assert row.state is DeliveryState.FAILED and row.attempts == 4
    assert [p.key for p in fake.posted] == [f"failed:{delivery.id}:srs-secretariat"]
    # The channel's history was never read: posts are found through metadata events.
    assert fake.calls_to("conversations.history") == []


def test_a_500_after_slack_stored_the_message_is_not_posted_again(
    session: Session, app: ScrutinyApp, seed: Seed, engine: Engine, database_url: str, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-ambiguous")
    with (
        slack_with_events(engine, database_url) as fake,
        clock.frozen(NOW) as traveller,
    ):
        fake.fail_after_post(500)
        sender = sender_for(app, fake)
        assert sender.send_due().retrying == 1
        row = reload(session, delivery.id)
        assert row.next_try_at == clock.now() + timedelta(seconds=30)  # the settle delay
        fake.wait_for_events()
        traveller.advance(timedelta(seconds=30))
        assert sender.send_due().found_already_posted == 1
        assert fake.duplicates() == {} and fake.keys()["k-ambiguous"] == 1
        row = reload(session, delivery.id)
        assert row.state is DeliveryState.SENT and row.platform_message_id == fake.posted[0].ts


def test_a_timeout_after_posting_is_not_posted_again(
    session: Session, app: ScrutinyApp, seed: Seed, engine: Engine, database_url: str, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-timeout")
    with (
        slack_with_events(engine, database_url) as fake,
        clock.frozen(NOW) as traveller,
    ):
        fake.hang_after_post(3.0)
        messenger = slack_messenger(fake, app.sessions, timeout=1)
        sender = make_sender(
            app,
            {Platform.SLACK: messenger},
            policy=quick_policy(),
            pacer=Pacer(0, 0, clock=seconds_of(app)),
            worker_id="w1",
        )
        assert sender.send_due().retrying == 1
        assert reload(session, delivery.id).maybe_posted
        fake.wait_for_events()
        traveller.advance(timedelta(seconds=29))
        assert sender.send_due().handled == 0  # still settling
        traveller.advance(timedelta(seconds=1))
        assert sender.send_due().found_already_posted == 1
        assert fake.keys()["k-timeout"] == 1
    assert reload(session, delivery.id).state is DeliveryState.SENT


def test_a_worker_killed_between_claim_and_post_loses_nothing(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-claimed")
    with fake_slack() as fake, clock.frozen(NOW) as traveller:
        dead = sender_for(app, fake, worker_id="dead")
        assert [c.key for c in dead.claim()] == ["k-claimed"]  # ... and the worker dies here
        survivor = sender_for(app, fake, worker_id="survivor")
        traveller.advance(timedelta(minutes=4))
        assert survivor.send_due().handled == 0  # the claim is still leased
        traveller.advance(timedelta(minutes=2))
        assert survivor.send_due().sent == 1
        assert fake.keys()["k-claimed"] == 1
    assert reload(session, delivery.id).state is DeliveryState.SENT


class Killed(BaseException):
    """The process dies: nothing after this point runs."""


class DiesAfterPosting:
    """A messenger that posts, then the worker dies before recording it."""

    platform = Platform.SLACK

    def __init__(self, inner: SlackMessenger) -> None:
        self.inner = inner

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        self.inner.post(target, payload, key=key)
        raise Killed

    def find_posted(self, target: Target, key: str, *, since: Any) -> str | None:
        return self.inner.find_posted(target, key, since=since)


def test_a_worker_killed_between_post_and_mark_posts_once(
    session: Session, app: ScrutinyApp, seed: Seed, engine: Engine, database_url: str, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-posted")
    with (
        slack_with_events(engine, database_url) as fake,
        clock.frozen(NOW) as traveller,
    ):
        dying = make_sender(
            app,
            {Platform.SLACK: DiesAfterPosting(slack_messenger(fake, app.sessions))},
            pacer=Pacer(0, 0, clock=seconds_of(app)),
            worker_id="dying",
        )
        with pytest.raises(Killed):
            dying.send_due()
        assert reload(session, delivery.id).state is DeliveryState.SENDING
        fake.wait_for_events()
        traveller.advance(timedelta(minutes=6))
        report = sender_for(app, fake, worker_id="restarted").send_due()
        assert report.found_already_posted == 1 and report.sent == 0
        assert fake.keys()["k-posted"] == 1
    row = reload(session, delivery.id)
    assert row.state is DeliveryState.SENT and row.platform_message_id == fake.posted[0].ts


def test_two_workers_at_once_post_everything_exactly_once(
    session: Session, app: ScrutinyApp, seed: Seed
) -> None:
    channels = [
        Channel(
            slug=f"extra-{i}",
            name=f"#extra-{i}",
            platform=Platform.SLACK,
            external_id=f"C0EXTRA{i:03d}",
        )
        for i in range(8)
    ]
    session.add_all(channels)
    session.commit()
    keys = [f"k-{c.slug}-{n}" for c in channels for n in range(5)]
    for key in keys:
        add_post(session, app, channels[keys.index(key) // 5], key)
    with fake_slack() as fake:
        senders = [sender_for(app, fake, worker_id=f"w{i}", batch_size=7) for i in range(2)]
        reports = [None, None]
        start = threading.Barrier(2)

        def work(i: int) -> None:
            start.wait()
            reports[i] = senders[i].send_due()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert fake.duplicates() == {}
        assert sorted(k for k in fake.keys().elements() if k) == sorted(keys)
    states = session.scalars(select(Delivery.state)).all()
    assert set(states) == {DeliveryState.SENT} and len(states) == len(keys)


def test_items_no_longer_visible_at_send_time_are_left_out(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    channel = seed.channels["srs-torfaen"]
    result = run_digest(session, app.renderer, channel, now=NOW)
    session.commit()
    assert result.delivery_id is not None
    # After the digest was written, the decision is made exempt.
    seed.decisions["SB-2026-031"].exempt_paragraph = 14
    session.commit()
    with fake_slack() as fake, clock.frozen(NOW):
        assert sender_for(app, fake).send_due().sent == 1
        [posted] = fake.posted
    assert "data centre move" not in posted.text
    assert "SB-2026-031" not in str(posted.blocks)
    assert "2 exempt decisions" in posted.text


def test_a_post_whose_items_may_not_be_shown_and_cannot_be_redone_is_cancelled(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    channel = seed.channels["srs-torfaen"]
    delivery = enqueue(
        session,
        key="k-items",
        channel=channel,
        kind="answer",
        payload={"text": "About TP-004", "items": {"actions": ["TP-004"]}},
    )
    session.commit()
    assert delivery is not None
    with fake_slack() as fake, clock.frozen(NOW):
        assert sender_for(app, fake).send_due().cancelled == 1
        assert fake.posted == []
    assert reload(session, delivery.id).state is DeliveryState.CANCELLED


def test_a_permanent_error_fails_at_once_and_can_be_retried(
    session: Session, app: ScrutinyApp, seed: Seed, clock: Clock
) -> None:
    broken = Channel(
        slug="gone",
        name="#gone",
        platform=Platform.SLACK,
        external_id="",
        clearance=Marking.OFFICIAL,
    )
    session.add(broken)
    session.commit()
    delivery = add_post(session, app, broken, "k-gone")
    with fake_slack() as fake, clock.frozen(NOW):
        report = sender_for(app, fake).send_due()
        assert report.failed == 1
        row = reload(session, delivery.id)
        assert row.state is DeliveryState.FAILED and "channel_not_found" in row.last_error
        assert retry_failed(session, delivery.id) is not None
        session.commit()
        row = reload(session, delivery.id)
        assert row.state is DeliveryState.PENDING and row.attempts == 0 and row.maybe_posted


def test_pacer_spaces_posts_per_channel_and_overall() -> None:
    now = [100.0]
    pacer = Pacer(per_channel=1.0, per_second=4.0, clock=lambda: now[0], burst=1)
    # Different channels wait only for the workspace-wide rate.
    assert [pacer.reserve(Platform.SLACK, c) for c in ("C1", "C2", "C3")] == [0.0, 0.25, 0.5]
    # A channel waits its own second after its last slot, before asking for a workspace slot.
    assert pacer.channel_delay(Platform.SLACK, "C1") == pytest.approx(1.0)
    assert pacer.delay(Platform.SLACK, "C1") == pytest.approx(1.0)
    now[0] += 1.0
    assert pacer.reserve(Platform.SLACK, "C1") == pytest.approx(0.0)
    pacer.hold(Platform.SLACK, "C4", 30)
    assert pacer.delay(Platform.SLACK, "C4") == pytest.approx(30)


def test_pacer_catches_up_after_a_stall_in_a_bounded_burst() -> None:
    now = [100.0]
    pacer = Pacer(per_channel=1.0, per_second=4.0, clock=lambda: now[0], burst=3)
    channels = (f"C{n}" for n in range(100))
    # Idle until now: three at once, then the steady rate.
    waits = [pacer.reserve(Platform.SLACK, next(channels)) for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.25, 0.5])
    # Ten seconds of stall: again at most three at once, not forty.
    now[0] += 10.0
    waits = [pacer.reserve(Platform.SLACK, next(channels)) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.25])


def test_pacer_never_exceeds_its_bucket_whatever_the_order_of_reservations() -> None:
    rng = random.Random(14)
    now = [0.0]
    rate, burst = 10.0, 4
    pacer = Pacer(per_channel=1.0, per_second=rate, clock=lambda: now[0], burst=burst)
    slots = []
    for _ in range(400):
        now[0] += rng.choice([0.0, 0.0, 0.01, 0.05, 0.3, 2.0])
        channel = f"C{rng.randint(0, 30)}"
        # As the sender does: the channel's own wait first, then a workspace slot.
        now[0] += max(0.0, pacer.channel_delay(Platform.SLACK, channel))
        slots.append(now[0] + pacer.reserve(Platform.SLACK, channel))
    slots.sort()
    # Any window [slots[i], slots[j]] holds at most burst + rate * its length posts.
    worst = max(
        (j - i + 1) - (burst + rate * (slots[j] - slots[i]))
        for i in range(len(slots))
        for j in range(i, min(len(slots), i + 60))
    )
    assert worst <= 1e-9


def test_pacer_refuses_a_burst_under_one_post() -> None:
    with pytest.raises(ValueError, match="burst"):
        Pacer(burst=0.5)


def test_the_console_messenger_prints_posts() -> None:
    stream = io.StringIO()
    messenger = ConsoleMessenger(stream=stream)
    target = Target(Platform.CONSOLE, "console-torfaen", "srs-torfaen", "#srs-torfaen")
    message_id = messenger.post(target, {"text": "Reminder: papers"}, key="k")
    assert "#srs-torfaen" in stream.getvalue() and "Reminder: papers" in stream.getvalue()
    assert messenger.find_posted(target, "k", since=NOW) == message_id


def test_rate_limits_of_the_fake_are_kept_by_the_pacer(
    session: Session, app: ScrutinyApp, seed: Seed
) -> None:
    channel = seed.channels["srs-police"]
    for n in range(3):
        add_post(session, app, channel, f"k-paced-{n}")
    with fake_slack(per_channel=1.0) as fake:
        sender = sender_for(app, fake, pacer=Pacer(per_channel=1.0, per_second=50))
        report = sender.send_due()
        assert report.sent == 3 and fake.rate_limited == 0
