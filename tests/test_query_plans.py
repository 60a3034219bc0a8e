"""The main queries read through an index, not a full scan of their table: SQLite's EXPLAIN
QUERY PLAN, or PostgreSQL's EXPLAIN with sequential scans priced out (a small table would
otherwise be scanned, rightly), for the statements the query services actually send."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from bot.domain import Marking
from bot.services import queries
from bot.visibility import Audience
from tests.conftest import NOW
from tests.factories import Seed

TODAY = NOW.date()
READER = Audience(Marking.OFFICIAL, False, frozenset({"torfaen"}))


@contextmanager
def sent(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (with their parameters) sent inside the block."""
    statements: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def plans(engine: Engine, statements: list[tuple[str, Any]]) -> list[str]:
    """Each statement's plan as one text."""
    out = []
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET enable_seqscan = off")
            for statement, parameters in statements:
                rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters)
                out.append("\n".join(r[0] for r in rows))
        else:
            for statement, parameters in statements:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
                out.append("\n".join(r[-1] for r in rows))
        conn.rollback()
    return out


def full_scans(engine: Engine, plan: str, table: str) -> list[str]:
    """Lines of `plan` that read the whole of `table` with no index."""
    if engine.dialect.name == "postgresql":
        # With sequential scans priced out, a walk of the whole primary key is the full scan.
        return [
            line
            for line in plan.splitlines()
            if f"Seq Scan on {table}" in line or f"using pk_{table} on {table} " in line
        ]
    return [
        line
        for line in plan.splitlines()
        if re.search(rf"\bSCAN {table}\b", line) and "INDEX" not in line
    ]


CASES: dict[str, tuple[str, Callable[[Session], object]]] = {
    "decisions page 1": ("decisions", lambda s: queries.find_decisions(s, READER)),
    "decisions of a board": (
        "decisions",
        lambda s: queries.find_decisions(s, READER, board="strategic"),
    ),
    "decisions since a date": (
        "decisions",
        lambda s: queries.find_decisions(s, READER, since=TODAY),
    ),
    "decision by ref": ("decisions", lambda s: queries.get_decision(s, READER, "sb-2026-31")),
    "actions page 1": ("actions", lambda s: queries.find_actions(s, READER, today=TODAY)),
    "overdue actions of a partner": (
        "actions",
        lambda s: queries.find_actions(s, READER, today=TODAY, partner="torfaen", overdue=True),
    ),
    "action by ref": ("actions", lambda s: queries.get_action(s, READER, "tp-1", today=TODAY)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_main_queries_use_an_index(engine: Engine, session: Session, seed: Seed, name: str) -> None:
    table, call = CASES[name]
    session.expunge_all()
    with sent(engine) as statements:
        call(session)
    session.rollback()
    reading = [(s, p) for s, p in statements if re.search(rf"\bFROM {table}\b", s)]
    assert reading, f"{name}: no statement read {table}"
    for plan in plans(engine, reading):
        assert not full_scans(engine, plan, table), f"{name}:\n{plan}"
