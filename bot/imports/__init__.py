"""Importing actions, decisions, meetings, answers and attendance from CSV, XLSX and
iCalendar files.

One file is one transaction in the caller's session: every row is checked first, and if any
row is bad `ImportRejected` lists every problem and nothing has been written. Rows are matched
to stored ones (by ref; meetings by iCalendar UID, else board and start time), so importing the
same file again changes nothing; each created or changed row gets one audit event.

Columns a file leaves out are left alone on update; a blank cell in a column the file has sets
the column's default (blank status is not-started, blank marking official).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from bot.clock import CLOCK
from bot.i18n import _
from bot.imports.actions import ActionsImport
from bot.imports.answers import AnswersImport
from bot.imports.attendance import AttendanceImport
from bot.imports.base import Kind, Record, plan
from bot.imports.cells import Cells
from bot.imports.decisions import DecisionsImport
from bot.imports.meetings import MeetingsImport
from bot.imports.problems import ImportProblem, ImportRejected, ImportReport, rejection_summary
from bot.imports.readers import Row, Table

__all__ = [
    "KINDS",
    "PROGRESS_EVERY",
    "ImportProblem",
    "ImportRejected",
    "ImportReport",
    "Row",
    "Table",
    "import_file",
    "import_table",
    "rejection_summary",
    "suffixes_for",
]

KINDS: dict[str, type[Kind]] = {
    kind.name: kind
    for kind in (ActionsImport, DecisionsImport, MeetingsImport, AnswersImport, AttendanceImport)
}
PROGRESS_EVERY = 1000
LONDON = ZoneInfo("Europe/London")


def suffixes_for(kind: str) -> tuple[str, ...]:
    """File types a kind can be imported from."""
    return (".csv", ".xlsx", ".ics") if kind == MeetingsImport.name else (".csv", ".xlsx")


def _checked(kind: Kind, cells: Cells, seen: dict[Hashable, int]) -> Record | None:
    record = kind.check(cells)
    if record is None or not cells.ok:
        return None
    for column, key in record.unique:
        first = seen.setdefault(key, cells.line)
        if first != cells.line:
            cells.problem(
                column,
                (
                    _("appears twice in this file (first on row {line})")
                    if cells.table.sheet is not None
                    else _("appears twice in this file (first on line {line})")
                ).format(line=first),
                _("keep one row for it"),
            )
    return record if cells.ok else None


def import_file(
    session: Session,
    kind: str,
    path: Path,
    *,
    actor: str,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    zone: ZoneInfo = LONDON,
    now: datetime | None = None,
    sheet: str | None = None,
    column_map: Mapping[str, str] | None = None,
) -> ImportReport:
    """Import one file of `kind` (actions, decisions, meetings, answers, attendance) in `session`'s
    transaction; raise ImportRejected, having written nothing, if any row is bad.

    `progress(done, total)` is called every PROGRESS_EVERY rows checked and once at the end.
    Naive times are wall-clock times in `zone`; `now` stamps recorded_at and answered_at.
    `sheet` names the worksheet of an .xlsx file (default: the first visible one);
    `column_map` is the collaboration's own header names for this kind (its `imports:` map).
    """
    importer = _importer(session, kind, zone, now)
    table = importer.read(path, sheet=sheet, column_map=column_map)
    return _import(session, importer, table, actor, dry_run, progress)


def import_table(
    session: Session,
    kind: str,
    table: Table,
    *,
    actor: str,
    dry_run: bool = False,
    zone: ZoneInfo = LONDON,
    now: datetime | None = None,
) -> ImportReport:
    """Import rows read from elsewhere (Microsoft 365, say) exactly as a file of `kind` would
    be: the same checks, upsert, audit events and ImportRejected with nothing written."""
    return _import(session, _importer(session, kind, zone, now), table, actor, dry_run, None)


def _importer(session: Session, kind: str, zone: ZoneInfo, now: datetime | None) -> Kind:
    if kind not in KINDS:
        raise ValueError(f"unknown import kind {kind!r}; use one of {', '.join(KINDS)}")
    return KINDS[kind](session, zone, now or CLOCK.now())


def _import(
    session: Session,
    importer: Kind,
    table: Table,
    actor: str,
    dry_run: bool,
    progress: Callable[[int, int], None] | None,
) -> ImportReport:
    importer.load()
    total = len(table.rows)
    problems: list[ImportProblem] = []
    records: list[Record] = []
    seen: dict[Hashable, int] = {}
    for done, row in enumerate(table.rows, 1):
        record = _checked(importer, Cells(table, row, problems, importer.zone), seen)
        if record is not None:
            records.append(record)
        if progress is not None and done % PROGRESS_EVERY == 0:
            progress(done, total)
    if problems:
        raise ImportRejected(problems, total)
    todo = plan(records)
    if not dry_run:
        importer.apply(todo, actor)
    if progress is not None:
        progress(total, total)
    return ImportReport(
        kind=importer.name,
        rows=total,
        created=len(todo.creates),
        updated=len(todo.updates),
        unchanged=todo.unchanged,
        problems=[*table.notices, *importer.notices],
    )
