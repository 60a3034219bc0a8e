"""Meetings, decisions and actions from Microsoft 365, upserted exactly as the CSV imports are.

Platform-neutral: a `GraphSource` (in production `bot.microsoft365.graph.GraphReader`) fetches the
records; this module maps them through the collaboration file's `graph:` section into the rows
the importers check, and hands them to `bot.imports.import_table` (same validation, upsert by
ref, audit entries; nothing is ever deleted: an item gone from a list stays as it was).

Everything is fetched before anything is written, so a sync interrupted by a Graph failure
writes nothing, and running it again completes it without duplicates. Then the kinds are
written in one transaction, meetings first (decisions link to them), each in a savepoint: a
kind with any bad row is refused as a whole, like an import, and reported with the list item
id and field; the other kinds still go in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import CLOCK
from bot.collaboration import GraphConfig, SharePointListConfig, load_collaboration
from bot.db import unit_of_work
from bot.i18n import _
from bot.imports import ImportProblem, ImportRejected, ImportReport, Row, Table, import_table
from bot.models import ProcessedEvent

SYNC_EVERY = timedelta(minutes=30)
KEEP_SLOTS = timedelta(days=2)
MEETING_LABELS = {
    "board": "group calendar",
    "starts_at": "start",
    "ends_at": "end",
    "location": "location",
    "link": "onlineMeeting.joinUrl",
    "source_uid": "iCalUId",
}
"""Meeting columns as Graph names them, for problems."""
_UTC_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$")


@dataclass(frozen=True)
class CalendarEvent:
    """One event of a board's group calendar."""

    id: str
    uid: str
    subject: str
    starts_at: datetime
    ends_at: datetime | None
    location: str = ""
    link: str = ""
    cancelled: bool = False


@dataclass(frozen=True)
class ListItem:
    """One SharePoint list item: its id and its fields by internal name."""

    id: str
    fields: Mapping[str, Any]


class GraphSource(Protocol):
    """Reads what the sync needs from Microsoft 365; raises SyncFailed when it cannot."""

    def calendar_events(self, group_id: str, start: datetime, end: datetime) -> list[CalendarEvent]:
        """Every event of the group's calendar overlapping [start, end), all pages."""
        ...

    def list_items(self, site: str, list_id: str) -> list[ListItem]:
        """Every item of the list with its fields, all pages."""
        ...


class SyncFailed(Exception):
    """Microsoft 365 could not be read (after the SDK's retries); nothing was written."""


@dataclass(frozen=True)
class SyncProblem:
    """A fetched item the importer refused: which item, which field, why, and the fix."""

    source: str
    item: str
    problem: ImportProblem

    def __str__(self) -> str:
        where = _("{source}, item {item}").format(source=self.source, item=self.item)
        if self.problem.column is not None:
            where += f", {self.problem.column}"
            if self.problem.value:
                where += f' "{self.problem.value[:60]}"'
        return _("{where}: {message}; {fix}").format(
            where=where, message=self.problem.message, fix=self.problem.fix
        )


@dataclass
class SyncReport:
    """What one sync did: per kind, an import report or the problems that refused it."""

    imported: dict[str, ImportReport] = field(default_factory=dict)
    refused: dict[str, list[SyncProblem]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every kind went in."""
        return not self.refused


@dataclass
class _Fetched:
    kind: str
    table: Table
    items: dict[int, str]
    """Row line -> the Graph id of the item it came from."""


def _local_text(value: datetime, zone: ZoneInfo) -> str:
    return value.astimezone(zone).isoformat(sep=" ", timespec="minutes")


def _cell(value: Any, zone: ZoneInfo) -> str:
    """A SharePoint field value as the text a CSV cell would hold."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ";".join(_cell(part, zone) for part in value)
    if isinstance(value, Mapping):
        # Lookup and person fields: their shown value.
        for key in ("LookupValue", "lookupValue", "Label", "DisplayName", "Email"):
            if key in value:
                return _cell(value[key], zone)
        return ""
    if isinstance(value, str) and _UTC_STAMP.match(value.strip()):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, datetime):
        # Date columns come back as the UTC instant of local midnight.
        local = value.astimezone(zone) if value.tzinfo else value
        if (local.hour, local.minute, local.second) == (0, 0, 0):
            return local.date().isoformat()
        return local.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def meeting_rows(board: str, events: list[CalendarEvent], zone: ZoneInfo, source: str) -> _Fetched:
    """A board's calendar events as meetings rows (cancelled events left out)."""
    rows: list[Row] = []
    items: dict[int, str] = {}
    for line, event in enumerate((e for e in events if not e.cancelled), 1):
        items[line] = event.id
        rows.append(
            Row(
                line,
                {
                    "categories": board,
                    "summary": event.subject,
                    "source_uid": event.uid,
                    "starts_at": _local_text(event.starts_at, zone),
                    "ends_at": _local_text(event.ends_at, zone) if event.ends_at else "",
                    "location": event.location,
                    "link": event.link,
                    "questions_open": "",
                    "questions_close": "",
                },
            )
        )
    return _Fetched(
        "meetings", Table(source, frozenset(MEETING_LABELS), rows, MEETING_LABELS), items
    )


