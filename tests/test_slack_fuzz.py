"""A seeded fuzz of POST /slack/events through the real endpoint (uvicorn on 127.0.0.1, the
real Bolt app, Slack's Web API played by the fake): whatever arrives, no answer is a 5xx, no
unsigned request is accepted, and nothing a handler does ever traces back to one.

`SCRUTINY_FUZZ_REQUESTS=10000 python3 dev.py test -q -s tests/test_slack_fuzz.py` runs the
one-off 10,000 and prints the counts by status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.app import ScrutinyApp
from bot.platforms.slack.app import DRAFT_SHORTCUT, SlackPlatform
from bot.platforms.slack.inbound import MAX_BODY_BYTES
from tests import test_slack_http
from tests.conftest import NOW
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, SlackSender, SlashCommand
from tests.support.webhook_fuzz import (
    REQUESTS,
    Breaker,
    Fuzzer,
    Template,
    check_refused_or_answered,
    check_untraced,
    rows_as_text,
    run,
    summary,
)

slack_app, platform, slack, db = (
    test_slack_http.slack_app,
    test_slack_http.platform,
    test_slack_http.slack,
    test_slack_http.db,
)
SECRET = test_slack_http.SECRET
SECRETARY, TORFAEN = test_slack_http.SECRETARY, test_slack_http.TORFAEN
CHANNEL = test_slack_http.TORFAEN_CHANNEL
STAMP = int(NOW.timestamp())


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


def _signature(timestamp: str, body: bytes, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def sign(body: bytes, stamp: int = STAMP) -> dict[str, bytes]:
    return {
        "X-Slack-Request-Timestamp": str(stamp).encode(),
        "X-Slack-Signature": _signature(str(stamp), body).encode(),
    }


def _unsigned(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
    return "unsigned", {}


def _half_signed(rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    headers = sign(body)
    del headers[rng.choice(list(headers))]
    return "half signed", headers


def _forged(rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
    forged = "v0=" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
    return "forged", {
        "X-Slack-Request-Timestamp": str(STAMP).encode(),
        "X-Slack-Signature": forged.encode(),
    }


def _wrong_secret(_rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    signature = _signature(str(STAMP), body, "not-the-signing-secret")
    return "wrong secret", {
        "X-Slack-Request-Timestamp": str(STAMP).encode(),
        "X-Slack-Signature": signature.encode(),
    }


def _stale(rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    drift = rng.choice((301, 302, 600, 3600, 86_400 * 30, 10**9))
    return "stale", sign(body, STAMP + rng.choice((-1, 1)) * drift)


NOT_NUMBERS = ["abc", "1e9", "-5", "1 2", "1.5", "", "0x10", "١٢٣", "²", "9" * 40, "NaN", "+1"]


def _bad_timestamp(rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    # Correctly signed over the bad timestamp: only the timestamp is wrong.
    stamp = rng.choice([*NOT_NUMBERS, f"{STAMP},", f"{STAMP}.0"])
    return "timestamp not a number", {
        "X-Slack-Request-Timestamp": stamp.encode(),
        "X-Slack-Signature": _signature(stamp, body).encode(),
    }


def _other_body(_rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    return "signed for another body", sign(body + b"&tampered=1")


def _mangled(rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    good = sign(body)
    signature = good["X-Slack-Signature"].decode()
    good["X-Slack-Signature"] = rng.choice(
        [
            signature.replace("v0=", "v1=", 1),
            signature.upper(),
            signature[:-2],
            signature + "00",
            signature[3:],
            "v0=",
            "v0=é" + signature[4:],
        ]
    ).encode()
    return "mangled signature", good


BREAKERS: list[Breaker] = [
    _unsigned,
    _half_signed,
    _forged,
    _wrong_secret,
    _stale,
    _bad_timestamp,
    _other_body,
    _mangled,
]


def templates(fake: FakeSlackApi) -> Any:
    """Valid requests of every kind the bot listens to, each carrying `marker`."""

    def make(marker: str) -> list[Template]:
        number = int(marker[2:8])
        command = SlashCommand(
            TORFAEN, "meetings", response_url=fake.response_url(marker), trigger_id=marker
        )
        secretary = SlashCommand(
            SECRETARY,
            f"find {marker}",
            channel_id="C0SEC00001",
            channel_name="srs-secretariat",
            response_url=fake.response_url(marker),
            trigger_id=marker,
        )

        def event(inner: dict[str, Any]) -> dict[str, Any]:
            return {
                "token": "legacy",
                "team_id": "T0SRS00001",
                "api_app_id": "A0APP00001",
                "type": "event_callback",
                "event_id": f"Ev{marker}",
                "event_time": 1700000000,
                "event": inner,
                "authorizations": [
                    {"team_id": "T0SRS00001", "user_id": BOT_USER_ID, "is_bot": True}
                ],
            }

        ts = f"1700000000.{number:06d}"
        mention = {
            "type": "app_mention",
            "user": TORFAEN,
            "text": f"<@{BOT_USER_ID}> help {marker}",
            "ts": ts,
            "channel": CHANNEL,
            "event_ts": ts,
        }
        direct = {
            "type": "message",
            "channel_type": "im",
            "user": TORFAEN,
            "text": f"meetings {marker}",
            "ts": ts,
            "channel": "D0TOR00001",
        }
        home = {"type": "app_home_opened", "user": TORFAEN, "channel": "D0TOR00001", "tab": "home"}
        base = {"team": {"id": "T0SRS00001", "domain": "srs"}, "api_app_id": "A0APP00001"}
        button = {
            **base,
            "type": "block_actions",
            "user": {"id": TORFAEN, "team_id": "T0SRS00001"},
            "trigger_id": marker,
            "response_url": fake.response_url(marker),
            "channel": {"id": CHANNEL, "name": "srs-torfaen"},
            "container": {"type": "message", "is_ephemeral": True, "message_ts": ts},
            "actions": [
                {
                    "type": "button",
                    "action_id": "page",
                    "block_id": "b",
                    "value": f"meetings {marker}",
                    "action_ts": ts,
                }
            ],
        }
        more = json.loads(json.dumps(button))
        more["actions"][0].update(action_id="slack.more", value=json.dumps({"k": marker, "o": 48}))
        view = {
            "id": "V0VIEW0002",
            "type": "modal",
            "callback_id": "register.update_action",
            "private_metadata": json.dumps(
                {"channel": "C0SEC00001", "direct": False, "data": "TP-002"}
            ),
            "blocks": [{"type": "input", "block_id": "note", "element": {}}],
            "state": {
                "values": {
                    "status": {
                        "status": {
                            "type": "static_select",
                            "selected_option": {"value": "in-progress"},
                        }
                    },
                    "note": {"note": {"type": "plain_text_input", "value": f"Checked {marker}"}},
                    "when": {"when": {"type": "datetimepicker", "selected_date_time": 1700000000}},
                }
            },
        }
        submission = {
            **base,
            "type": "view_submission",
            "user": {"id": SECRETARY},
            "trigger_id": marker,
            "view": view,
        }
        closed = {**base, "type": "view_closed", "user": {"id": SECRETARY}, "view": view}
        shortcut = {
            **base,
            "type": "message_action",
            "callback_id": DRAFT_SHORTCUT,
            "trigger_id": marker,
            "response_url": fake.response_url(marker),
            "user": {"id": TORFAEN},
            "channel": {"id": CHANNEL},
            "message": {"type": "message", "text": f"When will TP-001 finish? {marker}", "ts": ts},
        }
        challenge = {"token": "legacy", "type": "url_verification", "challenge": marker}
        return [
            Template(command.form(), "form"),
            Template(secretary.form(), "form"),
            Template(event(mention), "json"),
            Template(event(direct), "json"),
            Template(event(home), "json"),
            Template(button, "payload"),
            Template(more, "payload"),
            Template(submission, "payload"),
            Template(closed, "payload"),
            Template(shortcut, "payload"),
            Template(challenge, "json"),
        ]

    return make


def _retry(number: int) -> dict[str, bytes]:
    return {"X-Slack-Retry-Num": str(number).encode(), "X-Slack-Retry-Reason": b"http_timeout"}


def settle(platform: SlackPlatform, fake: FakeSlackApi) -> None:
    """Wait until no listener is working and nothing has changed for a moment."""
    last: tuple[int, int] | None = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = (len(fake.calls), sum(platform.stats.values()))
        if platform.health()["working"] == 0 and now == last:
            return
        last = now
        time.sleep(0.3)
    raise AssertionError(f"the platform never settled: {platform.health()}")


def test_fuzzed_requests_are_refused_or_answered_and_never_fail(
    slack: SlackSender,
    fake: FakeSlackApi,
    platform: SlackPlatform,
    slack_app: ScrutinyApp,
    engine: Engine,
) -> None:
    fuzzer = Fuzzer(templates(fake), sign, BREAKERS, cap=MAX_BODY_BYTES, retry_headers=_retry)
    results = run(slack.http, slack.url, fuzzer.cases(REQUESTS))
    settle(platform, fake)
    print("\n" + summary("POST /slack/events", results))

    check_refused_or_answered(results, platform.stats["refused"])
    # Nothing was done for an unsigned request: no call to Slack, no row, names its marker.
    recorded = [f"{call.path} {json.dumps(call.body, default=str)}" for call in fake.calls]
    traced = check_untraced(results, "\n".join([*recorded, rows_as_text(engine)]))
    # The check can fail: the valid requests' work is found by their markers (those that
    # leave none, such as a closed form or a URL check, are the rest).
    valid = [r for r in results if r.case.expect_ok]
    assert len(traced) >= len(valid) // 2
