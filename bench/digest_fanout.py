#!/usr/bin/env python3
"""One digest cycle fanned out to many channels, against the fake Slack API's rate limits.

Builds a register of 50,000 decisions and 20,000 actions, N channels with a Monday 9am digest
(a mix of partners, clearances and languages), then runs one cycle: `run_due_digests` (stamp,
build, render, write each digest with its watermark) and the outbox sender posting through the
real slack_sdk client to the fake server, which allows 1 message/s per channel and (default)
50/s across the workspace. Prints:

- makespan (cycle start to last post) against the floor the limits allow (N / workspace rate);
- duplicates and losses (both must be 0), and rate-limit violations: posts the fake refused
  with 429 because they broke its per-channel or workspace bucket (must be 0: the sender's pacer
  runs at 97% of the workspace rate with a burst of `--burst`, half the fake's);
- TCP connections the fake saw for the posts (kept alive: about one per post in flight);
- database statements: the cycle's reads at two channel counts (must not grow with channels)
  and writes per digest;
- peak traced memory of the cycle and the process's peak RSS.

Default is 200 channels (floor 4 s); `--full` runs 1,000 (floor 20 s). Runs in under a minute.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, insert, select, text, update  # noqa: E402

from bot.app import create_app  # noqa: E402
from bot.db import make_engine, migrate, unit_of_work  # noqa: E402
from bot.domain import (  # noqa: E402
    ActionStatus,
    ChannelLanguage,
    DeliveryState,
    Marking,
    Platform,
    Rag,
)
from bot.models import (  # noqa: E402
    Action,
    Board,
    Channel,
    Decision,
    Delivery,
    Partner,
    RegisterEntry,
)
from bot.outbox import Pacer, Sender  # noqa: E402
from bot.platforms.slack.messenger import SlackMessenger  # noqa: E402
from bot.posted_messages import PostedRegister  # noqa: E402
from bot.scheduler import due_digests, make_sender, run_due_digests  # noqa: E402
from bot.services.digests import plan_digests  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.factories import BOARDS, PARTNERS  # noqa: E402
from tests.fakes.slack_limits import LimitedSlackApi  # noqa: E402
from tests.support.statements import counting  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
"""The cycle runs at Monday 23 November 2026, 9am (GMT)."""
PREVIOUS = NOW - timedelta(days=7)
AUDIENCE_PERIOD = 28


def _marking(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.05:
        return {
            "marking": Marking.OFFICIAL,
            "exempt_paragraph": rng.randint(12, 18),
            "restricted_to": [],
        }
    if roll < 0.08:
        return {
            "marking": Marking.OFFICIAL_SENSITIVE,
            "exempt_paragraph": None,
            "restricted_to": ["gwent-police"],
        }
    if roll < 0.18:
        return {
            "marking": Marking.OFFICIAL_SENSITIVE,
            "exempt_paragraph": None,
            "restricted_to": [],
        }
    return {"marking": Marking.OFFICIAL, "exempt_paragraph": None, "restricted_to": []}


def build_register(
    engine: Engine, channels: int, decisions: int, actions: int, new_decisions: int
) -> None:
    """Partners, boards, channels, the register, and a previous cycle's watermarks."""
    rng = random.Random(2026)
    with engine.begin() as conn:
        conn.execute(
            insert(Partner.__table__),
            [{"slug": s, "name": n, "name_cy": c, "kind": k} for s, n, c, k in PARTNERS],
        )
        conn.execute(
            insert(Board.__table__),
            [{"slug": s, "prefix": p, "name": n, "name_cy": c} for s, p, n, c in BOARDS],
        )
        partner_ids = dict(conn.execute(select(Partner.slug, Partner.id)).all())
        board_ids = dict(conn.execute(select(Board.prefix, Board.id)).all())
        partner_choices = [None, *partner_ids]
        # Audiences repeat every AUDIENCE_PERIOD channels: 7 partner choices x 2 clearances x
        # exempt access or not. Languages cycle independently (they change rendering, not reads).
        conn.execute(
            insert(Channel.__table__),
            [
                {
                    "slug": f"fan-{n:05d}",
                    "name": f"#fan-{n:05d}",
                    "platform": Platform.SLACK,
                    "external_id": f"C{n:08d}",
                    "partner_id": partner_ids.get(partner_choices[n % 7] or ""),
                    "clearance": [Marking.OFFICIAL, Marking.OFFICIAL_SENSITIVE][(n // 7) % 2],
                    "exempt_access": (n // 14) % 2 == 1,
                    "language": [ChannelLanguage.EN, ChannelLanguage.CY, ChannelLanguage.CY_EN][
                        n % 3
                    ],
                    "digest_cron": "0 9 * * mon",
                    "digest_timezone": "Europe/London",
                    "due_soon_days": 14,
                    "last_digest_at": PREVIOUS,
                    "digest_register_seq": 1,
                }
                for n in range(channels)
            ],
        )
        rows = []
        for n in range(decisions):
            prefix = BOARDS[n % 3][1]
            fresh = n >= decisions - new_decisions
            recorded = (
                PREVIOUS + timedelta(minutes=rng.randint(1, 7 * 24 * 60 - 1))
                if fresh
                else datetime(2019, 1, 1, tzinfo=UTC) + timedelta(minutes=n * 50)
            )
            decided = recorded.date() - timedelta(days=rng.randint(0, 90 if not fresh else 200))
            rows.append(
                {
                    "ref": f"{prefix}-{decided.year}-{n:06d}",
                    "board_id": board_ids[prefix],
                    "decided_on": decided,
                    "title": f"Decision {n} on the shared service roadmap, {rng.randint(1, 999)}",
                    "summary": "",
                    "partners": [],
                    "link": f"https://papers.example/{n}" if n % 4 == 0 else "",
                    "recorded_at": recorded,
                    "updated_at": recorded,
                    **_marking(rng),
                }
            )
        conn.execute(insert(Decision.__table__), rows)
        owners = [partner_ids[s] for s, *_ in PARTNERS]
        statuses = list(ActionStatus)
        conn.execute(
            insert(Action.__table__),
            [
                {
                    "ref": f"TP-{n:06d}",
                    "title": f"Action {n}: migrate service {rng.randint(1, 500)} to the platform",
                    "owner_partner_id": owners[n % len(owners)],
                    "owner": "A. Person",
                    "due_date": NOW.date() + timedelta(days=rng.randint(-400, 400)),
                    "status": statuses[rng.randint(0, len(statuses) - 1)],
                    "rag": list(Rag)[n % 3],
                    "theme": "Infrastructure",
                    "last_update": "",
                    "updated_at": NOW - timedelta(days=3),
                    **_marking(rng),
                }
                for n in range(actions)
            ],
        )
        # The previous cycle stamped everything recorded before it.
        conn.execute(
            insert(RegisterEntry.__table__).from_select(
                ["decision_id", "seq", "stamped_at"],
                select(
                    Decision.id,
                    text("1"),
                    text(f"'{PREVIOUS.replace(tzinfo=None).isoformat(sep=' ')}'"),
                ).where(Decision.recorded_at <= PREVIOUS),
            )
        )


def bench_sender(app: Any, fake: LimitedSlackApi, args: argparse.Namespace) -> Sender:
    """The real sender and Slack client posting to the fake, paced just under its limits."""
    messenger = SlackMessenger.connect(
        "xoxb-bench", fake.url, PostedRegister(app.sessions), timeout=10
    )
    return make_sender(
        app,
        {Platform.SLACK: messenger},
        pacer=Pacer(
            per_channel=args.per_channel,
            per_second=args.workspace * 0.97,
            burst=args.burst,
        ),
        concurrency=args.concurrency,
        batch_size=100,
    )


def send_alone(app: Any, args: argparse.Namespace) -> tuple[float, int, int]:
    """Put every digest back in the queue under a new key and time sending them alone."""
    with unit_of_work(app.sessions) as session:
        session.execute(
            update(Delivery).values(
                state=DeliveryState.PENDING,
                claimed_by=None,
                maybe_posted=False,
                next_try_at=datetime.now(UTC),
                idempotency_key=Delivery.idempotency_key + ":alone",
            )
        )
    with LimitedSlackApi(per_channel=args.per_channel, per_workspace=args.workspace) as fake:
        sender = bench_sender(app, fake, args)
        start = time.time()
        sender.send_due()
        return max(float(p.ts) for p in fake.posted) - start, fake.rate_limited, len(fake.posted)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--full", action="store_true", help="1,000 channels (floor 20 s at 50/s)")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument(
        "--new-decisions", type=int, default=400, help="recorded since the last digest"
    )
    parser.add_argument("--per-channel", type=float, default=1.0, help="messages/s per channel")
    parser.add_argument("--workspace", type=float, default=50.0, help="messages/s workspace-wide")
    parser.add_argument(
        "--burst",
        type=float,
        default=25,
        help="posts the sender may send ahead of the rate after a stall (the fake allows "
        "a workspace burst of one second's posts; half that leaves room for jitter)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument(
        "--no-send-alone",
        dest="send_alone",
        action="store_false",
        help="skip timing the same posts sent with nothing being built",
    )
    args = parser.parse_args(argv)
    channels = 1000 if args.full else args.channels

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        settings = load_settings(database_url=url, slack_bot_token=None, slack_signing_secret=None)
        engine = make_engine(settings.database_url)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        migrate(engine)
        started = time.perf_counter()
        build_register(engine, channels, args.decisions, args.actions, args.new_decisions)
        print(
            f"register: {args.decisions:,} decisions ({args.new_decisions} new), "
            f"{args.actions:,} actions, {channels:,} channels on {engine.dialect.name} "
            f"(built in {time.perf_counter() - started:.1f} s)"
        )
        app = create_app(settings, engine)

        # Reads per cycle at two channel counts (plan only: nothing written), the second traced
        # for memory; the timed cycle below runs untraced.
        due = due_digests(app, NOW)
        small = due[: max(AUDIENCE_PERIOD, len(due) // 5 // AUDIENCE_PERIOD * AUDIENCE_PERIOD)]
        reads = {}
        plan_peak = 0
        for subset in (small, due):
            tracemalloc.start()
            with unit_of_work(app.sessions) as session, counting(engine) as statements:
                session.add_all([d.channel for d in subset])
                plan_digests(session, app.renderer, subset, now=NOW, seq_to=1)
            plan_peak = max(plan_peak, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
            reads[len(subset)] = len(statements)

        with LimitedSlackApi(per_channel=args.per_channel, per_workspace=args.workspace) as fake:
            sender = bench_sender(app, fake, args)
            # The sender runs as in a worker: in a thread of its own, asleep on the doorbell
            # the cycle rings after each chunk it commits.
            finished = threading.Event()

            def serve() -> None:
                while not finished.is_set():
                    sender.send_due()
                    app.outbox_bell.wait(0.5)

            def show(done: int, total: int) -> None:
                print(f"\r  built {done:,}/{total:,} digests", end="", file=sys.stderr)

            cpu0 = time.process_time()
            t0_wall = time.time()
            t0 = time.perf_counter()
            sending = threading.Thread(target=serve, name="bench-sender")
            sending.start()
            with counting(engine, this_thread=True) as statements:
                results = run_due_digests(app, NOW, progress=show)
            t_cycle = time.perf_counter() - t0
            print(file=sys.stderr)
            written = [r for r in results if r.delivery_id is not None]
            writes = [
                s
                for s in statements
                if s.lstrip().upper().startswith(("INSERT INTO DELIVERIES", "UPDATE CHANNELS"))
            ]
            while True:
                with unit_of_work(app.sessions) as session:
                    waiting = session.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.state.in_([DeliveryState.PENDING, DeliveryState.SENDING]))
                    )
                if not waiting:
                    break
                time.sleep(0.25)
            finished.set()
            app.outbox_bell.ring()
            sending.join()
            cpu = time.process_time() - cpu0
            # The fake stamps each post with the time it stored it.
            stamps = sorted(float(p.ts) - t0_wall for p in fake.posted)
            makespan = stamps[-1] if stamps else time.perf_counter() - t0
            gaps = [(a, b - a) for a, b in pairwise(stamps)]
            building = sum(g for a, g in gaps if g > 0.05 and a < t_cycle)
            posted = fake.keys()
            with unit_of_work(app.sessions) as session:
                sent = session.scalar(
                    select(func.count())
                    .select_from(Delivery)
                    .where(Delivery.state == DeliveryState.SENT)
                )
                expected = set(session.scalars(select(Delivery.idempotency_key)))
            duplicates = sum(n - 1 for k, n in posted.items() if k is not None and n > 1)
            losses = len(expected - {k for k in posted if k}) + (len(written) - (sent or 0))
            rate_limited = fake.rate_limited
            connections = fake.connections_seen
            calls = len(fake.calls_to("chat.postMessage"))

        # The same posts again with nothing being built, to a fresh fake: what sending alone
        # takes on this machine now (its load included), the floor the overlap can reach.
        alone, alone_violations, _ = send_alone(app, args) if args.send_alone else (None, 0, 0)
        floor = len(written) / args.workspace
        print(
            f"digests: {len(results)} due, {len(written)} written, "
            f"{sum(r.skipped_empty for r in results)} empty"
        )
        print(
            f"makespan: {makespan:.1f} s (cycle {t_cycle:.1f} s: stamp, build, render, write, "
            "overlapping the sending) "
            f"vs floor {floor:.1f} s = {len(written)} posts / {args.workspace:g} per s "
            f"({makespan / floor if floor else 0:.2f}x)"
        )
        print(
            f"first post after {stamps[0] if stamps else 0:.2f} s; "
            f"gaps between posts over 50 ms: {sum(g for _, g in gaps if g > 0.05):.2f} s in all "
            f"({building:.2f} s while building), "
            f"longest {max((g for _, g in gaps), default=0):.2f} s"
        )
        print(
            f"CPU: {cpu:.1f} s of this process (building, sending and the fake Slack server) "
            f"over the {makespan:.1f} s; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        if alone is not None:
            print(
                f"sending alone, same posts, same run: {alone:.1f} s "
                f"({alone / floor if floor else 0:.2f}x the floor); "
                f"the cycle with its building took {makespan / alone:.2f}x that"
            )
        print(
            f"duplicates: {duplicates}   losses: {losses}   "
            f"rate-limit violations (posts the fake refused with 429): {rate_limited} "
            f"(sending alone: {alone_violations})"
        )
        print(
            f"connections: {connections} TCP connections for {calls} chat.postMessage calls "
            f"({1000 * connections / max(1, calls):.0f} per 1,000 posts)"
        )
        (n_small, r_small), (n_full, r_full) = sorted(reads.items())
        print(
            f"database reads per cycle: {r_small} at {n_small} channels, "
            f"{r_full} at {n_full} channels; "
            f"writes per digest: {len(writes) / max(1, len(written)):.1f}; "
            f"all statements per digest: {len(statements) / max(1, len(written)):.2f}"
        )
        print(
            f"peak memory: {plan_peak / 2**20:.1f} MiB traced building all {len(due)} digests; "
            f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
        engine.dispose()
        ok = duplicates == 0 and losses == 0 and r_full == r_small and rate_limited == 0
        print(
            "OK"
            if ok
            else "FAILED: duplicates, losses, rate-limit violations or reads growing with channels"
        )
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
