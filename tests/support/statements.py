"""Counting the SQL statements a block of code sends: for tests and benchmarks that check the
number of queries does not grow with the data."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event


@contextmanager
def counting(engine: Engine, *, this_thread: bool = False) -> Iterator[list[str]]:
    """Every statement sent to the database through `engine` inside the block (only this
    thread's with `this_thread`, leaving out a sender running alongside)."""
    statements: list[str] = []
    me = threading.get_ident()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not this_thread or threading.get_ident() == me:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)
