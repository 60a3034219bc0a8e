"""Query benchmark: every query service against raw SQL doing the same selection.

    .venv/bin/python bench/query_bench.py [--sizes 10000,100000] [--actions 20000] [--runs 3]

For each register size (decisions; actions fixed at 20,000) it builds a fresh SQLite database
(and a scratch PostgreSQL one when BENCH_DATABASE_URL is set), then times each query service as
a Torfaen scrutiny member reading in Torfaen's channel (OFFICIAL, no exempt access) sees it:
the decisions list, by partner, by board, one-word, two-word and most-rows searches, a single
ref (on its own look-up unit, `db.look_up`, and inside a command's session), and overdue
actions by partner; each list runs in a session committed after each call, as a read-only
unit of work ends. The floor, timed in the same run, is hand-written SQL
through the bare driver doing the same selection: the same filters, ranking (bm25 / ts_rank)
and visibility conditions, the grouped count behind "showing 1-10 of N" and the withheld
counts (both stopping at `queries.COUNT_UP_TO` matches, as the list commands do), and one page
of ten rows; for a ref, the row with its board, meeting and the rule's verdict, and the
partners' names. Prints p50 and p95 (min-max over the runs), the ratio of
p95s, and the growth of our p95 from the smallest to the largest size.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_bench import BOARDS, PARTNERS, THEMES, action_rows, fresh_database, typed_actions

from bot.db import look_up, make_session_factory
from bot.domain import Marking
from bot.models import Action, Board, Decision, Partner
from bot.services import queries
from bot.visibility import Audience

TODAY = date(2026, 11, 23)
READER = Audience(Marking.OFFICIAL, False, frozenset({"torfaen"}), "torfaen channel + member")
REF = "sb-2019-000004"
WORDS = ["telephony", "licences", "network", "contract", "roadmap", "security", "learning"]


def decisions(n: int, boards: dict[str, int], rng: random.Random) -> list[dict[str, Any]]:
    """n decisions over ten years: 85% open OFFICIAL, the rest sensitive, exempt or police-only."""
    now = datetime(2026, 11, 23, tzinfo=UTC)
    rows = []
    for i in range(n):
        slug, prefix = BOARDS[i % 3]
        roll = rng.random()
        theme = rng.choice(THEMES).lower()
        word = rng.choice(WORDS)
        rows.append(
            {
                "ref": f"{prefix}-{2016 + i % 11}-{i + 1:06d}",
                "board_id": boards[slug],
                "decided_on": date(2016, 1, 1) + timedelta(days=rng.randrange(3900)),
                "title": f"Agreed item {i + 1} on {theme} and {word}",
                # "board" is in nearly every row: the most-rows search.
                "summary": "The board agreed the recommendation in the report."
                if rng.random() < 0.9
                else "Noted.",
                "marking": Marking.OFFICIAL_SENSITIVE if 0.85 <= roll < 0.95 else Marking.OFFICIAL,
                "exempt_paragraph": 14 if 0.95 <= roll < 0.98 else None,
                "restricted_to": ["gwent-police"] if roll >= 0.98 else [],
                "partners": rng.sample(PARTNERS[:5], 2),
                "link": "",
                "recorded_at": now,
                "updated_at": now,
            }
        )
    if n:
        rows[-1]["title"] = "Renewed the telephony and data centre contract"
    return rows


def fill(engine: Engine, n_decisions: int, n_actions: int) -> None:
    """Bulk-insert the rows (the full-text triggers and generated columns keep up)."""
    rng = random.Random(n_decisions)
    with engine.begin() as conn:
        partners = {s: i for s, i in conn.execute(select(Partner.slug, Partner.id))}
        boards = {s: i for s, i in conn.execute(select(Board.slug, Board.id))}
        for start in range(0, n_decisions, 20_000):
            batch = decisions(min(20_000, n_decisions - start), boards, rng)
            for offset, row in enumerate(batch):
                row["ref"] = row["ref"][:-6] + f"{start + offset + 1:06d}"
            conn.execute(insert(Decision), batch)
        # The import benchmark's actions, typed as the importer writes them (5% police-only).
        conn.execute(insert(Action), typed_actions(action_rows(n_actions, rng), partners))
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


# -- raw SQL doing the same selection ---------------------------------------------------------
def _visible(dialect: str, alias: str) -> str:
    if dialect == "sqlite":
        unrestricted = f"coalesce(json_array_length({alias}.restricted_to), 0) = 0"
        names = (
            f"(SELECT count(DISTINCT v.value) FROM json_each({alias}.restricted_to) v "
            "WHERE v.value IN ('torfaen')) = 1"
        )
    else:
        unrestricted = f"coalesce({alias}.restricted_to::jsonb, '[]') IN ('[]', 'null')"
        names = f"{alias}.restricted_to::jsonb @> '[\"torfaen\"]'"
    return (
        f"{alias}.exempt_paragraph IS NULL AND ({unrestricted} OR {names}) "
        f"AND {alias}.marking IN ('official')"
    )


def _reason(dialect: str, alias: str) -> str:
    unrestricted = (
        f"coalesce(json_array_length({alias}.restricted_to), 0) = 0"
        if dialect == "sqlite"
        else f"coalesce({alias}.restricted_to::jsonb, '[]') IN ('[]', 'null')"
    )
    return (
        f"CASE WHEN {_visible(dialect, alias)} THEN NULL "
        f"WHEN {alias}.exempt_paragraph IS NOT NULL THEN 'exempt' "
        f"WHEN NOT ({unrestricted}) THEN 'restricted' ELSE 'sensitive' END"
    )


def _match(dialect: str, kind: str, words: list[str], scored: bool) -> str:
    if dialect == "sqlite":
        weights = "10.0, 4.0, 1.0" if kind == "decisions" else "10.0, 4.0, 2.0, 1.0, 1.0"
        score = f"-bm25({kind}_fts, {weights})" if scored else "0"
        expression = " ".join(f'"{w}"' for w in words)
        return (
            f"(SELECT rowid AS id, {score} AS score FROM {kind}_fts "
            f"WHERE {kind}_fts MATCH '{expression}')"
        )
    query = f"plainto_tsquery('english', '{' '.join(words)}')"
    score = f"ts_rank(search_vector, {query})" if scored else "0"
    return f"(SELECT id, {score} AS score FROM {kind} WHERE search_vector @@ {query})"


CAP = queries.COUNT_UP_TO
OVER = "-- only when the first count passed the cap\n"
"""Marks a raw statement run only when the one before it counted more than `CAP` rows."""


def raw_list(
    dialect: str, table: str, where: str, order: str, words: list[str] | None
) -> list[str]:
    """The count by reason over the first CAP + 1 matches (grouped by classification), the
    visible count up to CAP + 1 when they passed the cap, then one page (page 1: the count
    stops past the cap, as ours does)."""
    join_count = join_page = ""
    if words:
        join_count = f" JOIN {_match(dialect, table, words, False)} m ON m.id = t.id"
        join_page = f" JOIN {_match(dialect, table, words, True)} m ON m.id = t.id"
        order = "m.score DESC, " + order
    extra = f" AND {where}" if where else ""
    restricted = "t.restricted_to" if dialect == "sqlite" else "t.restricted_to::text"
    first = (
        f"SELECT t.marking, t.exempt_paragraph, {restricted} AS restricted_to "
        f"FROM {table} t{join_count} WHERE 1=1{extra} LIMIT {CAP + 1}"
    )
    classes = (
        f"SELECT f.marking, f.exempt_paragraph, f.restricted_to, count(*) AS n "
        f"FROM ({first}) f GROUP BY f.marking, f.exempt_paragraph, f.restricted_to"
    )
    return [
        f"SELECT {_reason(dialect, 'c')} AS reason, sum(c.n) FROM ({classes}) c GROUP BY reason",
        f"{OVER}SELECT count(*) FROM (SELECT 1 FROM {table} t{join_count} "
        f"WHERE {_visible(dialect, 't')}{extra} LIMIT {CAP + 1}) v",
        f"SELECT t.* FROM {table} t{join_page} WHERE {_visible(dialect, 't')}{extra} "
        f"ORDER BY {order} LIMIT 10 OFFSET 0",
    ]


def raw_statements(dialect: str, ids: dict[str, int]) -> dict[str, list[str]]:
    """Each service's selection in hand-written SQL."""
    newest = "t.decided_on DESC, t.ref DESC"
    if dialect == "sqlite":
        concerns = (
            "instr(t.partners, '\"torfaen\"') > 0 AND "
            "EXISTS (SELECT 1 FROM json_each(t.partners) p WHERE p.value IN ('torfaen'))"
        )
    else:
        concerns = "t.partners::jsonb @> '[\"torfaen\"]'"
    overdue = (
        f"t.owner_partner_id = {ids['torfaen']} AND t.due_date < '{TODAY.isoformat()}' "
        "AND t.status NOT IN ('done', 'cancelled')"
    )
    statements = {
        "decisions, page 1": raw_list(dialect, "decisions", "", newest, None),
        "decisions torfaen": raw_list(dialect, "decisions", concerns, newest, None),
        "decisions strategic": raw_list(
            dialect, "decisions", f"t.board_id = {ids['strategic']}", newest, None
        ),
        "search, one word": raw_list(dialect, "decisions", "", newest, ["telephony"]),
        "search, two words": raw_list(dialect, "decisions", "", newest, ["data", "centre"]),
        "search, most rows": raw_list(dialect, "decisions", "", newest, ["board"]),
        DECISION_REF: [
            # The rule's verdict too (found or withheld), as ours checks it on the row.
            f"SELECT t.*, b.*, mt.*, {_visible(dialect, 't')} AS visible "
            "FROM decisions t JOIN boards b ON b.id = t.board_id "
            "LEFT JOIN meetings mt ON mt.id = t.meeting_id "
            "WHERE t.ref IN ('SB-2019-000004', 'SB-2019-4', 'SB-2019-04', 'SB-2019-004', "
            "'SB-2019-0004', 'SB-2019-00004') ORDER BY t.ref LIMIT 1",
            "SELECT * FROM partners",
        ],
        "actions overdue torfaen": raw_list(
            dialect, "actions", overdue, "t.due_date IS NULL, t.due_date, t.ref", None
        ),
    }
    statements[IN_A_SESSION] = statements[DECISION_REF]
    return statements


