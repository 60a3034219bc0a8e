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
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
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
    sheet: str | None = None
    """The worksheet read, for a spreadsheet: messages then say "row" and give cell addresses."""
    letters: dict[str, str] = field(default_factory=dict)
    """Spreadsheet column letter of each column, for cell addresses such as Actions!E7."""
    notices: list[ImportProblem] = field(default_factory=list)
    """Things worth checking that do not stop the import (a ? where a letter was lost)."""

    def label(self, column: str) -> str:
        """The column as the file calls it (iCalendar property names for .ics)."""
        return self.labels.get(column, column)

    def cell(self, column: str | None, line: int) -> str | None:
        """The spreadsheet address of a cell ("'Tactical plan'!E7"), or None for other files."""
        if self.sheet is None or column is None or column not in self.letters:
            return None
        return f"{sheet_prefix(self.sheet)}{self.letters[column]}{line}"

    def problem(
        self,
        line: int,
        message: str,
        fix: str,
        column: str | None = None,
        value: str | None = None,
    ) -> ImportProblem:
        """A problem located as this file's kind locates it: a line, or a row and cell."""
        return ImportProblem(
            self.source,
            line,
            self.label(column) if column is not None else None,
            value,
            message,
            fix,
            cell=self.cell(column, line),
            spreadsheet=self.sheet is not None,
        )


def sheet_prefix(title: str) -> str:
    """How Excel writes a sheet in a cell address: Actions! or 'Tactical plan'!."""
    plain = title.replace("_", "a").isalnum()
    return f"{title}!" if plain else "'" + title.replace("'", "''") + "'!"


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


HEADER_SEARCH_ROWS = 20
"""How many rows from the top may be titles above the header row."""

HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "ref": (
        "reference",
        "ref no",
        "reference number",
        "action ref",
        "decision ref",
        "id",
        "no",
        "number",
        "cyfeirnod",
        "rhif",
        "rhif cyfeirnod",
    ),
    "title": ("action", "decision", "description", "name", "teitl", "disgrifiad", "enw"),
    "title_cy": ("welsh title", "title welsh", "teitl cymraeg", "teitl cy"),
    "summary": ("details", "detail", "decision summary", "crynodeb", "manylion"),
    "summary_cy": ("welsh summary", "summary welsh", "crynodeb cymraeg", "crynodeb cy"),
    "owner_partner": (
        "partner",
        "owner partner",
        "owning partner",
        "organisation",
        "owner organisation",
        "lead partner",
        "partner perchennog",
        "sefydliad",
        "partner arweiniol",
    ),
    "owner": (
        "owner name",
        "lead",
        "lead officer",
        "responsible officer",
        "responsible",
        "action owner",
        "perchennog",
        "arweinydd",
        "swyddog arweiniol",
        "swyddog cyfrifol",
    ),
    "due_date": (
        "due",
        "due by",
        "deadline",
        "target date",
        "target",
        "completion date",
        "dyddiad targed",
        "dyddiad cau",
        "erbyn",
        "dyddiad cwblhau",
    ),
    "status": ("progress", "current status", "state", "statws", "cynnydd", "cyflwr"),
    "rag": (
        "rag status",
        "rag rating",
        "rating",
        "rag rating red amber green",
        "statws rag",
        "sgor rag",
        "graddfa rag",
    ),
    "theme": ("workstream", "work stream", "category", "area", "thema", "ffrwd waith", "maes"),
    "marking": (
        "security marking",
        "classification",
        "protective marking",
        "marc diogelwch",
        "dosbarthiad",
    ),
    "exempt_paragraph": (
        "exempt",
        "exemption",
        "schedule 12a",
        "schedule 12a paragraph",
        "exempt under paragraph",
        "paragraph",
        "paragraff eithrio",
        "atodlen 12a",
        "paragraff",
    ),
    "restricted_to": (
        "restricted",
        "restriction",
        "restricted partners",
        "cyfyngedig i",
        "cyfyngiad",
    ),
    "last_update": (
        "update",
        "latest update",
        "progress update",
        "comments",
        "comment",
        "notes",
        "note",
        "diweddariad",
        "diweddariad diweddaraf",
        "sylwadau",
        "nodiadau",
    ),
    "board": ("board name", "committee", "bwrdd", "pwyllgor"),
    "meeting_date": (
        "meeting",
        "meeting on",
        "date of meeting",
        "dyddiad y cyfarfod",
        "dyddiad cyfarfod",
        "cyfarfod",
    ),
    "decided_on": (
        "decision date",
        "date decided",
        "date of decision",
        "date",
        "dyddiad y penderfyniad",
        "dyddiad penderfynu",
        "dyddiad",
    ),
    "partners": ("partners concerned", "partners affected", "partneriaid", "partneriaid dan sylw"),
    "link": (
        "url",
        "papers",
        "papers link",
        "link to papers",
        "web link",
        "dolen",
        "dolen i'r papurau",
        "papurau",
    ),
    "starts_at": (
        "start",
        "starts",
        "start time",
        "date and time",
        "meeting start",
        "dechrau",
        "amser dechrau",
    ),
    "ends_at": ("end", "ends", "end time", "finish", "diwedd", "amser gorffen"),
    "location": ("venue", "place", "where", "room", "lleoliad", "ystafell"),
    "location_cy": ("welsh location", "lleoliad cymraeg"),
    "questions_open": ("questions open", "question window opens", "cwestiynau'n agor"),
    "questions_close": (
        "questions close",
        "question deadline",
        "question window closes",
        "cwestiynau'n cau",
        "dyddiad cau cwestiynau",
    ),
    "question_ref": (
        "question",
        "question reference",
        "question id",
        "cwestiwn",
        "cyfeirnod y cwestiwn",
    ),
    "answer": ("response", "reply", "ateb", "ymateb"),
    "answered_by": ("answered by", "respondent", "by", "atebwyd gan", "ymatebydd"),
}
"""Other names people give our columns, in English and Welsh (compared as `header_key`
writes them), so a council's own spreadsheet imports without renaming its header."""

