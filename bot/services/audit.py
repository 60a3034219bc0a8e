"""The audit log: every change and every post, with the state before and after."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from bot.clock import CLOCK
from bot.db import insert_rows
from bot.models import AuditEvent


def plain(value: Any) -> Any:
    """A JSON-safe copy of a column value (dates as ISO strings, enums as their value)."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def snapshot(obj: object, fields: Iterable[str]) -> dict[str, Any]:
    """The named attributes of a row as a JSON-safe dict, for before/after."""
    return {name: plain(getattr(obj, name)) for name in fields}


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Only the keys whose value differs (an empty dict means nothing really changed)."""
    return {key: after[key] for key in after if before.get(key) != after[key]}


def record(
    session: Session,
    *,
    actor: str,
    verb: str,
    entity: str,
    ref: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Write one audit event in the caller's transaction."""
    session.add(
        AuditEvent(
            at=CLOCK.now(),
            actor=actor,
            verb=verb,
            entity=entity,
            entity_ref=ref,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
        )
    )


def record_many(session: Session, events: list[dict[str, Any]]) -> None:
    """Write many audit events at once (imports); each dict has AuditEvent's column names."""
    if events:
        stamp = CLOCK.now()
        insert_rows(
            session.connection(),
            cast(Table, AuditEvent.__table__),
            [{"at": stamp, **event} for event in events],
        )
