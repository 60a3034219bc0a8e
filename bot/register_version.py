"""The register's version: one number that moves on with every committed change to a table an
answer reads (database triggers, migration 0015), and values kept while it stays the same."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import WRITES
from bot.models import RegisterVersion

T = TypeVar("T")

VERSION = "register_version"
"""`session.info` key: the version this unit of work read, so it is read once per unit."""
_CURRENT = select(RegisterVersion.n).where(RegisterVersion.id == 1)


def register_version(session: Session) -> int | None:
    """The register's version as this unit of work sees it, or None when it cannot key a
    cache: a unit that writes (on PostgreSQL its own changes are counted only at commit, and
    it may yet roll back). Read before any answer's rows, so an answer is never older than
    the version it is kept under."""
    if session.info.get(WRITES, True):
        return None
    if VERSION not in session.info:
        session.info[VERSION] = session.scalar(_CURRENT) or 0
    version: int = session.info[VERSION]
    return version


_MEMOS: WeakKeyDictionary[object, dict[Hashable, tuple[int, Any]]] = WeakKeyDictionary()
"""Per database (engine): values built from the register, with the version they were built at."""


def versioned(session: Session, name: Hashable, build: Callable[[], T]) -> T:
    """`build()`, reused while the register's version stays the same (in read-only units of
    work; a unit that writes always builds afresh). For small values many answers read, such
    as the partners' names: the value must not be changed by whoever receives it."""
    version = register_version(session)
    if version is None:
        return build()
    memo = _MEMOS.setdefault(session.get_bind(), {})
    kept = memo.get(name)
    if kept is not None and kept[0] == version:
        value: T = kept[1]
        return value
    value = build()
    memo[name] = (version, value)
    return value
