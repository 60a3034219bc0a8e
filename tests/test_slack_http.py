"""The bot in Slack, end to end: signed requests to our real HTTP endpoint (uvicorn on
127.0.0.1), the real Bolt app, and Slack's Web API played by the fake in tests/fakes."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.app import Outcome, ScrutinyApp, create_app
from bot.db import make_session_factory
from bot.domain import ActionStatus, Rag
from bot.messages import Reply
from bot.models import Action, AuditEvent, Decision, ProcessedEvent
from bot.platforms.slack.app import (
    ASK_SHORTCUT,
    COMMAND,
    DRAFT_SHORTCUT,
    EVENTS,
    SlackPlatform,
    build_slack,
)
from bot.platforms.slack.inbound import MAX_BODY_BYTES
from bot.settings import PROJECT_ROOT
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed, add_action
from tests.fakes.slack_api import (
    BOT_USER_ID,
    SIGNING_SECRET,
    Call,
    FakeSlackApi,
    ServedApp,
    SlackSender,
    SlashCommand,
    slack_settings,
    slack_signature,
)

SECRET = SIGNING_SECRET
SECRETARY, TORFAEN, POLICE, NEWPORT = "U0SEC00001", "U0TOR00001", "U0POL00001", "U0NEW00001"
TORFAEN_CHANNEL, SECRETARIAT_CHANNEL = "C0TOR00001", "C0SEC00001"


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def slack_app(
    database_url: str, engine: Engine, fake: FakeSlackApi, reply_processes: int
) -> ScrutinyApp:
    settings = slack_settings(database_url, fake, slack_reply_processes=reply_processes)
    return create_app(settings, engine)


@pytest.fixture
def platform(slack_app: ScrutinyApp) -> SlackPlatform:
    return build_slack(slack_app, clock=lambda: NOW)


@contextmanager
def served(platform: SlackPlatform, fake: FakeSlackApi) -> Iterator[SlackSender]:
    """The bot's web app under uvicorn (its startup and shutdown run), and Slack to send to it."""
    with ServedApp(create_web_app(platform.app, [platform])) as app:
        sender = SlackSender(app.url + "/slack/events", SECRET, fake, NOW.timestamp)
        if platform._replies is not None:
            # Reply processes take seconds to start on a busy machine: wait, so no reply in a
            # test waits for them.
            platform._replies.pids()
        try:
            yield sender
        finally:
            sender.close()
    assert fake.violations == [], "the bot sent something Slack would refuse"


@pytest.fixture
def slack(platform: SlackPlatform, fake: FakeSlackApi, seed: Seed) -> Iterator[SlackSender]:
    with served(platform, fake) as sender:
        yield sender


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session for checking what the bot stored (fresh reads, nothing cached)."""
    with make_session_factory(engine)() as session:
        yield session


def texts(obj: Any) -> str:
    """Every piece of text in a message, view or block list, joined."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "value") and isinstance(value, str):
                    found.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(obj)
    return "\n".join(found)


def buttons(body: dict[str, Any], action_id: str) -> list[dict[str, Any]]:
    """Buttons with this action id anywhere in a message or view."""
    found: list[dict[str, Any]] = []
    for block in body.get("blocks", []):
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                found.append(element)
    return found


def reply_to(slack: SlackSender, user: str, text: str, **fields: Any) -> Call:
    """Send `/scrutiny text` and return the reply posted to its response_url."""
    before = len(slack.fake.calls_to("response_url"))
    response = slack.command(user, text, **fields)
    assert response.status_code == 200
    assert response.content in (b"", b"{}")
    return slack.fake.wait_for("response_url", before + 1)[-1]


def count(session: Session, model: Any) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


# -- slash commands ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("help", "/scrutiny actions"),
        ("", "/scrutiny help"),
        ("actions overdue", "TP-001"),
        ("action TP-002", "Replace core network switches"),
        ("decisions", "FG-2026-044"),
        ("decision SB-2026-031", "Blaenavon"),
        ("meetings", "Strategic Board"),
        ("find data centre", "SB-2026-031"),
        ("home", "Overdue actions owned by Torfaen"),
    ],
)
def test_each_subcommand_answers_through_the_response_url(
    slack: SlackSender, text: str, expected: str
) -> None:
    call = reply_to(slack, TORFAEN, text)
    assert call.body["response_type"] == "ephemeral"
    assert expected in texts(call.body)
    assert call.body["text"].strip()


def test_secretariat_commands_are_in_help_only_for_the_secretariat(slack: SlackSender) -> None:
    assert "record-decision" in texts(reply_to(slack, SECRETARY, "help").body)
    assert "record-decision" not in texts(reply_to(slack, TORFAEN, "help").body)


def test_unknown_user_is_refused_politely_naming_the_secretariat(slack: SlackSender) -> None:
    call = reply_to(slack, "U0STRANGER", "actions")
    assert "I don't know you yet" in texts(call.body)
    assert "#srs-secretariat" in texts(call.body)


