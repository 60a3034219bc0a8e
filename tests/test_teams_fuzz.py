"""A seeded fuzz of POST /teams/messages through the real endpoint (uvicorn on 127.0.0.1):
whatever arrives, no answer is a 5xx, no unsigned request is accepted, and nothing a handler
does ever traces back to one.

`SCRUTINY_FUZZ_REQUESTS=10000 python3 dev.py test -q -s tests/test_teams_fuzz.py` runs the
one-off 10,000 and prints the counts by status.
"""

from __future__ import annotations

import base64
import random

import httpx
from sqlalchemy import Engine

from bot.app import ScrutinyApp
from bot.models import Channel
from bot.platforms.teams.webhook import MAX_REQUEST_BYTES, TeamsPlatform, signature
from bot.web import create_web_app
from tests import test_teams_http
from tests.fakes.slack_api import ServedApp
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

teams_settings, teams_app, channel, platform = (
    test_teams_http.teams_settings,
    test_teams_http.teams_app,
    test_teams_http.channel,
    test_teams_http.platform,
)
SECRET = test_teams_http.SECRET
OTHER_SECRET = base64.b64encode(b"another team's security token").decode()


def sign(body: bytes) -> dict[str, bytes]:
    return {"Authorization": f"HMAC {signature(SECRET, body)}".encode()}


def _unsigned(_rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
    return "unsigned", {}


def _forged(rng: random.Random, _body: bytes) -> tuple[str, dict[str, bytes]]:
    made_up = base64.b64encode(rng.randbytes(32)).decode()
    return "forged", {"Authorization": f"HMAC {made_up}".encode()}


def _other_secret(_rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    return "wrong secret", {"Authorization": f"HMAC {signature(OTHER_SECRET, body)}".encode()}


def _other_body(_rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    return "signed for another body", sign(body + b" ")


def _mangled(rng: random.Random, body: bytes) -> tuple[str, dict[str, bytes]]:
    good = signature(SECRET, body)
    value = rng.choice(
        [
            f"Bearer {good}",
            f"HMAC{good}",
            f"HMAC {good[:-4]}",
            f"HMAC {good}AAAA",
            "HMAC ***",
            "HMAC",
            f"hmac {good.lower()}",
            f"HMAC é{good}",
            good,
        ]
    )
    return "mangled signature", {"Authorization": value.encode()}


BREAKERS: list[Breaker] = [_unsigned, _forged, _other_secret, _other_body, _mangled]


def templates(marker: str) -> list[Template]:
    """Valid outgoing-webhook activities, each carrying `marker`."""
    texts = ["help", "meetings", "actions overdue torfaen", f"find {marker}", "questions"]
    return [
        Template(test_teams_http.activity(f"{text} {marker}", ident=marker), "json")
        for text in texts
    ]


def test_fuzzed_requests_are_refused_or_answered_and_never_fail(
    teams_app: ScrutinyApp, platform: TeamsPlatform, channel: Channel, engine: Engine
) -> None:
    fuzzer = Fuzzer(templates, sign, BREAKERS, cap=MAX_REQUEST_BYTES)
    with (
        ServedApp(create_web_app(teams_app, [platform])) as served,
        httpx.Client(timeout=30) as http,
    ):
        results = run(http, served.url + "/teams/messages", fuzzer.cases(REQUESTS))
    print("\n" + summary("POST /teams/messages", results))

    check_refused_or_answered(results, platform.stats["refused"])
    # Nothing was done for an unsigned request: no row names its marker. Every message run
    # claims its activity id, which is the marker, so each valid one is found.
    traced = check_untraced(results, rows_as_text(engine))
    assert traced == {r.case.marker for r in results if r.case.expect_ok}