def list_rows(
    kind: str, mapping: SharePointListConfig, items: list[ListItem], zone: ZoneInfo, source: str
) -> _Fetched:
    """List items as rows of `kind`, through the field map (column -> SharePoint field)."""
    rows: list[Row] = []
    ids: dict[int, str] = {}
    for line, item in enumerate(items, 1):
        ids[line] = item.id
        cells = {
            column: _cell(item.fields.get(name), zone) for column, name in mapping.fields.items()
        }
        rows.append(Row(line, cells))
    return _Fetched(kind, Table(source, frozenset(mapping.fields), rows, dict(mapping.fields)), ids)


def fetch(
    source: GraphSource, config: GraphConfig, *, now: datetime, zone: ZoneInfo
) -> list[_Fetched]:
    """Everything configured, read in full (raises SyncFailed on the first failure)."""
    start = now - timedelta(days=config.past_days)
    end = now + timedelta(days=config.future_days)
    fetched: list[_Fetched] = []
    events: list[tuple[str, CalendarEvent]] = []
    for board, group in config.calendars.items():
        events.extend((board, e) for e in source.calendar_events(group, start, end))
    if config.calendars:
        tables = [
            meeting_rows(board, [e for b, e in events if b == board], zone, "")
            for board in config.calendars
        ]
        fetched.append(_merge("meetings", _("group calendars"), tables))
    sharepoint = config.sharepoint
    if sharepoint is not None:
        for kind in ("decisions", "actions"):
            mapping: SharePointListConfig | None = getattr(sharepoint, kind)
            if mapping is None:
                continue
            items = source.list_items(sharepoint.site, mapping.list)
            label = _("SharePoint list {list}").format(list=mapping.list)
            fetched.append(list_rows(kind, mapping, items, zone, label))
    return fetched


def _merge(kind: str, source: str, parts: list[_Fetched]) -> _Fetched:
    """Several boards' calendars as one table, so a clash between them is found."""
    rows: list[Row] = []
    items: dict[int, str] = {}
    for part in parts:
        for row in part.table.rows:
            line = len(rows) + 1
            rows.append(Row(line, row.cells))
            items[line] = part.items[row.line]
    return _Fetched(kind, Table(source, frozenset(MEETING_LABELS), rows, MEETING_LABELS), items)


def sync_graph(
    sessions: sessionmaker[Session],
    source: GraphSource,
    config: GraphConfig,
    *,
    actor: str,
    zone: ZoneInfo,
    now: datetime | None = None,
    dry_run: bool = False,
) -> SyncReport:
    """Read everything, then upsert each kind in one transaction; raises SyncFailed (nothing
    written) when Microsoft 365 could not be read."""
    now = now or CLOCK.now()
    fetched = fetch(source, config, now=now, zone=zone)
    report = SyncReport()
    with unit_of_work(sessions) as session:
        for part in fetched:
            try:
                with session.begin_nested():
                    report.imported[part.kind] = import_table(
                        session,
                        part.kind,
                        part.table,
                        actor=actor,
                        dry_run=dry_run,
                        zone=zone,
                        now=now,
                    )
            except ImportRejected as rejected:
                report.refused[part.kind] = [
                    SyncProblem(part.table.source, part.items.get(p.line, "?"), p)
                    for p in rejected.problems
                ]
    return report


def claim_slot(
    sessions: sessionmaker[Session], now: datetime, every: timedelta = SYNC_EVERY
) -> bool:
    """Whether this worker should sync now: the first to claim the current slot (every 30
    minutes) does; the claim is a database row, so restarts and other workers agree."""
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    slot = epoch + ((now - epoch) // every) * every
    try:
        with unit_of_work(sessions) as session:
            session.add(ProcessedEvent(key=f"graph-sync:{slot.isoformat()}", at=now))
    except IntegrityError:
        return False
    with unit_of_work(sessions) as session:
        session.execute(
            delete(ProcessedEvent).where(
                ProcessedEvent.key.startswith("graph-sync:"), ProcessedEvent.at < now - KEEP_SLOTS
            )
        )
    return True


def graph_config(path: Path) -> GraphConfig | None:
    """The collaboration file's graph section (None without one); raises ConfigError."""
    return load_collaboration(path).graph


def sync_window(config: GraphConfig, now: datetime) -> tuple[date, date]:
    """The dates the calendars are read for (shown by the CLI)."""
    return (
        (now - timedelta(days=config.past_days)).date(),
        (now + timedelta(days=config.future_days)).date(),
    )
