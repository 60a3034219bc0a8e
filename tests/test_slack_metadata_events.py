"""Slack's `message_metadata_posted` events, signed, at the real `/slack/events` endpoint: the
bot records its own posts (channel, ts, outbox key) so the outbox finds them before a retry,
and ignores other apps' metadata and malformed events without a 5xx."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import Engine, select

from bot.app import ScrutinyApp
from bot.db import make_session_factory
from bot.domain import Platform
from bot.models import PostedMessage
from bot.outbox import Target
from bot.platforms.slack.messenger import METADATA_EVENT, SlackMessenger
from bot.posted_messages import PostedRegister
from tests import test_slack_http as served
from tests.fakes.slack_api import BOT_TOKEN, BOT_USER_ID, FakeSlackApi, SlackSender

# The signed endpoint as test_slack_http serves it: the bot's real web app on 127.0.0.1.
fake, slack_app, platform, slack = served.fake, served.slack_app, served.platform, served.slack

APP_ID = "A0APP00001"
CHANNEL = "C0TOR00001"


def metadata_event(key: Any = "digest:srs-torfaen:2026-11-23", **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message_metadata_posted",
        "app_id": APP_ID,
        "bot_id": "B0BOT00001",
        "user_id": BOT_USER_ID,
        "team_id": "T0SRS00001",
        "channel_id": CHANNEL,
        "metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": key}},
        "message_ts": "1700000100.000200",
        "event_ts": "1700000100.000200",
    }
    event.update(overrides)
    return event


def recorded(engine: Engine) -> list[tuple[str, str, str, list[str]]]:
    with make_session_factory(engine)() as session:
        rows = session.scalars(select(PostedMessage).order_by(PostedMessage.id)).all()
        return [(r.channel, r.message_id, r.key, list(r.files)) for r in rows]


def wait_recorded(engine: Engine, count: int) -> list[tuple[str, str, str, list[str]]]:
    """The records once there are `count` of them (listeners run after the ack)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = recorded(engine)
        if len(rows) >= count:
            return rows
        time.sleep(0.02)
    raise AssertionError(f"expected {count} recorded posts; have {recorded(engine)}")


def test_our_posts_are_recorded_once_and_found_before_a_retry(
    slack: SlackSender, engine: Engine, slack_app: ScrutinyApp, fake: FakeSlackApi
) -> None:
    event = metadata_event(
        "question-pack:1:srs-secretariat:20261127T1700Z",
        metadata={
            "event_type": METADATA_EVENT,
            "event_payload": {"key": "question-pack:1:srs-secretariat:20261127T1700Z"},
        },
    )
    assert slack.event(event, event_id="EvMETA1").status_code == 200
    # Slack retries an event it thinks was not acknowledged: still one record.
    assert slack.event(event, event_id="EvMETA1", retry=1).status_code == 200
    files = metadata_event(
        "question-pack:2:srs-secretariat:20261127T1700Z",
        message_ts="1700000200.000300",
        metadata={
            "event_type": METADATA_EVENT,
            "event_payload": {
                "key": "question-pack:2:srs-secretariat:20261127T1700Z",
                "files": ["pack.docx"],
            },
        },
    )
    assert slack.event(files).status_code == 200
    assert wait_recorded(engine, 2) == [
        (CHANNEL, "1700000100.000200", "question-pack:1:srs-secretariat:20261127T1700Z", []),
        (
            CHANNEL,
            "1700000200.000300",
            "question-pack:2:srs-secretariat:20261127T1700Z",
            ["pack.docx"],
        ),
    ]
    messenger = SlackMessenger(
        WebClient(token=BOT_TOKEN, base_url=fake.url, retry_handlers=[]),
        PostedRegister(slack_app.sessions),
    )
    target = Target(Platform.SLACK, CHANNEL, "srs-torfaen", "#srs-torfaen")
    since = datetime(2026, 1, 1)
    assert (
        messenger.find_posted(target, "question-pack:1:srs-secretariat:20261127T1700Z", since=since)
        == "1700000100.000200"
    )
    # A post whose files may not have reached its thread is not taken as done.
    assert (
        messenger.find_posted(target, "question-pack:2:srs-secretariat:20261127T1700Z", since=since)
        is None
    )
    assert messenger.find_posted(target, "never-posted", since=since) is None
    other = Target(Platform.SLACK, "C0NEW00001", "srs-newport", "#srs-newport")
    assert (
        messenger.find_posted(other, "question-pack:1:srs-secretariat:20261127T1700Z", since=since)
        is None
    )
    # A direct message is posted to a user id and reported in the app's conversation with them.
    notice = "notify:Q-BC-2026-12-001:accepted:sian-hughes"
    direct = metadata_event(notice, channel_id="D0TOR00001", message_ts="1700000300.000400")
    assert slack.event(direct).status_code == 200
    wait_recorded(engine, 3)
    member = Target(Platform.SLACK, "U0TOR00001", "dm:2", "Sian Hughes")
    assert messenger.find_posted(member, notice, since=since) == "1700000300.000400"
    assert messenger.find_posted(target, notice, since=since) is None
    # Nothing was read from Slack to find them.
    assert fake.calls_to("conversations.history") == []


@pytest.mark.parametrize(
    "change",
    [
        {"app_id": "A0OTHERAPP"},  # another app reusing our event type cannot suppress a post
        {"app_id": None},
        {"metadata": {"event_type": "someone_else", "event_payload": {"key": "k"}}},
        {"metadata": ["not", "an", "object"]},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": "k"}},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": 42}}},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": ""}}},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": "k" * 256}}},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": "k", "files": "a"}}},
        {"metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": "k", "files": [1]}}},
        {"metadata": None},
        {"channel_id": 12345},
        {"channel_id": "not a channel"},
        {"message_ts": "yesterday"},
        {"message_ts": None},
    ],
)
def test_other_apps_and_malformed_events_are_ignored_without_error(
    slack: SlackSender, engine: Engine, change: dict[str, Any]
) -> None:
    response = slack.event(metadata_event(**change))
    assert response.status_code == 200
    # A good event after it: once that is recorded, the bad one has been dealt with.
    assert slack.event(metadata_event("good", message_ts="1700000999.000001")).status_code == 200
    assert wait_recorded(engine, 1) == [(CHANNEL, "1700000999.000001", "good", [])]


def test_a_mention_posted_by_a_bot_gets_no_answer(slack: SlackSender, fake: FakeSlackApi) -> None:
    # Bolt's own self-event filter is off (it would drop our metadata events), so the mention
    # listener skips bots' messages itself.
    event = {
        "type": "app_mention",
        "user": BOT_USER_ID,
        "bot_id": "B0BOT00001",
        "text": f"<@{BOT_USER_ID}> help",
        "ts": "1700000100.000900",
        "channel": CHANNEL,
        "event_ts": "1700000100.000900",
    }
    assert slack.event(event).status_code == 200
    human = {**event, "user": "U0TOR00001", "ts": "1700000100.001000"}
    human.pop("bot_id")
    assert slack.event(human).status_code == 200
    fake.wait_for("chat.postMessage")
    replies = fake.calls_to("chat.postMessage")
    assert [c.body.get("thread_ts") for c in replies] == ["1700000100.001000"]