DECISION_REF = "decision REF"
IN_A_SESSION = "decision REF, in a session"
LOOK_UPS = {DECISION_REF, IN_A_SESSION}
SESSIONLESS = {DECISION_REF}
"""Services timed as a unit of their own (`db.look_up`: pooled connection, no Session); the
others run in a Session committed after each call, as a command's unit of work is."""


def services(session: Any, engine: Engine) -> dict[str, Callable[[], object]]:
    """Each query service as a member's command calls it (counting up to the cap); a single
    ref both on its own look-up unit and inside a command's session (whose begin and rollback
    are the unit's cost, whatever it runs)."""

    def listed(**filters: Any) -> object:
        return queries.find_decisions(session, READER, count_up_to=CAP, **filters)

    return {
        "decisions, page 1": lambda: listed(),
        "decisions torfaen": lambda: listed(partner="torfaen"),
        "decisions strategic": lambda: listed(board="strategic"),
        "search, one word": lambda: listed(text="telephony"),
        "search, two words": lambda: listed(text="data centre"),
        "search, most rows": lambda: listed(text="board"),
        DECISION_REF: lambda: look_up(
            engine, lambda connection: queries.get_decision(connection, READER, REF)
        ),
        IN_A_SESSION: lambda: queries.get_decision(session, READER, REF),
        "actions overdue torfaen": lambda: queries.find_actions(
            session, READER, today=TODAY, partner="torfaen", overdue=True, count_up_to=CAP
        ),
    }


