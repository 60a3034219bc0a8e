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
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.models import Base, Channel
from bot.platforms.teams import MAX_REQUEST_BYTES, TeamsPlatform, signature
from bot.web import create_web_app
from tests import test_teams_http
from tests.fakes.slack_api import ServedApp
from tests.support.webhook_fuzz import (
    REQUESTS,
    Breaker,
    Fuzzer,
    Template,
    markers_in,
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


def everything_recorded(engine: Engine) -> str:
    """Every row in the database, as text."""
    with Session(engine) as session:
        return "\n".join(
            str(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        )


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

    assert [(r.case.kind, r.status) for r in results if r.status >= 500] == []
    unsigned = [r for r in results if not r.case.signed]
    accepted = [(r.case.kind, r.status) for r in unsigned if r.status not in (401, 413)]
    assert accepted == []
    assert all(r.status == 401 for r in unsigned if r.case.kind != "huge")
    assert all(r.status == 413 for r in results if r.case.kind == "huge")
    assert [(r.case.kind, r.status) for r in results if r.case.expect_ok and r.status != 200] == []
    assert platform.stats["refused"] == sum(1 for r in unsigned if r.case.kind != "huge")

    # Nothing was done for an unsigned request: no row names its marker (every message run
    # claims its activity id, which is the marker).
    seen = markers_in(everything_recorded(engine))
    signed = {r.case.marker for r in results if r.case.signed}
    assert seen & ({r.case.marker for r in unsigned} - signed) == set()
    valid = {r.case.marker for r in results if r.case.expect_ok}
    assert valid <= seen
