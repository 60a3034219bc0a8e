"""POST /api/messages fuzzed through the real web app under uvicorn, with tokens from the local
token issuer: whatever arrives, no answer is a 5xx; an activity without a valid token is
refused (401, or 413 over the size cap) before any handler runs, and nothing it carried reaches
the Bot Connector or the database.

Two fuzzers: the seeded one Slack's endpoint is fuzzed with (real activities mutated field by
field, junk bodies, retries, oversized bodies, and broken tokens), and hypothesis drawing
arbitrary JSON bodies, unsigned and signed.

`SCRUTINY_FUZZ_REQUESTS=10000 python3 dev.py test -q -s tests/test_teams_bot_fuzz.py` runs
the one-off 10,000 and prints the counts by status.
"""

from __future__ import annotations

import json
import random
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from bot.platforms.teams.activities import MAX_REQUEST_BYTES
from bot.platforms.teams.sdk_bot import MESSAGES_PATH, TeamsBot
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.teams import activity
from tests.support.webhook_fuzz import (
    REQUESTS,
    Breaker,
    Fuzzer,
    Template,
    check_untraced,
    rows_as_text,
    run,
    summary,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _bearer(token: str) -> dict[str, bytes]:
    return {"Authorization": f"Bearer {token}".encode()}


def breakers(issuer: FakeTokenIssuer, service_url: str) -> list[Breaker]:
    """Ways a request's token is missing or wrong, each the SDK must refuse."""

    def unsigned(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        return "unsigned", {}

    def expired(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        return "expired", _bearer(issuer.token(service_url, expires_in=-600))

    def other_audience(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        return "another bot's", _bearer(issuer.token(service_url, audience="another-bot"))

    def forged(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        return "forged", _bearer(issuer.token(service_url, key=issuer.stranger_key()))

    def other_service(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        return "another service URL", _bearer(issuer.token("https://smba.example.invalid/emea/"))

    def mangled(rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
        good = issuer.token(service_url)
        head, payload, signature = good.split(".")
        value = rng.choice(
            [
                good,
                f"Basic {good}",
                f"Bearer{good}",
                f"Bearer {good[:-8]}",
                f"Bearer {head}.{payload}.",
                f"Bearer {head}.{payload}",
                f"Bearer {head}.{payload[::-1]}.{signature}",
                "Bearer ***",
                "Bearer",
                f"Bearer é{good}",
            ]
        )
        return "mangled token", {"Authorization": value.encode()}

    return [unsigned, expired, other_audience, forged, other_service, mangled]


def test_fuzzed_activities_are_refused_or_answered_and_never_fail(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    bot: TeamsBot,
    engine: Engine,
) -> None:
    token = issuer.token(connector.service_url)

    def templates(marker: str) -> list[Template]:
        texts = ["help", "meetings", "actions overdue torfaen", f"find {marker}", "questions"]
        return [
            Template(activity(connector, kind, f"{text} {marker}", ident=marker), "json")
            for text in texts
            for kind in ("personal", "channel")
        ]

    fuzzer = Fuzzer(
        templates,
        lambda _body: _bearer(token),
        breakers(issuer, connector.service_url),
        cap=MAX_REQUEST_BYTES,
    )
    with httpx.Client(timeout=30) as http:
        results = run(http, served.url + MESSAGES_PATH, fuzzer.cases(REQUESTS))
    print("\n" + summary("POST /api/messages", results))

    assert [(r.case.kind, r.status) for r in results if r.status >= 500] == []
    unsigned = [r for r in results if not r.case.signed]
    # Refused: 401, or 413 over the cap, or 400 for a body that is not JSON at all.
    assert [(r.case.kind, r.status) for r in unsigned if r.status not in (400, 401, 413)] == []
    # Without a token at all a request is refused before its body is read, however large.
    tokenless = [r for r in results if "authorization" not in {h.lower() for h in r.case.headers}]
    assert [(r.case.kind, r.status) for r in tokenless if r.status != 401] == []
    assert all(r.status == 413 for r in results if r.case.kind == "huge" and r not in tokenless)
    assert [(r.case.kind, r.status) for r in results if r.case.expect_ok and r.status != 200] == []
    # Every refusal is counted; a signed body may be refused too (no or another serviceUrl).
    assert bot.stats["refused"] >= sum(1 for r in unsigned if r.status == 401)
    valid = sum(1 for r in results if r.case.expect_ok)
    connector.wait_until(lambda: bot.stats["answered"] + bot.stats["failed"] >= valid, 60)
    recorded = json.dumps([call.body for call in connector.calls]) + rows_as_text(engine)
    # Nothing was done for a request without a valid token: no reply and no row names its
    # marker. Each valid message was answered in its conversation.
    check_untraced(results, recorded)
    assert len(connector.calls) >= valid


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
_FIELDS = [
    "type",
    "id",
    "serviceUrl",
    "from",
    "recipient",
    "conversation",
    "channelData",
    "text",
    "entities",
    "value",
    "name",
]


@st.composite
def activity_bodies(draw: st.DrawFn, service_url: str) -> dict[str, Any]:
    """A Teams activity with some of its fields replaced by arbitrary JSON, or dropped."""
    body = activity(service_url, draw(st.sampled_from(["personal", "groupChat", "channel"])), "")
    for name in draw(st.lists(st.sampled_from(_FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            body.pop(name, None)
        else:
            body[name] = draw(_JSON)
    return body


def test_arbitrary_activities_without_a_token_are_refused_before_any_handler(
    connector: FakeBotConnector, served: ServedApp, bot: TeamsBot
) -> None:
    with httpx.Client(timeout=30) as http:

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(body=activity_bodies(connector.service_url) | _JSON)
        def refused(body: Any) -> None:
            content = json.dumps(body).encode()
            answer = http.post(
                served.url + MESSAGES_PATH,
                content=content,
                headers={"Content-Type": "application/json"},
            )
            assert answer.status_code == 401, (answer.status_code, answer.text)

        refused()
    assert bot.stats["dispatched"] == 0
    assert connector.calls == []


def test_arbitrary_activities_with_a_valid_token_never_fail(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, bot: TeamsBot
) -> None:
    token = issuer.token(connector.service_url)
    with httpx.Client(timeout=30) as http:

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(body=activity_bodies(connector.service_url) | _JSON)
        def answered(body: Any) -> None:
            answer = http.post(
                served.url + MESSAGES_PATH,
                content=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            assert answer.status_code < 500, (answer.status_code, answer.text, body)

        answered()