def test_member_in_a_channel_cleared_lower_than_them_gets_the_item_withheld(
    slack: SlackSender,
) -> None:
    # Sian is cleared for exempt items; #srs-torfaen is not, so TP-003 stays out there.
    in_channel = texts(reply_to(slack, TORFAEN, "action TP-003").body)
    assert "Exempt contract renewal" not in in_channel
    assert "not cleared" in in_channel
    listed = texts(reply_to(slack, TORFAEN, "actions torfaen").body)
    assert "TP-003" not in listed
    assert "left out" in listed
    # In a direct message she reads alone, so she sees it.
    direct = reply_to(
        slack, TORFAEN, "action TP-003", channel_id="D0TOR00001", channel_name="directmessage"
    )
    assert "Exempt contract renewal" in texts(direct.body)


def test_unregistered_channel_sees_nothing_restricted(slack: SlackSender) -> None:
    out = texts(reply_to(slack, POLICE, "action TP-004", channel_id="C0UNKNOWN1").body)
    assert "Police-only network segregation" not in out


# -- verification -----------------------------------------------------------------------------
def test_unsigned_forged_and_stale_requests_get_401_and_nothing_happens(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    form = SlashCommand(
        SECRETARY, "update TP-001 status=done", response_url=fake.response_url("x")
    ).form()
    body = urlencode(form)
    kind = "application/x-www-form-urlencoded"
    now = int(NOW.timestamp())
    assert slack.post(body, kind, signed=False).status_code == 401
    assert slack.post(body, kind, signature="v0=" + "0" * 64).status_code == 401
    stale = now - 6 * 60
    assert slack.post(body, kind, timestamp=stale).status_code == 401
    tampered = body.replace("status%3Ddone", "status%3Dcancelled")
    signed_for_other_body = slack_signature(SECRET, now, body)
    assert (
        slack.post(tampered, kind, timestamp=now, signature=signed_for_other_body).status_code
        == 401
    )
    wrong_secret = slack_signature("not-the-secret", now, body)
    assert slack.post(body, kind, timestamp=now, signature=wrong_secret).status_code == 401
    event = {"type": "app_mention", "user": TORFAEN, "text": "hi", "ts": "1.2", "channel": "C1"}
    forged = json.dumps({"type": "event_callback", "event_id": "EvForged", "event": event})
    assert slack.post(forged, "application/json", signed=False).status_code == 401
    # A good request afterwards is answered; nothing from the refused ones ever happened.
    assert "/scrutiny help" in texts(reply_to(slack, SECRETARY, "help").body)
    assert [c.method for c in fake.web_api_calls()] == ["response_url"]
    assert count(db, ProcessedEvent) == 0
    assert count(db, AuditEvent) == 0
    tp1 = db.scalar(select(Action).where(Action.ref == "TP-001"))
    assert tp1 is not None and tp1.status is ActionStatus.IN_PROGRESS


SIGNED_BUT_MALFORMED = {
    "form payload is a JSON list": ("payload=%5B%5D", "application/x-www-form-urlencoded"),
    "form payload is a JSON string": ("payload=%22x%22", "application/x-www-form-urlencoded"),
    "form payload is null": ("payload=null", "application/x-www-form-urlencoded"),
    "form payload is not JSON": ("payload=%7Bnot", "application/x-www-form-urlencoded"),
    "body is not JSON": ("{not json", "application/json"),
    "body is a JSON list": ("[1, 2]", "application/json"),
    "body is nested too deeply": ("[" * 100_000 + "]" * 100_000, "application/json"),
    "wrong content type": ('{"type": "url_verification", "challenge": "x"}', "text/plain"),
    "unpaired surrogate": (
        '{"type": "url_verification", "challenge": "\\ud800"}',
        "application/json",
    ),
}
SIGNED_BUT_MALFORMED_PAYLOADS = {
    "actions is an object": {"actions": {"a": {"action_id": "page", "value": "help"}}},
    "user is a string": {"user": "U0TOR00001"},
    "user is missing": {"user": None},
    "action_id is a number": {"actions": [{"action_id": 7, "value": "help"}]},
    "no actions": {"actions": []},
    "date-time is not a number": {"actions": [{"action_id": "page", "selected_date_time": "abc"}]},
    "date-time out of range": {"actions": [{"action_id": "page", "selected_date_time": 10**20}]},
    "channel is a list": {"channel": ["C0TOR00001"]},
    "response_url is not a URL": {"response_url": "<!channel>"},
}


@pytest.mark.parametrize("case", sorted(SIGNED_BUT_MALFORMED))
def test_signed_bodies_that_are_not_slack_requests_get_400_and_nothing_runs(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform, db: Session, case: str
) -> None:
    body, kind = SIGNED_BUT_MALFORMED[case]
    response = slack.post(body, kind)
    assert response.status_code == 400
    assert "malformed" in response.json()["error"]
    assert platform.stats["malformed"] == 1
    assert fake.web_api_calls() == []
    assert count(db, ProcessedEvent) == 0


@pytest.mark.parametrize("case", sorted(SIGNED_BUT_MALFORMED_PAYLOADS))
def test_signed_interactions_of_the_wrong_shape_get_400_and_nothing_runs(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform, case: str
) -> None:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": TORFAEN},
        "channel": {"id": TORFAEN_CHANNEL},
        "response_url": fake.response_url("malformed"),
        "actions": [{"type": "button", "action_id": "page", "value": "help"}],
        **SIGNED_BUT_MALFORMED_PAYLOADS[case],
    }
    response = slack.interaction(payload)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("payload")
    # The same click, well formed, is answered: only the shape was wrong.
    assert slack.button(TORFAEN, "page", "help").status_code == 200
    fake.wait_for("response_url")
    assert [c.path for c in fake.web_api_calls()] == [c.path for c in fake.calls_to("response_url")]
    assert len(fake.web_api_calls()) == 1


