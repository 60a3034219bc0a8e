"""Checking one row's cells: each check returns the typed value or records a precise problem."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo

from bot.fields import FieldRefused, Lookup, check_year, parse_date, parse_paragraph, parse_ref
from bot.i18n import _
from bot.imports.problems import ImportProblem
from bot.imports.readers import Row, Table
from bot.text_input import LINK, REF, TextField, TextRefused, clean, is_web_link

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)

_UK_MOMENT = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})([ T]\d.*)$")
_HAS_TIME = re.compile(r"\d[Tt ]\d")


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


def at_local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """A wall-clock time on a day in `zone` (used for times that never fall in a gap)."""
    return datetime.combine(day, clock, tzinfo=zone)


def _normal(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").replace("-", " ").split())


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

    def refused(self, column: str, refusal: FieldRefused) -> None:
        """Record a field parser's refusal of this row's cell."""
        what, fix = refusal.describe(_)
        self.problem(column, what, fix)

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
        """A reference such as TP-014 (`fields.parse_ref`): required, stored in upper case."""
        value = self.text(column, field, required=True)
        if not value:
            return value
        try:
            return parse_ref(value, column)
        except FieldRefused as refusal:
            self.refused(column, refusal)
            return value.upper()

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
        try:
            check_year(year, self.raw(column), column)
        except FieldRefused as refusal:
            self.refused(column, refusal)
            return False
        return True

    def date(self, column: str, *, required: bool = False) -> date | None:
        """A calendar date as `fields.parse_date` reads it (also an Excel date serial number
        from a spreadsheet cell that lost its date format)."""
        value = self._given(column, required)
        if not value:
            return None
        try:
            return parse_date(value, column, spreadsheet=self.table.sheet is not None)
        except FieldRefused as refusal:
            self.refused(column, refusal)
            return None

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
        """A Schedule 12A paragraph (`fields.parse_paragraph`), or blank when the item is open."""
        try:
            return parse_paragraph(self.raw(column), column)
        except FieldRefused as refusal:
            self.refused(column, refusal)
            return None

    def one(self, column: str, lookup: Lookup[T], *, required: bool = True) -> T | None:
        """A partner or board named by slug, prefix or name."""
        value = self._given(column, required)
        if not value:
            return None
        try:
            return lookup.one(value, column)
        except FieldRefused as refusal:
            self.refused(column, refusal)
            return None

    def many(self, column: str, lookup: Lookup[T]) -> list[str]:
        """A `;`-separated list of partners, as slugs (duplicates dropped, order kept)."""
        slugs, refused = lookup.many(self.raw(column), column, separator=";")
        for refusal in refused:
            self.refused(column, refusal)
        return slugs
