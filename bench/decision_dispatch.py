"""A whole `decision REF` dispatch against the look-up alone: CPU and statements per dispatch.

    .venv/bin/python bench/decision_dispatch.py [--batches 3] [--size 100] [DATABASE_URL]

Builds the seeded collaboration the tests use (a fresh SQLite file unless a URL of an empty
database is given), turns the answer cache off (every dispatch runs the handler), warms the
process, then times batches of `decision SB-2026-031` from a Torfaen member in Torfaen's Slack
channel through `app.dispatch`. The floor, in the same run, is the ref's look-up alone
(`queries.get_decision` through `db.look_up`) for the same audience. Prints the best batch's
CPU ms per dispatch (process time, so other processes' load counts less than on a clock),
statements per dispatch, and the ratio to the floor.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import create_app
from bot.clock import CLOCK
from bot.db import look_up, make_engine, make_session_factory, migrate
from bot.domain import Platform
from bot.messages import Request
from bot.services import queries
from bot.settings import load_settings
from bot.visibility import audience_of_channel, audience_of_member
from tests.conftest import NOW
from tests.factories import seed_collaboration

REF = "SB-2026-031"


def best_batch(
    run: Callable[[], Any], engine: Engine, batches: int, size: int
) -> tuple[float, float]:
    """The best batch's CPU ms per call, and statements per call."""
    count = [0]

    def note(*_args: Any) -> None:
        count[0] += 1

    for _ in range(size // 2):
        run()
    best = float("inf")
    event.listen(engine, "before_cursor_execute", note)
    try:
        for _ in range(batches):
            started = time.process_time()
            for _ in range(size):
                run()
            best = min(best, (time.process_time() - started) * 1000 / size)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return best, count[0] / (batches * size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("url", nargs="?", default=None)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    url = args.url or f"sqlite:///{Path(tempfile.mkdtemp()) / 'dispatch.db'}"
    engine = make_engine(url)
    migrate(engine)
    with CLOCK.frozen(NOW), make_session_factory(engine)() as session:
        seed_collaboration(session)
        session.commit()
    settings = load_settings(
        database_url=url, slack_bot_token=None, slack_signing_secret=None, slack_app_token=None
    )
    app = create_app(settings, engine)
    app.answers.size = 0
    request = Request(
        Platform.SLACK, "U0TOR00001", f"decision {REF}", channel_id="C0TOR00001", now=NOW
    )
    first = app.dispatch(request)
    if REF not in first.text or first.cached:
        raise SystemExit(f"the dispatch did not show {REF}: {first.text[:200]!r}")
    with app.sessions() as session:
        member = app.find_member(session, Platform.SLACK, "U0TOR00001")
        channel = app.find_channel(session, Platform.SLACK, "C0TOR00001")
        assert member is not None and channel is not None
        audience = audience_of_member(member).together_with(
            audience_of_channel(channel, app.partner_slugs(session))
        )
    found = look_up(engine, lambda c: queries.get_decision(c, audience, REF))
    if not isinstance(found, queries.Found):
        raise SystemExit(f"the look-up did not find {REF}: {found!r}")

    ours = best_batch(lambda: app.dispatch(request), engine, args.batches, args.size)
    floor = best_batch(
        lambda: look_up(engine, lambda c: queries.get_decision(c, audience, REF)),
        engine,
        args.batches,
        args.size,
    )
    print(f"{engine.dialect.name}: best of {args.batches} batches of {args.size}")
    print(f"  dispatch of 'decision {REF}'  {ours[0]:7.3f} ms CPU  {ours[1]:5.1f} statements")
    print(f"  its look-up alone (floor)     {floor[0]:7.3f} ms CPU  {floor[1]:5.1f} statements")
    print(f"  dispatch / look-up            {ours[0] / floor[0]:7.1f}x")


if __name__ == "__main__":
    main()
