"""Checking one row's cells: each check returns the typed value or records a precise problem."""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Generic, TypeVar
from zoneinfo import ZoneInfo

from bot.domain import EXEMPT_PARAGRAPHS
from bot.i18n import _
from bot.imports.problems import ImportProblem
from bot.imports.readers import Row, Table
from bot.text_input import LINK, REF, TextField, TextRefused, clean, is_web_link

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

EARLIEST_YEAR, LATEST_YEAR = 2000, 2099
"""Dates outside these years are typing slips in a register of this collaboration."""

_UK_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2}|\d{4})$")
_UK_MOMENT = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})([ T]\d.*)$")
_EXCEL_SERIAL = re.compile(r"^[1-9]\d{4}$")
EXCEL_EPOCH = date(1899, 12, 30)
"""Day 0 of Excel's date serial numbers (counting Excel's 1900 leap-year quirk)."""
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_HAS_TIME = re.compile(r"\d[Tt ]\d")
_PARAGRAPH = re.compile(r"^(?:para(?:graph)?\.?\s*)?(\d{1,3})$", re.IGNORECASE)
_DATE_EXAMPLE = "2026-02-28"


def _valid_example(year: int, month: int, day: int) -> str:
    month = min(max(month, 1), 12)
    year = min(max(year, EARLIEST_YEAR), LATEST_YEAR)
    day = min(max(day, 1), calendar.monthrange(year, month)[1])
    return date(year, month, day).isoformat()


def date_example(raw: str) -> str:
    """A valid ISO date close to what was typed: '31/02/2026' -> '2026-02-28'."""
    uk = _UK_DATE.match(raw)
    if uk:
        day, month, year = (int(part) for part in uk.groups())
        return _valid_example(year + 2000 if year < 100 else year, month, day)
    iso = _ISO_DATE.match(raw)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
        return _valid_example(year, month, day)
    return _DATE_EXAMPLE


def wall_clock(value: datetime, zone: ZoneInfo) -> tuple[datetime | None, str | None]:
    """A naive local time in `zone` made aware, or why it cannot be: it does not exist (the
    clocks went forward past it) or it happens twice (the clocks went back)."""
    early = value.replace(tzinfo=zone, fold=0)
    late = value.replace(tzinfo=zone, fold=1)
    if early.utcoffset() != late.utcoffset():
        round_trip = early.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != value:
            return None, "gap"
        return None, "overlap"
    return early, None


def calendar_date(value: str, *, spreadsheet: bool = False) -> date | None:
    """A date written YYYY-MM-DD or, as in the UK, DD/MM/YYYY; in a spreadsheet also an Excel
    date serial number (a date cell that lost its format). None when it is not a real date."""
    uk = _UK_DATE.match(value)
    try:
        if _ISO_DATE.match(value):
            return date.fromisoformat(value)
        if uk and len(uk.group(3)) == 4:
            day, month, year = (int(part) for part in uk.groups())
            return date(year, month, day)
        if spreadsheet and _EXCEL_SERIAL.match(value):
            return EXCEL_EPOCH + timedelta(days=int(value))
    except (ValueError, OverflowError):
        return None
    return None


