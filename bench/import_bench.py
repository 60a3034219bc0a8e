"""Import benchmark: actions and decisions CSV files against a bare bulk insert of the same rows.

    .venv/bin/python bench/import_bench.py [--rows N]

For N actions (default 20,000) and 2.5 N decisions it times, on a fresh SQLite database (and on
PostgreSQL too when BENCH_DATABASE_URL or TEST_DATABASE_URL is set, in a scratch database it
creates and drops): the first import, a re-import of the same file (nothing changes), and a
re-import with 10% of the rows changed. The floor, measured in the same run, is one bare
SQLAlchemy insert of the same typed rows into the same table of a fresh database: what no
import can beat. It fires the same full-text upkeep per row (SQLite's triggers, PostgreSQL's
generated tsvector and GIN index) and writes no audit rows (the import writes one per row).
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from bot.db import make_engine, make_session_factory, migrate, unit_of_work
from bot.domain import ActionStatus, Marking, Rag
from bot.imports import KINDS, ImportReport, import_file
from bot.models import Action, Base, Board, Decision, Meeting, Partner

PARTNERS = ["blaenau-gwent", "monmouthshire", "newport", "torfaen", "gwent-police", "srs"]
BOARDS = [("strategic", "SB"), ("finance-governance", "FG"), ("business-collaboration", "BC")]
THEMES = [
    "Data centre move",
    "Microsoft 365",
    "SharePoint migration",
    "Cyber security",
    "Workforce",
    "Digital roadmaps",
    "Shared learning",
    "Value for money",
]
LONDON = ZoneInfo("Europe/London")
MEETING_DAYS = [date(2026, 1, 15) + timedelta(weeks=4 * i) for i in range(13)]

ACTION_COLUMNS = list(KINDS["actions"].columns)
DECISION_COLUMNS = list(KINDS["decisions"].columns)


def action_rows(n: int, rng: random.Random) -> list[dict[str, str]]:
    """n realistic-looking actions as CSV cells."""
    rows = []
    for i in range(n):
        police = rng.random() < 0.05
        rows.append(
            {
                "ref": f"TP-{i + 1:05d}",
                "title": f"{rng.choice(THEMES)}: work package {i + 1}",
                "owner_partner": "gwent-police" if police else rng.choice(PARTNERS),
                "owner": rng.choice(
                    ["S. Hughes", "D. Williams", "E. Jones", "T. Price", "C. Morgan"]
                ),
                "due_date": (date(2026, 1, 1) + timedelta(days=rng.randrange(540))).isoformat(),
                "status": rng.choice([s.value for s in ActionStatus]),
                "rag": rng.choice(["red", "amber", "green", ""]),
                "theme": rng.choice(THEMES),
                "marking": "official-sensitive" if police else "official",
                "exempt_paragraph": "14" if rng.random() < 0.05 else "",
                "restricted_to": "gwent-police" if police else "",
                "last_update": "Progress reported to the delivery group; next review next month.",
            }
        )
    return rows


def decision_rows(n: int, rng: random.Random) -> list[dict[str, str]]:
    """n decisions spread over the three boards' meetings."""
    rows = []
    for i in range(n):
        board, prefix = BOARDS[i % 3]
        day = rng.choice(MEETING_DAYS)
        rows.append(
            {
                "ref": f"{prefix}-2026-{i + 1:05d}",
                "board": board,
                "meeting_date": day.isoformat(),
                "decided_on": day.isoformat(),
                "title": f"Agreed item {i + 1} on {rng.choice(THEMES).lower()}",
                "summary": "The board agreed the recommendation in the report.",
                "marking": "official",
                "exempt_paragraph": "14" if rng.random() < 0.03 else "",
                "restricted_to": "",
                "partners": ";".join(rng.sample(PARTNERS[:5], 2)),
                "link": f"https://democracy.torfaen.gov.uk/documents/s{60000 + i}/Report.pdf",
            }
        )
    return rows


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    """The rows as a UTF-8 CSV file with a header row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def changed(rows: list[dict[str, str]], column: str) -> list[dict[str, str]]:
    """Every tenth row with `column` edited."""
    return [
        {**row, column: row[column] + " (revised)"} if i % 10 == 0 else row
        for i, row in enumerate(rows)
    ]


def seed(engine: Engine) -> None:
    """Partners, boards and a meeting every four weeks per board."""
    with unit_of_work(make_session_factory(engine)) as session:
        session.add_all(Partner(slug=s, name=s.title(), name_cy=s.title()) for s in PARTNERS)
        boards = [Board(slug=s, prefix=p, name=s.title(), name_cy=s.title()) for s, p in BOARDS]
        session.add_all(boards)
        for board in boards:
            session.add_all(
                Meeting(board=board, starts_at=datetime(d.year, d.month, d.day, 10, tzinfo=LONDON))
                for d in MEETING_DAYS
            )


def typed_actions(rows: list[dict[str, str]], partner_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The same actions as the importer would write them, for the bare insert."""
    now = datetime.now(UTC)
    return [
        {
            "ref": r["ref"],
            "title": r["title"],
            "owner_partner_id": partner_ids[r["owner_partner"]],
            "owner": r["owner"],
            "due_date": date.fromisoformat(r["due_date"]),
            "status": ActionStatus(r["status"]),
            "rag": Rag(r["rag"]) if r["rag"] else None,
            "theme": r["theme"],
            "marking": Marking(r["marking"]),
            "exempt_paragraph": int(r["exempt_paragraph"]) if r["exempt_paragraph"] else None,
            "restricted_to": [r["restricted_to"]] if r["restricted_to"] else [],
            "last_update": r["last_update"],
            "updated_at": now,
        }
        for r in rows
    ]