_SUSPECT_QUESTION_MARK = re.compile(r"[^\W\d_]\? ?[^\W\d_]")
"""A ? straight after a letter with more words following ("Nh? Gwent", "d?r"): what a legacy
encoding (Windows-1252) leaves of ŵ, ŷ and the like. Only short cells are checked, where a
question mark in mid-text is rare; a warning, never a refusal."""
_SUSPECT_LENGTH = 200


def _lost_letters(value: str) -> bool:
    """Whether a cell looks like text that lost letters to a legacy encoding (not a web address,
    whose query strings put ? between letters)."""
    if "://" in value or len(value) > _SUSPECT_LENGTH:
        return False
    return _SUSPECT_QUESTION_MARK.search(value) is not None


def header_key(name: str) -> str:
    """A header cell compared forgivingly: case, accents, spaces and punctuation ignored."""
    text = unicodedata.normalize("NFKD", name.replace("’", "'"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z0-9']+", " ", text).split())


def _header_lookup(
    columns: Sequence[str], column_map: Mapping[str, str] | None = None
) -> dict[str, str]:
    # The collaboration's own names (its `imports:` map) come first, then ours.
    lookup: dict[str, str] = {
        header_key(header): column
        for header, column in (column_map or {}).items()
        if column in columns
    }
    for column in columns:
        lookup.setdefault(header_key(column), column)
    for column in columns:
        for alias in HEADER_ALIASES.get(column, ()):
            lookup.setdefault(header_key(alias), column)
    return lookup


@dataclass
class _Grid:
    """The non-empty rows of a file, numbered as the file numbers them, before any header."""

    records: list[tuple[int, list[str]]]
    sheet: str | None = None
    unsaved_formulas: dict[tuple[int, int], str] = field(default_factory=dict)
    """(row, 0-based column) -> the formula of a cell whose result was never saved."""


def _csv_grid(path: Path, source: str) -> _Grid:
    text = decode_utf8(path.read_bytes(), source)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
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
            max(0, len(records) - 1),
        ) from None
    return _Grid(records)


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


def _xlsx_grid(path: Path, source: str, sheet: str | None) -> _Grid:
    import openpyxl

    records: list[tuple[int, list[str]]] = []
    unsaved: dict[tuple[int, int], str] = {}
    chosen = ""
    try:
        values = openpyxl.load_workbook(path, read_only=True, data_only=True)
        formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
        try:
            chosen = _choose_sheet(values, source, sheet)
            rows = zip(
                values[chosen].iter_rows(values_only=True),
                formulas[chosen].iter_rows(values_only=True),
                strict=False,
            )
            for number, (saved, written) in enumerate(rows, 1):
                cells = [_xlsx_text(value) for value in saved]
                lost = {
                    (number, index): formula
                    for index, (value, formula) in enumerate(zip(saved, written, strict=False))
                    if value is None and isinstance(formula, str) and formula.startswith("=")
                }
                unsaved.update(lost)
                if lost or any(cell.strip() for cell in cells):
                    records.append((number, cells))
        finally:
            values.close()
            formulas.close()
    except ImportRejected:
        raise
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
    return _Grid(records, chosen, unsaved)


def _choose_sheet(workbook: Any, source: str, wanted: str | None) -> str:
    """The sheet named by --sheet (any case), else the first visible one."""
    titles = [sheet.title for sheet in workbook.worksheets]
    if wanted is not None:
        for title in titles:
            if title.strip().lower() == wanted.strip().lower():
                return str(title)
        raise ImportRejected(
            [
                _problem(
                    source,
                    1,
                    _('there is no sheet "{sheet}"').format(sheet=wanted),
                    _("use --sheet with one of: {sheets}").format(sheets=", ".join(titles)),
                )
            ],
            0,
        )
    for sheet in workbook.worksheets:
        if getattr(sheet, "sheet_state", "visible") == "visible":
            return str(sheet.title)
    raise ImportRejected(
        [
            _problem(
                source,
                1,
                _("every sheet in the workbook is hidden"),
                _("unhide the sheet to import, or name it with --sheet"),
            )
        ],
        0,
    )


def _find_header(
    grid: _Grid, lookup: dict[str, str], required: Sequence[str]
) -> tuple[int, list[str]]:
    """The index in `grid.records` of the header row, and its cells mapped to our columns.

    Title rows above the header are skipped: the header is the first of the top rows that names
    the most of our columns (at least two, or every required one). With no such row the first
    row is taken, so its problems are reported as a header's.
    """
    best, best_count = 0, 0
    for index, (_line, cells) in enumerate(grid.records[:HEADER_SEARCH_ROWS]):
        named = {lookup[key] for key in (header_key(cell) for cell in cells) if key in lookup}
        enough = len(named) >= 2 or (bool(required) and set(required) <= named)
        if enough and len(named) > best_count:
            best, best_count = index, len(named)
    _line, cells = grid.records[best] if grid.records else (1, [])
    return best, [lookup.get(header_key(cell), cell.strip().lower()) for cell in cells]


def _header_problems(
    table: Table,
    line: int,
    raw: Sequence[str],
    header: Sequence[str],
    columns: Sequence[str],
    required: Iterable[str],
) -> list[ImportProblem]:
    problems: list[ImportProblem] = []
    seen: dict[str, int] = {}
    for position, (name, written) in enumerate(zip(header, raw, strict=True), 1):
        if not name:
            continue
        if name in seen:
            problems.append(
                table.problem(
                    line,
                    _("the column appears twice (columns {first} and {second})").format(
                        first=seen[name], second=position
                    ),
                    _("keep one of them"),
                    column=_("header"),
                    value=written.strip(),
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
                table.problem(
                    line, _("unknown column"), fix, column=_("header"), value=written.strip()
                )
            )
    for name in required:
        if name not in seen:
            problems.append(
                table.problem(
                    line,
                    _('the required column "{column}" is missing').format(column=name),
                    _("add it to the header row (the columns are {columns})").format(
                        columns=", ".join(columns)
                    ),
                )
            )
    return problems


def read_table(
    path: Path,
    columns: Sequence[str],
    required: Iterable[str],
    *,
    sheet: str | None = None,
    column_map: Mapping[str, str] | None = None,
) -> Table:
    """Rows of a CSV or XLSX file with the given columns; raise ImportRejected.

    The header may sit below title rows and may name columns forgivingly (any case, spaces or
    punctuation, the names in HEADER_ALIASES, Welsh names). A workbook is read from its first
    visible sheet unless `sheet` names one; a formula whose result was never saved is refused
    by its cell address. `column_map` adds the collaboration's own header names.
    """
    from openpyxl.utils import get_column_letter

    source = path.name
    required = list(required)
    is_spreadsheet = path.suffix.lower() == ".xlsx"
    grid = _xlsx_grid(path, source, sheet) if is_spreadsheet else _csv_grid(path, source)
    header_index, header = _find_header(grid, _header_lookup(columns, column_map), required)
    raw_header = grid.records[header_index][1] if grid.records else []
    header_line = grid.records[header_index][0] if grid.records else 1
    records = grid.records[header_index + 1 :]
    positions = {name: i for i, name in enumerate(header) if name in columns}
    table = Table(
        source,
        frozenset(positions),
        [],
        sheet=grid.sheet,
        letters={name: get_column_letter(i + 1) for name, i in positions.items()},
    )
    if not any(header):
        fix = (
            _("make the first row the column names: {columns}")
            if is_spreadsheet
            else _("make the first line the column names: {columns}")
        )
        raise ImportRejected(
            [
                table.problem(
                    header_line,
                    _("the file has no header row"),
                    fix.format(columns=",".join(columns)),
                )
            ],
            len(records),
        )
    problems = _header_problems(table, header_line, raw_header, header, columns, required)
    for line, cells in records:
        extra = [cell for i, cell in enumerate(cells) if (i >= len(header) or not header[i])]
        if any(cell.strip() for cell in extra):
            problems.append(
                table.problem(
                    line,
                    _(
                        "this row has values beyond the named columns ({count} cells, {named} "
                        "columns named)"
                    ).format(count=len(cells), named=sum(1 for h in header if h)),
                    _("quote values that contain commas, or name the extra column in the header"),
                )
            )
            continue
        row = Row(
            line,
            {name: (cells[i].strip() if i < len(cells) else "") for name, i in positions.items()},
        )
        for name, i in positions.items():
            formula = grid.unsaved_formulas.get((line, i))
            if formula is not None:
                problems.append(
                    table.problem(
                        line,
                        _("a formula whose result was never saved"),
                        _(
                            "open the file in Excel and save it again (Excel then stores the "
                            "results), or paste the values in place of the formula"
                        ),
                        column=name,
                        value=formula,
                    )
                )
            elif _lost_letters(row.cells[name]):
                table.notices.append(
                    table.problem(
                        line,
                        _(
                            "a ? stands inside a word: letters such as ŵ or ŷ may have been lost "
                            "when the file was saved in an older encoding"
                        ),
                        _("check the original and, if so, save it again as CSV UTF-8 or .xlsx"),
                        column=name,
                        value=row.cells[name],
                    )
                )
        table.rows.append(row)
    if problems:
        raise ImportRejected(problems, len(records))
    return table


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
    named = _iana_zone(value, prop)
    if value.tzinfo is None or named == zone.key:
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="minutes")
    if named is not None:
        # Rebuild the offset from the zone database rather than the file's own rules.
        value = value.replace(tzinfo=ZoneInfo(named))
    return value.isoformat(sep=" ", timespec="minutes")


def _iana_zone(value: datetime, prop: Any) -> str | None:
    """The IANA name of a time's zone: its own key, or the TZID, mapped from a Windows zone
    name as Outlook and Exchange write them ("GMT Standard Time" -> Europe/London)."""
    from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

    key = getattr(value.tzinfo, "key", None)
    if isinstance(key, str):
        return key
    params = getattr(prop, "params", None)
    tzid = str(params.get("TZID", "")).strip('"') if params is not None else ""
    if not tzid:
        return None
    if tzid in WINDOWS_TO_OLSON:
        return str(WINDOWS_TO_OLSON[tzid])
    try:
        return ZoneInfo(tzid).key
    except (ValueError, KeyError, OSError):
        return None


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