def at_local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `zone` (used for times that never fall in a gap)."""
    return datetime.combine(day, clock, tzinfo=zone)


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


class Lookup(Generic[T]):
    """Find a partner or board by slug, prefix or exact English or Welsh name (any case)."""

    def __init__(
        self,
        what: str,
        items: Iterable[T],
        slug: Callable[[T], str],
        names: Callable[[T], Iterable[str]],
    ) -> None:
        self.what = what
        self.slug = slug
        self.items = list(items)
        self._by_name: dict[str, T] = {}
        for item in self.items:
            for name in (slug(item), *names(item)):
                self._by_name.setdefault(name.strip().lower(), item)

    def find(self, text: str) -> T | None:
        """The item `text` names, or None."""
        return self._by_name.get(text.strip().lower())

    def fix(self, text: str) -> str:
        """How to name one correctly, with the closest match when there is one."""
        slugs = [self.slug(item) for item in self.items]
        close = difflib.get_close_matches(
            text.strip().lower(), list(self._by_name), n=1, cutoff=0.6
        )
        listed = _("use one of {slugs}").format(slugs=", ".join(slugs))
        if close:
            return (
                listed
                + " "
                + _('(did you mean "{slug}"?)').format(slug=self.slug(self._by_name[close[0]]))
            )
        return listed


class Cells:
    """The cells of one row, checked one column at a time; problems go to a shared list."""

    def __init__(
        self, table: Table, row: Row, problems: list[ImportProblem], zone: ZoneInfo
    ) -> None:
        self.table = table
        self.row = row
        self.line = row.line
        self.zone = zone
        self._problems = problems
        self.ok = True

    def has(self, column: str) -> bool:
        """Whether the file has this column (absent columns leave stored values alone)."""
        return column in self.table.columns

    def raw(self, column: str) -> str:
        """The cell's text, stripped; empty when blank or absent."""
        return self.row.cells.get(column, "")

    def problem(self, column: str | None, message: str, fix: str, value: str | None = None) -> None:
        """Record a problem with this row; with a column, the cell's value is shown too."""
        self.ok = False
        shown = self.raw(column) if value is None and column is not None else value
        self._problems.append(self.table.problem(self.line, message, fix, column, shown))

    def _given(self, column: str, required: bool) -> str:
        """The cell's text; a blank required cell is a problem."""
        value = self.raw(column)
        if not value and required:
            self.problem(
                column, _("a value is required"), _("fill in {column}").format(column=column)
            )
        return value

    def text(self, column: str, field: TextField, *, required: bool = False) -> str:
        """Free text checked by `text_input.clean` for `field`: the same characters and
        limits as chat and forms."""
        value = self._given(column, required)
        if not value:
            return ""
        try:
            return clean(value, field)
        except TextRefused as refused:
            what, fix = refused.describe(_)
            self.problem(column, what, fix)
            return value

    def ref(self, column: str, field: TextField = REF) -> str:
        """A reference such as TP-014: required, no spaces, stored in upper case."""
        value = self.text(column, field, required=True).upper()
        if value and not re.fullmatch(r"[A-Z0-9][A-Z0-9._/\-]*", value):
            self.problem(
                column,
                _("not a valid reference"),
                _("use letters, digits and hyphens only, e.g. TP-014"),
            )
        return value

    def link(self, column: str) -> str:
        """A web address to papers or a meeting, or blank."""
        value = self.text(column, LINK)
        if value and not is_web_link(value):
            self.problem(
                column,
                _("not a web address"),
                _("give the full address, starting https://, without spaces or | < >"),
            )
        return value

    def _plausible_year(self, column: str, year: int) -> bool:
        if EARLIEST_YEAR <= year <= LATEST_YEAR:
            return True
        self.problem(
            column,
            _("the year is out of range"),
            _("use a year from {first} to {last}").format(first=EARLIEST_YEAR, last=LATEST_YEAR),
        )
        return False

    def date(self, column: str, *, required: bool = False) -> date | None:
        """A calendar date written YYYY-MM-DD or, as in the UK, DD/MM/YYYY (also an Excel
        date serial number from a spreadsheet cell that lost its date format)."""
        value = self._given(column, required)
        if not value:
            return None
        parsed = calendar_date(value, spreadsheet=self.table.sheet is not None)
        if parsed is None:
            self.problem(
                column,
                _("not a date"),
                _("use YYYY-MM-DD (e.g. {example})").format(example=date_example(value)),
            )
            return None
        if not self._plausible_year(column, parsed.year):
            return None
        return parsed

    def moment(self, column: str, *, required: bool = False) -> datetime | None:
        """A date and time: local wall-clock time in the import's zone unless an offset is given.
        The date may be written as in the UK (03/12/2026 10:00)."""
        value = self._given(column, required)
        if not value:
            return None
        uk = _UK_MOMENT.match(value)
        if uk:
            day, month, year, rest = uk.groups()
            value = f"{year}-{int(month):02d}-{int(day):02d}{rest}"
        example = _(
            "use YYYY-MM-DD HH:MM in {zone} time, or add an offset (e.g. {example})"
        ).format(zone=self.zone.key, example="2026-12-03 10:00")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.problem(column, _("not a date and time"), example)
            return None
        if not _HAS_TIME.search(value):
            self.problem(column, _("a date without a time"), example)
            return None
        if not self._plausible_year(column, parsed.year):
            return None
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        aware, trouble = wall_clock(parsed, self.zone)
        if trouble == "gap":
            later = (parsed + timedelta(hours=1)).isoformat(sep=" ", timespec="minutes")
            self.problem(
                column,
                _("this time does not exist in {zone}: the clocks go forward that night").format(
                    zone=self.zone.key
                ),
                _("use the time after the change (e.g. {later}) or add an offset").format(
                    later=later
                ),
            )
        elif trouble == "overlap":
            self.problem(
                column,
                _("this time happens twice in {zone}: the clocks go back that night").format(
                    zone=self.zone.key
                ),
                _("add an offset: +01:00 for the first (summer time), +00:00 for the second"),
            )
        return aware.astimezone(UTC) if aware is not None else None

    def choice(
        self,
        column: str,
        enum: type[E],
        *,
        default: E | None = None,
        aliases: dict[str, E] | None = None,
    ) -> E | None:
        """One of an enum's values; spaces, underscores and case are forgiven."""
        value = self.raw(column)
        if not value:
            return default
        try:
            return enum(value)
        except ValueError:
            wanted = _normal(value).replace(" ", "-")
        for member in enum:
            if member.value == wanted:
                return member
        if aliases and wanted in aliases:
            return aliases[wanted]
        self.problem(
            column,
            _("not an allowed value"),
            _("use one of {values}").format(values=", ".join(member.value for member in enum)),
        )
        return default

    def paragraph(self, column: str) -> int | None:
        """A Schedule 12A paragraph (12 to 18 in Wales), or blank when the item is open."""
        value = self.raw(column)
        if not value:
            return None
        match = _PARAGRAPH.match(value)
        number = int(match.group(1)) if match else None
        if number not in EXEMPT_PARAGRAPHS:
            self.problem(
                column,
                _("not a Schedule 12A paragraph that applies in Wales"),
                _(
                    "use a number from {first} to {last}, or leave it blank if the item is open"
                ).format(first=EXEMPT_PARAGRAPHS.start, last=EXEMPT_PARAGRAPHS.stop - 1),
            )
            return None
        return number

    def one(self, column: str, lookup: Lookup[T], *, required: bool = True) -> T | None:
        """A partner or board named by slug, prefix or name."""
        value = self._given(column, required)
        if not value:
            return None
        found = lookup.find(value)
        if found is None:
            self.problem(column, _("unknown {what}").format(what=lookup.what), lookup.fix(value))
        return found

    def many(self, column: str, lookup: Lookup[T]) -> list[str]:
        """A `;`-separated list of partners, as slugs (duplicates dropped, order kept)."""
        value = self.raw(column)
        slugs: list[str] = []
        for part in (piece.strip() for piece in value.split(";")):
            if not part:
                continue
            found = lookup.find(part)
            if found is None:
                fix = (
                    _("separate partners with ; (semicolons)") if "," in part else lookup.fix(part)
                )
                self.problem(
                    column, _('unknown {what} "{name}"').format(what=lookup.what, name=part), fix
                )
            elif lookup.slug(found) not in slugs:
                slugs.append(lookup.slug(found))
        return slugs