def typed_decisions(rows: list[dict[str, str]], board_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The same decisions as the importer would write them, for the bare insert."""
    now = datetime.now(UTC)
    return [
        {
            "ref": r["ref"],
            "board_id": board_ids[r["board"]],
            "meeting_id": None,
            "decided_on": date.fromisoformat(r["decided_on"]),
            "title": r["title"],
            "summary": r["summary"],
            "marking": Marking(r["marking"]),
            "exempt_paragraph": int(r["exempt_paragraph"]) if r["exempt_paragraph"] else None,
            "restricted_to": [],
            "partners": r["partners"].split(";"),
            "link": r["link"],
            "recorded_at": now,
            "updated_at": now,
        }
        for r in rows
    ]


@contextmanager
def fresh_database(base_url: str | None, folder: Path) -> Iterator[Engine]:
    """A new, migrated, seeded database: a SQLite file, or a scratch PostgreSQL database."""
    if base_url is None:
        engine = make_engine(f"sqlite:///{folder / uuid.uuid4().hex}.db")
        migrate(engine)
        seed(engine)
        yield engine
        engine.dispose()
        return
    url = make_url(base_url).set(drivername="postgresql+psycopg")
    name = f"scrutiny_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    try:
        migrate(engine)
        seed(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def import_once(engine: Engine, kind: str, path: Path) -> tuple[float, ImportReport]:
    """One import in its own transaction, committed, timed."""
    start = time.perf_counter()
    with unit_of_work(make_session_factory(engine)) as session:
        report = import_file(session, kind, path, actor="bench")
    return time.perf_counter() - start, report


def floor_once(engine: Engine, kind: str, rows: list[dict[str, str]]) -> float:
    """One bare bulk insert of the same rows (typed beforehand), committed, timed."""
    with unit_of_work(make_session_factory(engine)) as session:
        partners = {slug: id_ for slug, id_ in session.execute(select(Partner.slug, Partner.id))}
        boards = {slug: id_ for slug, id_ in session.execute(select(Board.slug, Board.id))}
    model: type[Base]
    if kind == "actions":
        model, typed = Action, typed_actions(rows, partners)
    else:
        model, typed = Decision, typed_decisions(rows, boards)

    start = time.perf_counter()
    with unit_of_work(make_session_factory(engine)) as session:
        session.execute(insert(model).execution_options(render_nulls=True), typed)
    return time.perf_counter() - start


def bench_kind(
    base_url: str | None,
    folder: Path,
    kind: str,
    columns: list[str],
    rows: list[dict[str, str]],
    edited: str,
) -> None:
    """First import, unchanged re-import, 10%-changed re-import, and the floor; printed."""
    first = write_csv(folder / f"{kind}.csv", columns, rows)
    second = write_csv(folder / f"{kind}-changed.csv", columns, changed(rows, edited))
    n = len(rows)
    with fresh_database(base_url, folder) as engine:
        results = [
            ("first import", *import_once(engine, kind, first)),
            ("re-import, no change", *import_once(engine, kind, first)),
            ("re-import, 10% changed", *import_once(engine, kind, second)),
        ]
    with fresh_database(base_url, folder) as engine:
        floor = floor_once(engine, kind, rows)
    print(f"  {kind}: {n:,} rows")
    for label, seconds, report in results:
        counts = f"{report.created} new, {report.updated} updated, {report.unchanged} unchanged"
        print(f"    {label:<24} {seconds:7.2f} s  {n / seconds:>9,.0f} rows/s   ({counts})")
    print(f"    {'floor: bare bulk insert':<24} {floor:7.2f} s  {n / floor:>9,.0f} rows/s")
    print(f"    first import / floor     {results[0][1] / floor:7.1f}x")


def main() -> None:
    """Parse --rows, run on SQLite and, when configured, on PostgreSQL."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="actions (decisions: 2.5x)")
    args = parser.parse_args()
    rng = random.Random(2026)
    actions = action_rows(args.rows, rng)
    decisions = decision_rows(args.rows * 5 // 2, rng)
    targets: list[tuple[str, str | None]] = [("SQLite", None)]
    postgres = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if postgres:
        targets.append(("PostgreSQL", postgres))
    with tempfile.TemporaryDirectory() as tmp:
        for label, url in targets:
            print(f"{label}:")
            bench_kind(url, Path(tmp), "actions", ACTION_COLUMNS, actions, "title")
            bench_kind(url, Path(tmp), "decisions", DECISION_COLUMNS, decisions, "summary")


if __name__ == "__main__":
    main()
