"""Stopping never hangs: a worker stopped in the middle of its scheduled sync (digests for many
channels) or of a send the Slack API answers slowly ends within a bound, holds no lock while it
waits, posts nothing twice and loses nothing; and a live worker keeps its claims renewed."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState, Platform
from bot.leader import leader_lock_for
from bot.models import Delivery
from bot.outbox import Pacer, RetryPolicy
from bot.scheduler import Worker, make_worker
from tests.conftest import NOW
from tests.factories import Seed, add_digest_channels
from tests.outbox_support import (
    add_post,
    fake_slack,
    reload,
    sender_for,
    slack_messenger,
    slack_with_events,
)

STOP_BOUND = 60.0
"""Seconds a stopped worker may take before the test calls it a hang (a bound, not a figure)."""
ROUNDS = 6


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _start(worker: Worker) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), name="worker-under-test")
    thread.start()
    return stop, thread


def _stop(stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    thread.join(STOP_BOUND)
    assert not thread.is_alive(), "stopping the worker hung"


def test_a_worker_stopped_in_the_middle_of_its_sync_stops_and_frees_the_lead(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    add_digest_channels(session, seed, 120)
    rng = random.Random(10)
    for week in range(ROUNDS):
        # A new Monday 9am each round, so every round has digests to write.
        clock.set(NOW + timedelta(weeks=week))
        worker = make_worker(app, {}, leader_lock_for(app.engine), poll_seconds=0.05)
        stop, thread = _start(worker)
        _wait(lambda w=worker: w.busy)  # type: ignore[misc]
        time.sleep(rng.uniform(0, 0.5))
        _stop(stop, thread)
        assert not worker.busy and not worker.leading
        # The lead is free again: the next worker (or this test) can take it.
        lock = leader_lock_for(app.engine)
        assert lock.acquire()
        lock.release()
    session.rollback()
    keys = session.scalars(select(Delivery.idempotency_key)).all()
    assert len(keys) == len(set(keys))


def test_a_worker_stopped_while_a_post_waits_for_slack_posts_nothing_twice(
    app: ScrutinyApp,
    session: Session,
    seed: Seed,
    engine: Engine,
    database_url: str,
    clock: Clock,
) -> None:
    channel = seed.channels["srs-torfaen"]
    keys = [f"stop-{n}" for n in range(ROUNDS * 3)]
    # Slack reports each post it stored (message metadata events), as the outbox relies on.
    with slack_with_events(engine, database_url) as fake:
        for round_keys in (keys[n : n + 3] for n in range(0, len(keys), 3)):
            for key in round_keys:
                add_post(session, app, channel, key)
            fake.hang_after_post(1.5)  # stored by Slack, answered after the client gave up
            worker = make_worker(
                app,
                {Platform.SLACK: slack_messenger(fake, app.sessions, timeout=1)},
                leader_lock_for(app.engine),
                pacer=Pacer(per_channel=0, per_second=0),
                poll_seconds=0.05,
            )
            stop, thread = _start(worker)
            _wait(lambda k=round_keys[0]: fake.keys()[k] == 1)  # type: ignore[misc]
            _stop(stop, thread)  # while that answer is still on its way
        # Whatever the stops left (uncertain or not yet started) goes out once, later.
        fake.wait_for_events()
        clock.advance(timedelta(hours=1))
        finisher = sender_for(app, fake, policy=RetryPolicy(), worker_id="finisher")
        finisher.send_due()
        assert fake.duplicates() == {}
        posted = [k for k in fake.keys().elements() if k and k.startswith("stop-")]
        assert sorted(posted) == sorted(keys)
    session.rollback()
    states = session.scalars(select(Delivery.state).where(Delivery.idempotency_key.in_(keys))).all()
    assert set(states) == {DeliveryState.SENT} and len(states) == len(keys)


def test_a_live_worker_renews_its_claims_so_they_are_not_taken_over(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    delivery = add_post(session, app, seed.channels["srs-torfaen"], "k-renewed")
    policy = RetryPolicy(renew_seconds=0.05)
    with fake_slack() as fake:
        fake.hang_after_post(2.0)
        slow = sender_for(app, fake, worker_id="slow", policy=policy)
        slow.pacer = Pacer(per_channel=0, per_second=0)
        slow.messengers = {Platform.SLACK: slack_messenger(fake, app.sessions, timeout=5)}
        sending = threading.Thread(target=slow.send_due, name="slow-sender")
        sending.start()
        try:
            _wait(lambda: fake.keys()["k-renewed"] == 1)
            # Longer than the lease since the claim: a live worker's claim is renewed ...
            renewed_at = clock.advance(policy.lease + timedelta(seconds=30))
            _wait(lambda: reload(session, delivery.id).claimed_at == renewed_at)
            # ... so another worker does not take it over while the post is in flight.
            other = sender_for(app, fake, worker_id="other", policy=policy)
            assert other.send_due().handled == 0
        finally:
            sending.join(STOP_BOUND)
        assert not sending.is_alive()
    row = reload(session, delivery.id)
    assert row.state is DeliveryState.SENT and fake.keys()["k-renewed"] == 1
