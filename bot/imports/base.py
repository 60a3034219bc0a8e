"""What every kind of import shares: preloaded lookups, records, the plan and the bulk write."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Date,
    Enum,
    FromClause,
    Integer,
    Select,
    String,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy import Table as SqlTable
from sqlalchemy import column as column_name
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from bot.clock import CLOCK
from bot.db import insert_rows
from bot.domain import Marking
from bot.fields import Lookup
from bot.imports.cells import Cells
from bot.imports.problems import ImportProblem
from bot.imports.readers import Table, read_table
from bot.models import AuditEvent, Base, Partner
from bot.services.audit import plain, record_many
from bot.services.search import index_filled_once


@dataclass
class Existing:
    """A stored row as the import compares it: its id and the fields the file may set."""

    id: int
    values: dict[str, Any]


@dataclass
class Record:
    """One checked row: the fields it sets and the stored row it updates (None: a new row)."""

    line: int
    label: str
    values: dict[str, Any]
    identity: dict[str, Any] = field(default_factory=dict)
    """Set only when the row is created (the ref an existing row was found by)."""
    unique: list[tuple[str, Hashable]] = field(default_factory=list)
    """(column, key) pairs no two rows of one file may share."""
    current: Existing | None = None


def by_ref(cells: Cells, ref: str, values: dict[str, Any], stored: dict[Any, Existing]) -> Record:
    """A record matched to the stored row with the same ref (actions, decisions)."""
    return Record(
        cells.line,
        ref,
        values,
        identity={"ref": ref},
        unique=[("ref", ref)],
        current=stored.get(ref),
    )


class Kind(ABC):
    """One kind of file (actions, decisions, meetings, answers): its columns and its checks."""

    name: ClassVar[str]
    entity: ClassVar[str]
    model: ClassVar[type[Base]]
    columns: ClassVar[tuple[str, ...]]
    required: ClassVar[tuple[str, ...]]
    references: ClassVar[dict[str, str]] = {}
    """Foreign-key fields shown in the audit log by slug: field -> audit key."""
    fields: ClassVar[tuple[str, ...]]
    """The fields a row of this kind may set, compared with the stored row."""

    def __init__(self, session: Session, zone: ZoneInfo, now: datetime) -> None:
        self.session = session
        self.zone = zone
        self.now = now
        self.notices: list[ImportProblem] = []
        self.slugs: dict[str, dict[int, str]] = {}
        """For each field in `references`, id -> slug, filled by `load`."""

    def read(
        self, path: Path, *, sheet: str | None = None, column_map: Mapping[str, str] | None = None
    ) -> Table:
        """The file's rows; CSV or XLSX (from `sheet`, else its first visible sheet, with the
        collaboration's own header names in `column_map`) unless a kind reads more formats."""
        return read_table(path, self.columns, self.required, sheet=sheet, column_map=column_map)

    @abstractmethod
    def load(self) -> None:
        """Preload lookups and existing rows, one query each (never a query per row)."""

    @abstractmethod
    def check(self, cells: Cells) -> Record | None:
        """Check one row; problems go through `cells`, the record is used only if it is clean."""

    def defaults(self) -> dict[str, Any]:
        """Values of a new row for the columns a file leaves out."""
        return {}

    def stamp(self, created: bool) -> dict[str, Any]:
        """Bookkeeping columns set on a new or changed row (not compared, not audited)."""
        return {"updated_at": self.now}

    def apply(self, todo: Plan, actor: str) -> None:
        """Write the checked records: bulk inserts and updates with one audit event each."""
        write(self.session, self, todo, actor)

    def audit_view(self, values: dict[str, Any]) -> dict[str, Any]:
        """Values as the audit log shows them: JSON-safe, foreign keys as slugs."""
        shown: dict[str, Any] = {}
        for key, value in values.items():
            if key in self.references:
                shown[self.references[key]] = self.slugs[key].get(value, value)
            else:
                shown[key] = plain(value)
        return shown


@dataclass
class Plan:
    """What writing the checked records will do."""

    creates: list[Record] = field(default_factory=list)
    updates: list[tuple[Record, dict[str, Any]]] = field(default_factory=list)
    unchanged: int = 0


def plan(records: list[Record]) -> Plan:
    """Sort records into new rows, real changes (only the differing fields) and no-ops."""
    result = Plan()
    for record in records:
        if record.current is None:
            result.creates.append(record)
            continue
        before = record.current.values
        changed = {k: v for k, v in record.values.items() if before[k] != v}
        if changed:
            result.updates.append((record, changed))
        else:
            result.unchanged += 1
    return result


