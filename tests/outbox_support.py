"""Helpers shared by the outbox, digest, scheduler and reminder tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import ScrutinyApp, create_app
from bot.domain import Platform
from bot.messages import Reply
from bot.models import Channel, Delivery, PostedMessage
from bot.outbox import Pacer, RetryPolicy, Sender, enqueue
from bot.platforms.slack.app import build_slack
from bot.platforms.slack.messenger import SlackMessenger
from bot.posted_messages import PostedRegister
from bot.rendering import render_payload
from bot.scheduler import make_sender
from bot.web import create_web_app
from tests.fakes.slack_api import SIGNING_SECRET, ServedApp, slack_settings
from tests.fakes.slack_limits import LimitedSlackApi

TOKEN = "xoxb-test-token"


@contextmanager
def fake_slack(**limits: Any) -> Iterator[LimitedSlackApi]:
    """A running fake Slack API with the outbox extras."""
    fake = LimitedSlackApi(**limits)
    with fake:
        yield fake


@contextmanager
def slack_with_events(
    engine: Engine,
    database_url: str,
    *,
    delay: tuple[float, float] = (0.0, 0.0),
    seed: int = 0,
    **limits: Any,
) -> Iterator[LimitedSlackApi]:
    """A fake Slack API that reports every post with metadata, signed, to the bot's real
    `/slack/events` endpoint (served on 127.0.0.1), as Slack's `message_metadata_posted`."""
    fake = LimitedSlackApi(**limits)
    with fake:
        slack_app = create_app(slack_settings(database_url, fake), engine)
        with ServedApp(create_web_app(slack_app, [build_slack(slack_app)])) as served:
            fake.deliver_events(
                served.url + "/slack/events",
                SIGNING_SECRET,
                delay,
                seed,
                recorded=lambda: posted_count(engine),
            )
            yield fake
        assert all(status == 200 for status in fake.events_sent), fake.events_sent


def posted_count(engine: Engine) -> int:
    """How many posts the bot has recorded from Slack's metadata events."""
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(PostedMessage)) or 0)


def slack_messenger(
    fake: LimitedSlackApi, sessions: sessionmaker[Session], *, timeout: float = 2
) -> SlackMessenger:
    """The messenger production builds (slack_sdk's client over kept-alive connections, SDK
    retries off) pointed at the fake, finding earlier posts among those the events endpoint
    recorded."""
    return SlackMessenger.connect(TOKEN, fake.url, PostedRegister(sessions), timeout=timeout)


def quick_policy(**overrides: Any) -> RetryPolicy:
    """Short delays so tests can step past them."""
    values: dict[str, Any] = {
        "max_attempts": 4,
        "base_delay": 2.0,
        "max_delay": 30.0,
        "lease": timedelta(minutes=5),
        "settle": timedelta(seconds=30),
    }
    values.update(overrides)
    return RetryPolicy(**values)


def sender_for(
    app: ScrutinyApp, fake: LimitedSlackApi, *, worker_id: str = "test-worker", **options: Any
) -> Sender:
    """A sender posting to the fake, unpaced unless a pacer is given."""
    options.setdefault("policy", quick_policy())
    # Paced by the app's clock, so a test that moves the clock past a Retry-After is let through.
    options.setdefault("pacer", Pacer(per_channel=0, per_second=0, clock=seconds_of(app)))
    messenger = slack_messenger(fake, app.sessions)
    return make_sender(app, {Platform.SLACK: messenger}, worker_id=worker_id, **options)


def seconds_of(app: ScrutinyApp) -> Callable[[], float]:
    """The app's clock as seconds, for a pacer that follows the clock a test sets."""
    return lambda: app.clock.now().timestamp()


def add_post(
    session: Session, app: ScrutinyApp, channel: Channel, key: str, text: str = "Papers due"
) -> Delivery:
    """A pending reminder-style post to `channel`, committed."""
    payload = render_payload(
        app.renderer,
        Reply("reminder/post", {"text": text, "languages": list(channel.language.languages)}),
        Platform(channel.platform),
        channel.language.languages,
    )
    delivery = enqueue(session, key=key, channel=channel, kind="reminder", payload=payload)
    assert delivery is not None
    session.commit()
    return delivery


def reload(session: Session, delivery_id: int) -> Delivery:
    """The delivery as the database has it now."""
    session.expire_all()
    found = session.scalar(select(Delivery).where(Delivery.id == delivery_id))
    assert found is not None
    return found