def timings(work: Callable[[], object], repeats: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of `repeats` calls after one warm-up."""
    work()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


def measure(engine: Engine, repeats: int) -> dict[str, tuple[float, float, float, float]]:
    """Per service: our p50, p95, raw p50, raw p95."""
    dialect = engine.dialect.name
    with engine.connect() as conn:
        ids = {s: i for s, i in conn.execute(select(Partner.slug, Partner.id))}
        ids.update({s: i for s, i in conn.execute(select(Board.slug, Board.id))})
    raw = raw_statements(dialect, ids)
    results = {}
    factory = make_session_factory(engine)
    driver = engine.raw_connection()
    try:
        cursor = driver.cursor()

        def run_raw(statements: list[str], prepared: bool = False) -> None:
            counted = 0
            for number, statement in enumerate(statements):
                if statement.startswith(OVER) and counted <= CAP:
                    continue
                if prepared:  # as ours: a look-up's fixed statements are prepared once
                    cursor.execute(statement, prepare=True)
                else:
                    cursor.execute(statement)
                rows = cursor.fetchall()
                if number == 0:  # the count by reason: how many matches it saw
                    counted = sum(int(row[-1] or 0) for row in rows)
            driver.commit()

        with factory() as session:
            for name, call in services(session, engine).items():

                def ours(call: Callable[[], object] = call) -> None:
                    call()
                    # Committed, as a read-only unit of work ends (and as the floor does): on
                    # PostgreSQL a rollback also deallocates psycopg's prepared statements.
                    session.commit()
                    session.expunge_all()

                # A look-up takes well under a millisecond: twenty samples would make its
                # "p95" the slowest one (one preemption on a loaded machine), so it gets more.
                times = repeats * 10 if name in LOOK_UPS else repeats
                p50, p95 = timings(call if name in SESSIONLESS else ours, times)
                prepare = name in LOOK_UPS and dialect == "postgresql"
                r50, r95 = timings(
                    lambda s=raw[name], p=prepare: run_raw(s, p),  # type: ignore[misc]
                    times,
                )
                results[name] = (p50, p95, r50, r95)
    finally:
        driver.close()
    return results


def span(values: list[float]) -> str:
    """min-max, in ms."""
    low, high = min(values), max(values)
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"


def report(label: str, runs: list[dict[str, tuple[float, float, float, float]]]) -> None:
    """A table: ours p50/p95, raw p50/p95 and the ratio of p95s, min-max over runs."""
    print(f"\n{label}")
    print(
        f"{'query':<28}{'ours p50':>14}{'ours p95':>14}{'raw p50':>14}{'raw p95':>14}"
        f"{'p95 ratio':>14}"
    )
    for name in runs[0]:
        cols = [[run[name][i] for run in runs] for i in range(4)]
        ratios = [run[name][1] / run[name][3] for run in runs]
        print(
            f"{name:<28}{span(cols[0]):>14}{span(cols[1]):>14}{span(cols[2]):>14}"
            f"{span(cols[3]):>14}{min(ratios):>8.2f}–{max(ratios):.2f}"
        )


def bench(base_url: str | None, sizes: list[int], n_actions: int, runs: int, repeats: int) -> None:
    """Build each size, measure `runs` times, report, and the growth of our p95."""
    where = "PostgreSQL" if base_url else "SQLite"
    by_size: dict[int, list[dict[str, tuple[float, float, float, float]]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            with fresh_database(base_url, Path(folder)) as engine:
                start = time.perf_counter()
                fill(engine, size, n_actions)
                built = time.perf_counter() - start
                by_size[size] = [measure(engine, repeats) for _ in range(runs)]
            report(
                f"{where}: {size:,} decisions, {n_actions:,} actions "
                f"(built in {built:.1f} s); ms, min–max over {runs} runs",
                by_size[size],
            )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"\n{where}: growth of p95 from {small:,} to {large:,} decisions (ours / raw)")
        for name in by_size[small][0]:
            ours = [r[name][1] for r in by_size[large]]
            ours_small = [r[name][1] for r in by_size[small]]
            raw = [r[name][3] for r in by_size[large]]
            raw_small = [r[name][3] for r in by_size[small]]
            print(
                f"  {name:<28} {statistics.median(ours) / statistics.median(ours_small):6.1f}× /"
                f" {statistics.median(raw) / statistics.median(raw_small):6.1f}×"
            )


def main() -> None:
    """Parse arguments and run on SQLite, then PostgreSQL when BENCH_DATABASE_URL is set."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    bench(None, sizes, args.actions, args.runs, args.repeats)
    postgres = os.environ.get("BENCH_DATABASE_URL")
    if postgres:
        bench(postgres, sizes, args.actions, args.runs, args.repeats)


if __name__ == "__main__":
    main()