def write(session: Session, kind: Kind, todo: Plan, actor: str) -> None:
    """Bulk insert, bulk update by primary key, and one audit event per created or changed row."""
    connection = session.connection()
    events: list[dict[str, Any]] = []
    if todo.creates:
        defaults, stamp = kind.defaults(), kind.stamp(created=True)
        rows = [{**record.identity, **defaults, **record.values} for record in todo.creates]
        table = cast(SqlTable, kind.model.__table__)
        with index_filled_once(connection, table):
            insert_rows(connection, table, [{**row, **stamp} for row in rows])
        if _audited_in_sql(table, rows):
            _audit_created(connection, kind, actor, list(rows[0]), [r["ref"] for r in rows])
        else:
            events.extend(
                {
                    "actor": actor,
                    "verb": "import.create",
                    "entity": kind.entity,
                    "entity_ref": record.label,
                    "before": None,
                    "after": kind.audit_view(row),
                }
                for record, row in zip(todo.creates, rows, strict=True)
            )
    if todo.updates:
        stamp = kind.stamp(created=False)
        session.execute(
            update(kind.model),
            [
                {"id": record.current.id, **changed, **stamp}
                for record, changed in todo.updates
                if record.current is not None
            ],
        )
        for record, changed in todo.updates:
            assert record.current is not None
            before = {key: record.current.values.get(key) for key in changed}
            events.append(
                {
                    "actor": actor,
                    "verb": "import.update",
                    "entity": kind.entity,
                    "entity_ref": record.label,
                    "before": kind.audit_view(before),
                    "after": kind.audit_view(changed),
                }
            )
    record_many(session, events)


_AUDITED_IN_SQL = (String, Integer, Date, Enum, JSON)
"""Column types whose stored form reads back, in SQL, as `audit_view` shows the value (a
datetime would not: SQLite stores it in its own text form)."""


def _audited_in_sql(table: SqlTable, rows: list[dict[str, Any]]) -> bool:
    """Whether the new rows' audit events can be written from the stored rows in one statement:
    rows matched by ref (the event's label), all with the same keys, of types that read back
    as `audit_view` shows them."""
    keys = rows[0].keys()
    return (
        "ref" in keys
        and all(row.keys() == keys for row in rows)
        and all(isinstance(table.c[key].type, _AUDITED_IN_SQL) for key in keys)
    )


def _audit_created(
    connection: Connection, kind: Kind, actor: str, keys: list[str], refs: list[str]
) -> None:
    """One "import.create" event per new row, built by the database from the rows just
    inserted: the same events, in the same order, with the same `after` as `audit_view` gives,
    without building each one in Python."""
    table = cast(SqlTable, kind.model.__table__)
    audit = cast(SqlTable, AuditEvent.__table__)
    sqlite = connection.dialect.name == "sqlite"
    source: FromClause = table
    pairs: list[ColumnElement[Any]] = []
    for key in keys:
        column = table.c[key]
        if key in kind.references:
            # Foreign keys appear by slug, under the reference's name.
            target = next(iter(column.foreign_keys)).column.table.alias(f"ref_{key}")
            source = source.outerjoin(target, target.c.id == column)
            pairs += [literal_column(f"'{kind.references[key]}'"), target.c.slug]
        else:
            value: ColumnElement[Any] = column
            if sqlite and isinstance(column.type, JSON):
                value = func.json(column)  # SQLite keeps JSON as text; embed it as JSON
            pairs += [literal_column(f"'{key}'"), value]
    after = (func.json_object if sqlite else func.json_build_object)(*pairs)
    new_rows: ColumnElement[bool]
    if sqlite:
        refs_given: Select[Any] = select(column_name("value")).select_from(
            func.json_each(bindparam("refs", json.dumps(refs)))
        )
        new_rows = table.c.ref.in_(refs_given)
    else:
        new_rows = table.c.ref == any_(bindparam("refs", refs, type_=ARRAY(String)))
    fixed = {
        "at": CLOCK.now(),
        "actor": actor,
        "verb": "import.create",
        "entity": kind.entity,
        "before": None,
    }
    query = (
        select(
            *(bindparam(name, value, type_=audit.c[name].type) for name, value in fixed.items()),
            table.c.ref,
            after,
        )
        .select_from(source)
        .where(new_rows)
        .order_by(table.c.id)
    )
    statement = insert(audit).from_select([*fixed, "entity_ref", "after"], query)
    written = connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount
    if written != len(refs):
        raise RuntimeError(f"audited {written} of {len(refs)} new {kind.name} rows")


def load_existing(
    session: Session, model: type[Base], key: str, fields: tuple[str, ...]
) -> dict[Any, Existing]:
    """Every stored row of `model` by `key`, with the fields an import compares (one query)."""
    table = model.__table__
    query = select(table.c.id, table.c[key], *(table.c[name] for name in fields))
    found: dict[Any, Existing] = {}
    for row in session.execute(query):
        found[row[1]] = Existing(row[0], dict(zip(fields, row[2:], strict=True)))
    return found


MARKED_DEFAULTS: dict[str, Any] = {
    "marking": Marking.OFFICIAL,
    "exempt_paragraph": None,
    "restricted_to": [],
}
"""A new classified item is open and official unless its file says otherwise."""


def check_marked(cells: Cells, values: dict[str, Any], partners: Lookup[Partner]) -> None:
    """The access columns every classified item has: marking, exemption, restriction."""
    if cells.has("marking"):
        values["marking"] = cells.choice("marking", Marking, default=Marking.OFFICIAL)
    if cells.has("exempt_paragraph"):
        values["exempt_paragraph"] = cells.paragraph("exempt_paragraph")
    if cells.has("restricted_to"):
        values["restricted_to"] = cells.many("restricted_to", partners)