@pytest.mark.parametrize("stamp", ["abc", "1e9", "-5", "1.5", "١٢٣", "²", "9" * 40, ""])
def test_a_timestamp_that_is_not_whole_seconds_is_refused_even_when_signed_over(
    slack: SlackSender, fake: FakeSlackApi, stamp: str
) -> None:
    body = urlencode(SlashCommand(TORFAEN, "help", response_url=fake.response_url()).form())
    signature = slack_signature(SECRET, stamp, body)
    headers = {"X-Slack-Request-Timestamp": stamp.encode(), "X-Slack-Signature": signature}
    response = slack.http.post(
        slack.url,
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    assert response.status_code == 401
    assert fake.web_api_calls() == []


def test_a_body_over_the_cap_is_refused_before_it_is_read_or_checked(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform
) -> None:
    huge = "x" * (MAX_BODY_BYTES + 1)
    # Declared too long by its Content-Length, signed or not.
    assert slack.post(huge, "application/json").status_code == 413
    assert slack.post(huge, "application/json", signed=False).status_code == 413

    # Sent in chunks with no length: reading stops at the cap.
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b"y" * MAX_BODY_BYTES

    response = slack.http.post(slack.url, content=chunks(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 413
    assert platform.stats["too_large"] == 3
    assert platform.stats["refused"] == 0
    assert fake.web_api_calls() == []


def test_a_command_for_another_app_gets_400(slack: SlackSender, fake: FakeSlackApi) -> None:
    form = SlashCommand(TORFAEN, "help", command="/other", response_url=fake.response_url()).form()
    response = slack.post(urlencode(form), "application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert fake.web_api_calls() == []


def _start_request(url: str, body: str) -> socket.socket:
    """A signed request Slack has begun but not finished sending (half its body): the bot
    cannot acknowledge it until the rest arrives."""
    parts = urlsplit(url)
    stamp = int(NOW.timestamp())
    data = body.encode()
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n"
        f"X-Slack-Request-Timestamp: {stamp}\r\n"
        f"X-Slack-Signature: {slack_signature(SECRET, stamp, body)}\r\n\r\n"
    )
    pending = socket.create_connection((parts.hostname, parts.port), timeout=30)
    pending.sendall(head.encode() + data[: len(data) // 2])
    return pending


BOTH_POOLS = pytest.mark.parametrize("reply_processes", [0, 1], ids=["threads", "processes"])


@BOTH_POOLS
def test_a_reply_is_sent_while_another_request_still_awaits_its_ack(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    form = SlashCommand(TORFAEN, "meetings", response_url=fake.response_url("slow")).form()
    body = urlencode(form)
    with _start_request(slack.url, body) as pending:
        # The member's reply does not wait for anyone else's acknowledgement.
        assert "TP-001" in texts(reply_to(slack, TORFAEN, "actions overdue torfaen").body)
        pending.setblocking(False)
        with pytest.raises(BlockingIOError):
            pending.recv(1)  # the other request is still unanswered
        pending.setblocking(True)
        pending.sendall(body.encode()[len(body.encode()) // 2 :])
        answer = b"".join(iter(lambda: pending.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200")
    fake.wait_until(lambda: any(c.path == "/respond/slow" for c in fake.calls))
    (late,) = [c for c in fake.calls if c.path == "/respond/slow"]
    assert "Strategic Board" in texts(late.body)


@BOTH_POOLS
def test_clicks_on_one_message_are_answered_in_the_order_they_came(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    message = fake.response_url("one-message")
    # A long answer first, then shorter ones: none may overtake the one before.
    pages = ("actions torfaen", "find data centre", "decisions", "actions overdue torfaen")
    for words in pages:
        assert slack.button(TORFAEN, "page", words, response_url=message).status_code == 200
    said = [texts(call.body) for call in fake.wait_for("response_url", 4)]
    assert "Actions: open" in said[0]
    assert "Results:" in said[1]
    assert "Decisions" in said[2] and "Actions" not in said[2]
    assert "Actions: overdue" in said[3]


@BOTH_POOLS
def test_a_reply_job_that_fails_tells_the_member_and_the_next_one_is_answered(
    slack: SlackSender, fake: FakeSlackApi, engine: Engine
) -> None:
    # A real failure in the reply's work: the table of members is gone when it runs.
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE members RENAME TO members_gone")
    try:
        failed = reply_to(slack, TORFAEN, "actions overdue torfaen")
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE members_gone RENAME TO members")
    assert "Something went wrong on our side before we could answer" in texts(failed.body)
    assert "TP-001" in texts(reply_to(slack, TORFAEN, "actions overdue torfaen").body)


def test_url_verification_challenge_is_answered(slack: SlackSender) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "3eZbrw1aBm2rZgRNFdxV"})
    response = slack.post(body, "application/json")
    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV" in response.text


def test_health_check(slack: SlackSender) -> None:
    base = slack.url.rsplit("/slack/events", 1)[0]
    response = slack.http.get(base + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["platforms"]["slack"]["mode"] == "http"


# -- mentions, direct messages and events -----------------------------------------------------
def mention(text: str, ts: str = "1700000100.000200", **extra: Any) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": TORFAEN,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": ts,
        "channel": TORFAEN_CHANNEL,
        "event_ts": ts,
        **extra,
    }


def test_mention_is_answered_in_its_thread_for_the_channel(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    assert slack.event(mention("overdue actions for Torfaen")).status_code == 200
    call = fake.wait_for("chat.postMessage")[0]
    assert call.body["channel"] == TORFAEN_CHANNEL
    assert call.body["thread_ts"] == "1700000100.000200"
    out = texts(call.body)
    assert "TP-001" in out
    assert "TP-003" not in out  # exempt: the channel is not cleared for it


def test_mention_in_an_existing_thread_replies_in_that_thread(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    slack.event(mention("meetings", ts="1700000200.000300", thread_ts="1700000100.000100"))
    assert fake.wait_for("chat.postMessage")[0].body["thread_ts"] == "1700000100.000100"


def test_direct_message_is_answered_for_the_member_alone(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "user": TORFAEN,
        "text": "action TP-003",
        "ts": "1700000300.000100",
        "channel": "D0TOR00001",
    }
    slack.event(event)
    call = fake.wait_for("chat.postMessage")[0]
    assert call.body["channel"] == TORFAEN
    assert "Exempt contract renewal" in texts(call.body)


def test_retried_and_duplicate_events_are_answered_once(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform, db: Session
) -> None:
    event = mention("overdue actions for Torfaen")
    assert slack.event(event, event_id="Ev0DUP0001").status_code == 200
    fake.wait_for("chat.postMessage")
    # Slack's retries (X-Slack-Retry-Num) and a plain duplicate delivery of the same event.
    assert slack.event(event, event_id="Ev0DUP0001", retry=1).status_code == 200
    assert slack.event(event, event_id="Ev0DUP0001", retry=2).status_code == 200
    assert slack.event(event, event_id="Ev0DUP0001").status_code == 200
    fake.wait_until(lambda: platform.stats["events_skipped"] == 3)
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert count(db, ProcessedEvent) == 1


def test_duplicates_arriving_together_are_answered_once(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform
) -> None:
    event = mention("meetings")
    for retry in (None, 1, 2):
        slack.event(event, event_id="Ev0DUP0002", retry=retry)
    fake.wait_until(
        lambda: platform.stats["events_handled"] + platform.stats["events_skipped"] == 3
    )
    fake.wait_for("chat.postMessage")
    assert platform.stats["events_handled"] == 1
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_old_event_ids_are_forgotten(
    slack: SlackSender, fake: FakeSlackApi, session: Session, db: Session
) -> None:
    session.add_all(
        [
            ProcessedEvent(key="slack:EvOld", at=NOW - timedelta(days=3)),
            ProcessedEvent(key="slack:EvRecent", at=NOW - timedelta(hours=3)),
            ProcessedEvent(key="teams:old", at=NOW - timedelta(days=3)),
        ]
    )
    session.commit()
    slack.event(mention("meetings"), event_id="EvNew")
    fake.wait_for("chat.postMessage")
    db.expire_all()
    keys = set(db.scalars(select(ProcessedEvent.key)))
    assert keys == {"slack:EvRecent", "teams:old", "slack:EvNew"}


def test_app_home_is_published_for_the_member_alone(slack: SlackSender, fake: FakeSlackApi) -> None:
    event = {"type": "app_home_opened", "user": TORFAEN, "channel": "D0TOR00001", "tab": "home"}
    slack.event(event)
    call = fake.wait_for("views.publish")[0]
    assert call.body["user_id"] == TORFAEN
    view = call.body["view"]
    assert view["type"] == "home"
    out = texts(view)
    assert "TP-001" in out and "TP-002" in out
    assert "TP-003" in out  # she is cleared for exempt items and reads her home alone
    assert "TP-004" not in out  # police-only
    assert "SB-2026-031" in out
    assert "Strategic Board" in out and "questions close" in out


def test_app_home_for_an_unknown_user_says_who_to_ask(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    slack.event({"type": "app_home_opened", "user": "U0STRANGER", "tab": "home"})
    view = fake.wait_for("views.publish")[0].body["view"]
    assert "I don't know you yet" in texts(view)


def test_messages_tab_opening_publishes_nothing(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform
) -> None:
    slack.event({"type": "app_home_opened", "user": TORFAEN, "tab": "messages"})
    slack.event({"type": "app_home_opened", "user": TORFAEN, "tab": "home"})
    fake.wait_for("views.publish")
    assert len(fake.calls_to("views.publish")) == 1


# -- modals and buttons -----------------------------------------------------------------------
def decision_values(**overrides: Any) -> dict[str, Any]:
    def text(value: str | None) -> dict[str, Any]:
        return {"type": "plain_text_input", "value": value}

    def option(value: str | None) -> dict[str, Any]:
        chosen = {"value": value, "text": {"type": "plain_text", "text": value}} if value else None
        return {"type": "static_select", "selected_option": chosen}

    values = {
        "board": option("strategic"),
        "decided_on": {"type": "datepicker", "selected_date": "2026-11-19"},
        "ref": text(None),
        "title": text("Approved the cloud backup strategy"),
        "summary": text("Backups move to the Blaenavon data centre & a second site."),
        "marking": option("official"),
        "exempt_paragraph": option(None),
        "restricted_to": {"type": "multi_static_select", "selected_options": []},
        "link": {"type": "url_text_input", "value": "https://example.org/papers/sb-2026-11"},
    }
    values.update(overrides)
    return values


def open_form(slack: SlackSender, user: str, text: str) -> dict[str, Any]:
    response = slack.command(
        user, text, channel_id=SECRETARIAT_CHANNEL, channel_name="srs-secretariat"
    )
    assert response.status_code == 200
    call = slack.fake.wait_for("views.open")[-1]
    assert call.body["trigger_id"]
    view: dict[str, Any] = call.body["view"]
    return view


def test_record_decision_form_opens_and_submission_records_it(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    view = open_form(slack, SECRETARY, "record-decision")
    assert view["callback_id"] == "register.record_decision"
    assert "SB-2026-033" in texts(view)  # the next free ref is suggested
    response = slack.submit(SECRETARY, view, decision_values())
    assert response.status_code == 200
    assert response.content in (b"", b"{}")  # closes the form
    confirmation = fake.wait_for("chat.postEphemeral")[0]
    assert confirmation.body["channel"] == SECRETARIAT_CHANNEL
    assert confirmation.body["user"] == SECRETARY
    assert "Recorded SB-2026-033" in texts(confirmation.body)
    db.expire_all()
    decision = db.scalar(select(Decision).where(Decision.ref == "SB-2026-033"))
    assert decision is not None
    assert decision.title == "Approved the cloud backup strategy"
    assert decision.decided_on == date(2026, 11, 19)
    audit = db.scalar(select(AuditEvent).where(AuditEvent.entity_ref == "SB-2026-033"))
    assert audit is not None and audit.actor == "ceri-morgan" and audit.verb == "create"
    assert audit.before is None and audit.after is not None
    assert audit.after["title"] == "Approved the cloud backup strategy"


def test_the_decision_form_takes_the_welsh_title_and_summary(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    view = open_form(slack, SECRETARY, "record-decision")
    blocks = {block.get("block_id") for block in view["blocks"]}
    assert {"title_cy", "summary_cy"} <= blocks
    values = decision_values(
        title_cy={"type": "plain_text_input", "value": "Cymeradwywyd y strategaeth wrth gefn"},
        summary_cy={"type": "plain_text_input", "value": "Bydd copïau wrth gefn yn symud."},
    )
    assert slack.submit(SECRETARY, view, values).status_code == 200
    fake.wait_for("chat.postEphemeral")
    db.expire_all()
    decision = db.scalar(select(Decision).where(Decision.ref == "SB-2026-033"))
    assert decision is not None
    assert decision.title_cy == "Cymeradwywyd y strategaeth wrth gefn"
    assert decision.summary_cy == "Bydd copïau wrth gefn yn symud."


def test_the_update_form_shows_and_changes_the_welsh_title(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    stored = db.scalar(select(Action).where(Action.ref == "TP-002"))
    assert stored is not None
    stored.title_cy = "Newid switshis craidd"
    db.commit()
    view = open_form(slack, SECRETARY, "update TP-002")
    welsh = next(block for block in view["blocks"] if block.get("block_id") == "title_cy")
    assert welsh["element"]["initial_value"] == "Newid switshis craidd"
    values = {
        "status": {"type": "static_select", "selected_option": {"value": "in-progress"}},
        "rag": {"type": "static_select", "selected_option": {"value": "amber"}},
        "note": {"type": "plain_text_input", "value": None},
        "title_cy": {"type": "plain_text_input", "value": "Newid switshis craidd y rhwydwaith"},
    }
    response = slack.submit(SECRETARY, view, values)
    assert response.status_code == 200 and response.content in (b"", b"{}")
    assert "Welsh title" in texts(fake.wait_for("chat.postEphemeral")[0].body)
    db.expire_all()
    audit = db.scalar(select(AuditEvent).where(AuditEvent.entity_ref == "TP-002"))
    assert audit is not None
    assert audit.before == {"title_cy": "Newid switshis craidd"}
    assert audit.after == {"title_cy": "Newid switshis craidd y rhwydwaith"}


def test_record_decision_form_errors_are_shown_per_field_and_nothing_is_stored(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    view = open_form(slack, SECRETARY, "record-decision")
    decisions_before, audits_before = count(db, Decision), count(db, AuditEvent)
    values = decision_values(
        decided_on={"type": "datepicker", "selected_date": "2027-01-05"},
        title={"type": "plain_text_input", "value": "   "},
        ref={"type": "plain_text_input", "value": "FG-2026-001"},
        link={"type": "url_text_input", "value": "javascript:alert(1)"},
    )
    response = slack.submit(SECRETARY, view, values)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"decided_on", "title", "link"}
    assert "future" in answer["errors"]["decided_on"]
    assert all(len(message) <= 150 for message in answer["errors"].values())
    # A wrong prefix for the board is caught once the date is right.
    values["decided_on"] = {"type": "datepicker", "selected_date": "2026-11-19"}
    values["title"] = {"type": "plain_text_input", "value": "Fine title"}
    values["link"] = {"type": "url_text_input", "value": None}
    answer = slack.submit(SECRETARY, view, values).json()
    assert set(answer["errors"]) == {"ref"}
    assert "SB-" in answer["errors"]["ref"]
    assert count(db, Decision) == decisions_before
    assert count(db, AuditEvent) == audits_before
    assert fake.calls_to("chat.postEphemeral") == []


def test_forged_submission_from_a_non_secretariat_member_is_refused(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    view = {
        "type": "modal",
        "callback_id": "register.record_decision",
        "private_metadata": "",
        "blocks": [],
    }
    decisions_before, audits_before = count(db, Decision), count(db, AuditEvent)
    assert slack.submit(TORFAEN, view, decision_values()).status_code == 200
    refusal = fake.wait_for("chat.postMessage")[0]
    assert refusal.body["channel"] == TORFAEN
    assert "Only members with the role secretariat" in texts(refusal.body)
    forged_update = {**view, "callback_id": "register.update_action", "private_metadata": "x"}
    status = {"type": "static_select", "selected_option": {"value": "done"}}
    slack.submit(TORFAEN, forged_update, {"status": status})
    fake.wait_for("chat.postMessage", 2)
    assert count(db, Decision) == decisions_before
    assert count(db, AuditEvent) == audits_before
    db.expire_all()
    tp1 = db.scalar(select(Action).where(Action.ref == "TP-001"))
    assert tp1 is not None and tp1.status is ActionStatus.IN_PROGRESS


def test_mark_updated_button_opens_the_form_and_saving_updates_the_action(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    assert (
        slack.button(
            SECRETARY, "register.update_action_form", "TP-001", channel_id=SECRETARIAT_CHANNEL
        ).status_code
        == 200
    )
    view = fake.wait_for("views.open")[0].body["view"]
    assert view["callback_id"] == "register.update_action"
    assert "Migrate file shares" in texts(view)
    values = {
        "status": {"type": "static_select", "selected_option": {"value": "done"}},
        "rag": {"type": "static_select", "selected_option": {"value": "green"}},
        "note": {"type": "plain_text_input", "value": "Finished on 20 November."},
    }
    response = slack.submit(SECRETARY, view, values)
    assert response.status_code == 200 and response.content in (b"", b"{}")
    confirmation = fake.wait_for("chat.postEphemeral")[0]
    assert "Updated TP-001" in texts(confirmation.body)
    assert buttons(confirmation.body, "register.update_action_form")
    db.expire_all()
    action = db.scalar(select(Action).where(Action.ref == "TP-001"))
    assert action is not None
    assert (action.status, action.rag, action.last_update) == (
        ActionStatus.DONE,
        Rag.GREEN,
        "Finished on 20 November.",
    )
    audit = db.scalar(select(AuditEvent).where(AuditEvent.entity_ref == "TP-001"))
    assert audit is not None
    assert audit.before == {"status": "in-progress", "rag": "red", "last_update": ""}
    assert audit.after == {
        "status": "done",
        "rag": "green",
        "last_update": "Finished on 20 November.",
    }


def test_saving_the_form_unchanged_is_refused_on_the_form(
    slack: SlackSender, fake: FakeSlackApi, db: Session
) -> None:
    view = open_form(slack, SECRETARY, "update TP-002")
    values = {
        "status": {"type": "static_select", "selected_option": {"value": "in-progress"}},
        "rag": {"type": "static_select", "selected_option": {"value": "amber"}},
        "note": {"type": "plain_text_input", "value": None},
    }
    answer = slack.submit(SECRETARY, view, values).json()
    assert answer["response_action"] == "errors"
    assert "nothing would change" in answer["errors"]["status"]
    assert count(db, AuditEvent) == 0


def test_mark_updated_button_from_a_non_secretariat_member_opens_nothing(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    slack.button(TORFAEN, "register.update_action_form", "TP-001")
    refusal = fake.wait_for("response_url")[0]
    assert "Only members with the role secretariat" in texts(refusal.body)
    assert fake.calls_to("views.open") == []


def test_confirmation_goes_by_direct_message_when_the_channel_refuses_it(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    view = open_form(slack, SECRETARY, "record-decision")
    fake.fail_next("chat.postEphemeral", 200, error="user_not_in_channel")
    slack.submit(SECRETARY, view, decision_values())
    dm = fake.wait_for("chat.postMessage")[0]
    assert dm.body["channel"] == SECRETARY
    assert "Recorded SB-2026-033" in texts(dm.body)


def test_see_all_button_in_the_app_home_answers_by_direct_message(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    slack.button(TORFAEN, "page", "actions overdue torfaen", channel_id=None)
    dm = fake.wait_for("chat.postMessage")[0]
    assert dm.body["channel"] == TORFAEN
    out = texts(dm.body)
    assert "TP-001" in out and "TP-003" in out  # read alone: her own clearance applies


def test_inline_values_record_without_a_form(slack: SlackSender, db: Session) -> None:
    call = reply_to(
        slack,
        SECRETARY,
        'record-decision board=FG decided_on=2026-11-20 title="Set the 2027/28 budget"',
        channel_id=SECRETARIAT_CHANNEL,
    )
    assert "Recorded FG-2026-045" in texts(call.body)
    assert count(db, Decision) == 5


# -- long results, hostile text, Slack errors -------------------------------------------------
@pytest.fixture
def many_actions(session: Session, seed: Seed) -> None:
    for number in range(300):
        add_action(
            session,
            seed,
            f"TP-{500 + number}",
            "torfaen",
            date(2026, 12, 1),
            title=f"Bulk {number}",
        )
    session.commit()


def test_three_hundred_matches_are_paged_within_limits_and_next_works(
    many_actions: None, slack: SlackSender, fake: FakeSlackApi
) -> None:
    first = reply_to(slack, TORFAEN, "actions torfaen")
    assert len(first.body["blocks"]) <= 50
    assert re.search(r"showing 1–10 of 302", texts(first.body))
    (next_button,) = buttons(first.body, "page")
    slack.button(TORFAEN, "page", next_button["value"])
    second = fake.wait_for("response_url", 2)[-1]
    assert second.body["replace_original"] is True
    assert re.search(r"showing 11–20 of 302", texts(second.body))
    assert len(second.body["blocks"]) <= 50


HOSTILE = "<!channel> <@U123> & <https://evil.example|click> مرحبا بالعالم 🎉👩‍👩‍👧 "


def test_hostile_text_is_escaped_and_limited(slack: SlackSender, fake: FakeSlackApi) -> None:
    long_word = "x" * 10_000
    cases = [
        (TORFAEN, HOSTILE + long_word),
        (TORFAEN, "decisions " + HOSTILE),
        (TORFAEN, "<!channel>&<@U123>مرحبا🎉" + long_word),
        (TORFAEN, HOSTILE * 120),
        (TORFAEN, "help " + HOSTILE + long_word),
        (SECRETARY, f'record-decision board="{HOSTILE}" decided_on=2026-11-19 title=x'),
        (SECRETARY, f'update TP-002 note="{HOSTILE}"'),
    ]
    echoed = 0
    for user, text in cases:
        call = reply_to(slack, user, text)
        everything = (texts(call.body) + call.body["text"]).lower()
        assert "<!channel>" not in everything
        assert "<@u123>" not in everything
        assert "<https://evil" not in everything
        assert len(call.body["blocks"]) <= 50
        assert len(call.body["text"]) <= 40_000
        if "&lt;!channel&gt; &lt;@u123&gt; &amp;" in everything:
            echoed += 1
            assert "مرحبا بالعالم 🎉👩‍👩‍👧" in everything
    assert echoed >= 3  # help, the refused board and the stored note echo it, escaped
    assert fake.violations == []


def test_reply_too_long_for_one_message_is_cut_with_a_next_part_button(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform
) -> None:
    sections = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"Line {n}"}} for n in range(120)
    ]
    outcome = Outcome(Reply("x"), ("en",), [{"blocks": sections}], "Long reply")
    first = platform.message(outcome)
    assert len(first["blocks"]) == 50
    assert "Showing 1–48 of 120" in texts(first)
    (more,) = buttons(first, "slack.more")
    slack.button(TORFAEN, "slack.more", more["value"])
    second = fake.wait_for("response_url")[-1].body
    assert "Line 48" in texts(second) and "Line 47" not in texts(second)
    assert "Showing 49–96 of 120" in texts(second)
    (more,) = buttons(second, "slack.more")
    slack.button(TORFAEN, "slack.more", more["value"])
    third = fake.wait_for("response_url", 2)[-1].body
    assert "Showing 97–120 of 120" in texts(third)
    assert buttons(third, "slack.more") == []
    slack.button(TORFAEN, "slack.more", json.dumps({"k": "gone", "o": 48}))
    assert "expired" in texts(fake.wait_for("response_url", 3)[-1].body)


def test_rate_limit_is_waited_out_then_the_home_is_published(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    fake.fail_next("views.publish", 429, retry_after=1)
    slack.event({"type": "app_home_opened", "user": TORFAEN, "tab": "home"})
    fake.wait_for("views.publish")
    calls = fake.calls_to("views.publish")
    assert [c.status for c in calls] == [429, 200]


def test_server_error_is_retried_then_the_reply_is_posted(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    fake.fail_next("chat.postMessage", 500)
    slack.event(mention("meetings"))
    fake.wait_for("chat.postMessage")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [500, 200]


def test_response_url_rate_limit_is_retried(slack: SlackSender, fake: FakeSlackApi) -> None:
    fake.fail_next("response_url", 429, retry_after=1)
    slack.command(TORFAEN, "help")
    fake.wait_for("response_url")
    assert [c.status for c in fake.calls_to("response_url")] == [429, 200]


# -- every reply arrives or is reported --------------------------------------------------------
def command_with(
    slack: SlackSender, user: str, text: str, response_url: str, **fields: Any
) -> None:
    form = SlashCommand(user, text, response_url=response_url, **fields).form()
    assert slack.post(urlencode(form), "application/x-www-form-urlencoded").status_code == 200


def test_reply_goes_ephemeral_when_the_response_url_refuses_connections(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    command_with(slack, TORFAEN, "meetings", fake.unreachable_response_url())
    call = fake.wait_for("chat.postEphemeral")[0]
    assert (call.body["channel"], call.body["user"]) == (TORFAEN_CHANNEL, TORFAEN)
    assert "Strategic Board" in texts(call.body)
    assert fake.calls_to("response_url") == []


def test_reply_goes_ephemeral_when_the_response_url_times_out(
    slack: SlackSender, fake: FakeSlackApi, platform: SlackPlatform
) -> None:
    platform.response_url_timeout = 0.5
    fake.stall_next_response(3)
    slack.command(TORFAEN, "meetings")
    call = fake.wait_for("chat.postEphemeral")[0]
    assert call.body["user"] == TORFAEN
    assert "Strategic Board" in texts(call.body)
    assert [c.error for c in fake.calls_to("response_url")] == ["stalled"]


def test_reply_in_a_direct_message_goes_by_post_message_when_the_response_url_fails(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    fake.fail_next("response_url", 404)
    slack.command(TORFAEN, "action TP-003", channel_id="D0TOR00001", channel_name="directmessage")
    call = fake.wait_for("chat.postMessage")[0]
    assert call.body["channel"] == TORFAEN
    assert "Exempt contract renewal" in texts(call.body)  # still read as her direct message
    assert fake.calls_to("chat.postEphemeral") == []


def test_a_button_reply_falls_back_when_its_response_url_is_gone(
    slack: SlackSender, fake: FakeSlackApi
) -> None:
    fake.fail_next("response_url", 500, times=4)  # every retry fails too
    slack.button(TORFAEN, "page", "actions overdue torfaen")
    call = fake.wait_for("chat.postEphemeral")[0]
    assert "TP-001" in texts(call.body)
    assert [c.status for c in fake.calls_to("response_url")] == [500] * 4


def test_a_reply_no_route_reaches_is_logged_once_with_the_member_and_command(
    slack: SlackSender,
    fake: FakeSlackApi,
    platform: SlackPlatform,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.fail_next("chat.postEphemeral", 200, error="channel_not_found")
    fake.fail_next("chat.postMessage", 200, error="user_not_found")
    with caplog.at_level(logging.WARNING, logger="bot.platforms.slack.app"):
        command_with(slack, TORFAEN, "meetings", fake.unreachable_response_url())
        fake.wait_until(lambda: platform.stats["replies_lost"] == 1)
        fake.wait_until(lambda: platform.health()["working"] == 0)
    lost = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lost) == 1
    message = lost[0].getMessage()
    assert TORFAEN in message and "/scrutiny meetings" in message
    assert "response_url" in message and "channel_not_found" in message
    # Tried once each, in order; nothing else was attempted.
    assert [c.method for c in fake.web_api_calls()] == ["chat.postEphemeral", "chat.postMessage"]


def test_manifest_asks_for_what_the_app_listens_to_and_no_more() -> None:
    manifest = yaml.safe_load((PROJECT_ROOT / "config" / "slack-manifest.yaml").read_text())
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    expanded = [e for e in EVENTS if e != "message"] + ["message.im", "message.mpim"]
    assert sorted(events) == sorted(expanded)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert sorted(scopes) == [
        "app_mentions:read",
        "chat:write",
        "commands",
        "files:write",
        "im:history",
        "metadata.message:read",
        "mpim:history",
        "mpim:read",
    ]
    shortcuts = {(s["type"], s["callback_id"]) for s in manifest["features"]["shortcuts"]}
    assert shortcuts == {("message", DRAFT_SHORTCUT), ("global", ASK_SHORTCUT)}
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


# -- replies built in worker processes (SLACK_REPLY_PROCESSES) --------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("reply_processes", [1])
def test_reply_processes_start_with_the_app_answer_and_stop_with_it(
    platform: SlackPlatform, fake: FakeSlackApi, seed: Seed
) -> None:
    with served(platform, fake) as slack:
        assert platform._replies is not None
        (worker,) = platform._replies.pids()  # started with the app
        assert worker != os.getpid() and _alive(worker)
        assert "TP-001" in texts(reply_to(slack, TORFAEN, "actions overdue torfaen").body)
        assert platform.health()["reply_processes"] == 1
    assert not _alive(worker)


@contextmanager
def database_held(engine: Engine, table: str = "decisions") -> Iterator[None]:
    """Another connection holding what a writing command needs, until the block ends: SQLite's
    write lock, or PostgreSQL's lock on `table`."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        if engine.dialect.name == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        else:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        raw.rollback()
        raw.close()


@pytest.mark.parametrize("reply_processes", [1])
def test_a_reply_worker_that_dies_mid_job_is_reported_to_the_member_and_replaced(
    platform: SlackPlatform, fake: FakeSlackApi, seed: Seed, db: Session
) -> None:
    record = 'record-decision board=FG decided_on=2026-11-20 title="Set the 2027/28 budget"'
    with served(platform, fake) as slack:
        assert platform._replies is not None
        (worker,) = platform._replies.pids()
        with database_held(platform.app.engine):
            # The worker takes the job and waits for the database; then it is killed.
            response = slack.command(SECRETARY, record, channel_id=SECRETARIAT_CHANNEL)
            assert response.status_code == 200
            os.kill(worker, signal.SIGKILL)
            (told,) = fake.wait_for("response_url")
        assert "Something went wrong on our side before we could answer" in texts(told.body)
        assert count(db, Decision) == 4  # nothing recorded, and the job is not run again
        assert platform.health()["reply_processes_restarted"] == 1
        # A new worker, started at once, answers what comes next.
        (replacement,) = platform._replies.pids()
        assert replacement != worker
        again = reply_to(slack, SECRETARY, record, channel_id=SECRETARIAT_CHANNEL)
        assert "Recorded FG-2026-045" in texts(again.body)
        assert len(fake.calls_to("response_url")) == 2
