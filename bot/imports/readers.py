"""Reading CSV, XLSX and iCalendar files into rows of raw text cells, checking the header.

Every reader yields the same thing: the line (or sheet row) each record starts on and a dict
of column name to stripped text. Problems with the file itself (encoding, header) end the
import before any row is checked.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.i18n import _
from bot.imports.problems import ImportProblem, ImportRejected


@dataclass(frozen=True)
class Row:
    """One record: the line it starts on and its cells by column name."""

    line: int
    cells: dict[str, str]


@dataclass
class Table:
    """A file's records, the columns its header named, and how to name columns in messages."""

    source: str
    columns: frozenset[str]
    rows: list[Row]
    labels: dict[str, str] = field(default_factory=dict)

    def label(self, column: str) -> str:
        """The column as the file calls it (iCalendar property names for .ics)."""
        return self.labels.get(column, column)


def _problem(
    source: str,
    line: int,
    message: str,
    fix: str,
    column: str | None = None,
    value: str | None = None,
) -> ImportProblem:
    return ImportProblem(source, line, column, value, message, fix)


def decode_utf8(data: bytes, source: str) -> str:
    """The text of a UTF-8 file (a byte-order mark is dropped); refuse other encodings."""
    skipped = 0
    if data.startswith(codecs.BOM_UTF8):
        data, skipped = data[len(codecs.BOM_UTF8) :], len(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ImportRejected(
            [
                _problem(
                    source,
                    line,
                    _("not UTF-8 text (byte 0x{byte:02X} at byte offset {offset})").format(
                        byte=data[error.start], offset=error.start + skipped
                    ),
                    _(
                        'save the file as "CSV UTF-8 (Comma delimited)" in Excel, '
                        "or convert it with: iconv -f WINDOWS-1252 -t UTF-8"
                    ),
                )
            ],
            0,
        ) from None


def _csv_records(path: Path, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    text = decode_utf8(path.read_bytes(), source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if header is None:
                header = cells
            elif any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as error:
        raise ImportRejected(
            [
                _problem(
                    source,
                    start,
                    _("not readable as CSV ({error})").format(error=error),
                    _(
                        "check the quoting on this line: a value containing quotes must be "
                        'wrapped in quotes and its quotes doubled ("")'
                    ),
                )
            ],
            len(records),
        ) from None
    return header or [], records


def _xlsx_text(value: Any) -> str:
    # Excel stores dates as date-times; a midnight time means the cell holds a date.
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.time() == time(0, 0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_records(path: Path, source: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    import openpyxl

    header: list[str] | None = None
    records: list[tuple[int, list[str]]] = []
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for number, values in enumerate(workbook.worksheets[0].iter_rows(values_only=True), 1):
                cells = [_xlsx_text(value) for value in values]
                if header is None:
                    header = cells
                elif any(cell.strip() for cell in cells):
                    records.append((number, cells))
        finally:
            workbook.close()
    except Exception as error:  # openpyxl raises many types for a damaged or foreign file
        raise ImportRejected(
            [
                _problem(
                    source,
                    1 + (records[-1][0] if records else 0),
                    _("not a readable Excel workbook ({error})").format(error=error),
                    _("save it from Excel as .xlsx, or export it as CSV UTF-8"),
                )
            ],
            len(records),
        ) from None
    return header or [], records


def _header_problems(
    source: str, header: Sequence[str], columns: Sequence[str], required: Iterable[str]
) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    seen: dict[str, int] = {}
    for position, name in enumerate(header, 1):
        if not name:
            continue
        if name in seen:
            problems.append(
                _problem(
                    source,
                    1,
                    _("the column appears twice (columns {first} and {second})").format(
                        first=seen[name], second=position
                    ),
                    _("keep one of them"),
                    column=_("header"),
                    value=name,
                )
            )
            continue
        seen[name] = position
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1, cutoff=0.6)
            if len(header) == 1 and any(mark in name for mark in ";\t|"):
                fix = _("separate the columns with commas, not semicolons or tabs")
            elif close:
                fix = _('rename it to "{column}"').format(column=close[0])
            else:
                fix = _("remove it; the columns are {columns}").format(columns=", ".join(columns))
            problems.append(
                _problem(source, 1, _("unknown column"), fix, column=_("header"), value=name)
            )
    for name in required:
        if name not in seen:
            problems.append(
                _problem(
                    source,
                    1,
                    _('the required column "{column}" is missing').format(column=name),
                    _("add it to the header row (the columns are {columns})").format(
                        columns=", ".join(columns)
                    ),
                )
            )
    return problems


def read_table(path: Path, columns: Sequence[str], required: Iterable[str]) -> Table:
    """Rows of a CSV or XLSX file with the given columns (header row 1); raise ImportRejected."""
    source = path.name
    if path.suffix.lower() == ".xlsx":
        raw_header, records = _xlsx_records(path, source)
    else:
        raw_header, records = _csv_records(path, source)
    header = [name.strip().lower() for name in raw_header]
    if not any(header):
        raise ImportRejected(
            [
                _problem(
                    source,
                    1,
                    _("the file has no header row"),
                    _("make line 1 the column names: {columns}").format(columns=",".join(columns)),
                )
            ],
            len(records),
        )
    problems = _header_problems(source, header, columns, required)
    positions = {name: i for i, name in enumerate(header) if name in columns}
    rows: list[Row] = []
    for line, cells in records:
        extra = [cell for i, cell in enumerate(cells) if (i >= len(header) or not header[i])]
        if any(cell.strip() for cell in extra):
            problems.append(
                _problem(
                    source,
                    line,
                    _(
                        "this row has values beyond the named columns ({count} cells, {named} "
                        "columns named)"
                    ).format(count=len(cells), named=sum(1 for h in header if h)),
                    _("quote values that contain commas, or name the extra column in the header"),
                )
            )
            continue
        rows.append(
            Row(
                line,
                {
                    name: (cells[i].strip() if i < len(cells) else "")
                    for name, i in positions.items()
                },
            )
        )
    if problems:
        raise ImportRejected(problems, len(records))
    return Table(source, frozenset(positions), rows)


ICS_LABELS = {
    "board": "CATEGORIES/SUMMARY",
    "starts_at": "DTSTART",
    "ends_at": "DTEND",
    "location": "LOCATION",
    "link": "URL",
    "questions_open": "X-SCRUTINY-QUESTIONS-OPEN",
    "questions_close": "X-SCRUTINY-QUESTIONS-CLOSE",
    "source_uid": "UID",
}


def _ics_text(prop: Any) -> str:
    if prop is None:
        return ""
    if isinstance(prop, str):  # vText, vUri, and vBroken (a value that failed to parse)
        return str(prop).strip()
    if isinstance(prop, list):
        return ";".join(_ics_text(item) for item in prop)
    cats = getattr(prop, "cats", None)
    if cats is not None:
        return ";".join(str(cat) for cat in cats)
    raw = prop.to_ical() if hasattr(prop, "to_ical") else prop
    return (raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)).strip()


def _ics_moment(prop: Any, zone: ZoneInfo) -> str:
    """A DTSTART-like property as text the meeting checks parse: wall-clock time when it is in
    the import's zone (so skipped and repeated times are caught), else with its offset."""
    if prop is None or isinstance(prop, str):  # a broken value is shown as it was written
        return _ics_text(prop)
    value = getattr(prop, "dt", None)
    if not isinstance(value, date):
        return _ics_text(prop)
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is None or getattr(value.tzinfo, "key", None) == zone.key:
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes")
    return value.isoformat(sep=" ", timespec="minutes")


def read_ics(path: Path, zone: ZoneInfo) -> Table:
    """Each VEVENT of an iCalendar file as a meetings row, with the line its BEGIN:VEVENT is on."""
    import icalendar

    source = path.name
    text = decode_utf8(path.read_bytes(), source)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as error:  # icalendar reports malformed content with assorted errors
        raise ImportRejected(
            [
                _problem(
                    source,
                    1,
                    _("not a readable iCalendar file ({error})").format(error=error),
                    _("export the meetings again from the calendar as an .ics file"),
                )
            ],
            0,
        ) from None
    starts = [
        n for n, line in enumerate(text.splitlines(), 1) if line.strip().upper() == "BEGIN:VEVENT"
    ]
    events = list(calendar.walk("VEVENT"))
    problems: list[ImportProblem] = []
    rows: list[Row] = []
    for index, event in enumerate(events):
        line = starts[index] if index < len(starts) else 1
        try:
            if event.get("RRULE") is not None:
                problems.append(
                    _problem(
                        source,
                        line,
                        _("a repeating event (RRULE) cannot be imported as meetings"),
                        _("export the meetings as single events, or list them in a meetings CSV"),
                        column="RRULE",
                        value=_ics_text(event.get("RRULE")),
                    )
                )
            elif _ics_text(event.get("STATUS")).upper() != "CANCELLED":
                rows.append(Row(line, _ics_cells(event, zone)))
        except Exception as error:  # icalendar's accessors raise assorted errors on odd input
            problems.append(
                _problem(
                    source,
                    line,
                    _("the event could not be read ({error})").format(error=error),
                    _("export the meetings again from the calendar as an .ics file"),
                )
            )
    if problems:
        raise ImportRejected(problems, len(events))
    return Table(source, frozenset(ICS_LABELS), rows, dict(ICS_LABELS))


def _ics_cells(event: Any, zone: ZoneInfo) -> dict[str, str]:
    return {
        "categories": _ics_text(event.get("CATEGORIES")),
        "summary": _ics_text(event.get("SUMMARY")),
        "source_uid": _ics_text(event.get("UID")),
        "starts_at": _ics_moment(event.get("DTSTART"), zone),
        "ends_at": _ics_moment(event.get("DTEND"), zone),
        "location": _ics_text(event.get("LOCATION")),
        "link": _ics_text(event.get("URL")),
        "questions_open": _ics_moment(event.get("X-SCRUTINY-QUESTIONS-OPEN"), zone),
        "questions_close": _ics_moment(event.get("X-SCRUTINY-QUESTIONS-CLOSE"), zone),
    }
