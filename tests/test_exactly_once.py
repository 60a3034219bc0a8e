"""Exactly once under slow answers and storms: the real sender and slack_sdk client against the
fake Slack API, which accepts some posts but answers only after the client's timeout, answers
429 or 500 (before or after storing the message), and reports every stored post as a signed
`message_metadata_posted` event to the bot's real `/slack/events` endpoint a moment later.

Timeouts are shortened (a 0.3 s client timeout, a 1 s slow answer, a 3 s settle delay) so a run
takes seconds; the proportions are those of production (15 s timeout, 60 s settle)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState, Platform
from bot.models import Channel, Delivery
from bot.outbox import Pacer, RetryPolicy
from bot.scheduler import make_sender
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import add_post, slack_messenger, slack_with_events

POSTS = 43
CLIENT_TIMEOUT = 0.3
SLOW_ANSWER = 1.0
EVENT_DELAY = (0.2, 0.8)
SETTLE = timedelta(seconds=3)
SEEDS = [int(s) for s in os.environ.get("EXACTLY_ONCE_SEEDS", "1,2").split(",")]

SCENARIOS = {
    "slow": {"slow": 0.15, "slow_seconds": SLOW_ANSWER},
    "storm": {
        "slow": 0.15,
        "slow_seconds": SLOW_ANSWER,
        "rate_limited": 0.25,
        "retry_after": 1,
        "server_error": 0.10,
        "server_error_after_post": 0.10,
    },
}


@pytest.fixture(autouse=True)
def running_clock(clock: Clock) -> None:
    """These runs wait in real time for slow answers and settle delays, so the program's clock
    runs on from NOW (whatever the machine's date) instead of standing still."""
    clock.set(NOW, ticking=True)


def queue_posts(session: Session, app: ScrutinyApp) -> list[str]:
    channels = [
        Channel(
            slug=f"load-{i}",
            name=f"#load-{i}",
            platform=Platform.SLACK,
            external_id=f"C0LOAD{i:03d}",
        )
        for i in range(9)
    ]
    session.add_all(channels)
    session.commit()
    keys = [f"k-{n:02d}" for n in range(POSTS)]
    for n, key in enumerate(keys):
        add_post(session, app, channels[n % len(channels)], key, text=f"Post {n}")
    return keys


def deliver_all(
    app: ScrutinyApp, fake: LimitedSlackApi, session: Session, *, settle: bool = True
) -> None:
    """Run the sender until every row is settled (sent or failed), polling as a worker does."""
    sender = make_sender(
        app,
        {Platform.SLACK: slack_messenger(fake, app.sessions, timeout=CLIENT_TIMEOUT)},
        policy=RetryPolicy(
            max_attempts=12,
            base_delay=0.05,
            max_delay=0.5,
            settle=SETTLE if settle else timedelta(0),
            settle_factor=3.0 if settle else 0.0,
            max_wait=0.5,
        ),
        pacer=Pacer(per_channel=0, per_second=0),
        worker_id="exactly-once",
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        sender.send_due()
        session.expire_all()
        states = set(session.scalars(select(Delivery.state)))
        if states <= {DeliveryState.SENT, DeliveryState.FAILED}:
            return
        time.sleep(0.05)
    raise AssertionError("the sender did not settle every row in time")


def figures(fake: LimitedSlackApi, keys: list[str], session: Session) -> dict[str, int]:
    posted = fake.keys()
    sent = set(
        session.scalars(
            select(Delivery.idempotency_key).where(Delivery.state == DeliveryState.SENT)
        )
    )
    outcomes: Counter[str] = fake.outcomes
    return {
        "posts": len(keys),
        "calls": sum(outcomes.values()),
        "slow": outcomes["slow"],
        "429": outcomes["429"],
        "500": outcomes["500"] + outcomes["500-after"],
        "500 after storing": outcomes["500-after"],
        "duplicates": sum(n - 1 for k, n in posted.items() if k in keys and n > 1),
        "losses": sum(1 for k in keys if posted[k] == 0 or k not in sent),
    }


@pytest.mark.parametrize("seed_value", SEEDS)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_no_duplicates_and_no_losses(
    scenario: str,
    seed_value: int,
    session: Session,
    app: ScrutinyApp,
    seed: Seed,
    engine: Engine,
    database_url: str,
) -> None:
    keys = queue_posts(session, app)
    with slack_with_events(engine, database_url, delay=EVENT_DELAY, seed=seed_value) as fake:
        fake.answer_randomly(seed_value, **SCENARIOS[scenario])
        deliver_all(app, fake, session)
        fake.wait_for_events()
        found = figures(fake, keys, session)
    print(f"\nexactly once, {scenario}, seed {seed_value}: {found}")
    assert found["slow"] >= 3, found  # the storm really happened
    if scenario == "storm":
        assert found["429"] >= 5 and found["500 after storing"] >= 2, found
    assert found["duplicates"] == 0, found
    assert found["losses"] == 0, found
    # Every row was posted once: by its own attempt, or found after an uncertain one.
    rows = session.scalars(select(Delivery)).all()
    assert all(r.platform_message_id for r in rows)
    assert {r.platform_message_id for r in rows} == {p.ts for p in fake.posted}


def test_without_the_settle_delay_slow_answers_post_twice(
    session: Session, app: ScrutinyApp, seed: Seed, engine: Engine, database_url: str
) -> None:
    """The control: retrying as soon as the backoff allows, before Slack has reported the
    post that landed late, duplicates it (what the settle delay prevents)."""
    keys = queue_posts(session, app)
    with slack_with_events(engine, database_url, delay=(1.0, 1.2), seed=1) as fake:
        fake.answer_randomly(1, **SCENARIOS["slow"])
        deliver_all(app, fake, session, settle=False)
        fake.wait_for_events()
        found = figures(fake, keys, session)
    print(f"\nwithout settle delay: {found}")
    assert found["slow"] >= 3 and found["duplicates"] >= 1, found
