"""One parser per kind of value people type: dates, times of day, Schedule 12A paragraphs,
references, partners and boards.

Chat forms, chat words, imports and question windows all call these, so a value one of them
accepts the others accept too, and a refusal reads the same everywhere. A parser returns the
typed value or raises `FieldRefused`, which carries the field's name and a translatable
(what is wrong, how to fix it) pair; each caller turns it into its own error shape (a
`UserError` in chat, a problem with line and column in an import). The module imports only
leaf modules, so services, handlers and imports may all use it.
"""

from __future__ import annotations

import calendar
import difflib
import re
from collections.abc import Callable, Iterable
from datetime import date, time, timedelta
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import EXEMPT_PARAGRAPHS
from bot.i18n import N_
from bot.models import Board, Partner

T = TypeVar("T")
Gettext = Callable[[str], str]

EARLIEST_YEAR, LATEST_YEAR = 2000, 2099
"""Dates outside these years are typing slips in a register of this collaboration."""
EXCEL_EPOCH = date(1899, 12, 30)
"""Day 0 of Excel's date serial numbers (counting Excel's 1900 leap-year quirk)."""
DATE_EXAMPLE = date(2026, 2, 28)

_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_UK_DATE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})$")
_EXCEL_SERIAL = re.compile(r"^[1-9]\d{4}$")
_CLOCK = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*(am|pm|yb|yh)?$", re.IGNORECASE)
_PARAGRAPH = re.compile(r"^(?:para(?:graph|graff)?\.?\s*)?(\d{1,3})$", re.IGNORECASE)
_REF = re.compile(r"[A-Z0-9][A-Z0-9._/\-]*")


class FieldRefused(ValueError):
    """A value a field's parser will not accept: which field, the value, what is wrong and
    how to fix it (message ids, translated when described)."""

    def __init__(
        self, field: str, value: str, said: str, what: str, *fix: str, **params: Any
    ) -> None:
        self.field = field
        self.value = value
        self.said = said
        """The refusal as a sentence's start naming the value: '“{value}” is not a date'."""
        self.what = what
        """The refusal without the value (an import shows the value beside it): 'not a date'."""
        self.fix = fix
        """How to fix it: message ids shown one after the other."""
        self.params = params
        super().__init__(self.sentence(lambda message: message))

    def describe(self, gettext: Gettext) -> tuple[str, str]:
        """(what is wrong, how to fix it), translated by `gettext`."""
        what = gettext(self.what).format(value=self.value, **self.params)
        return what, " ".join(gettext(part).format(**self.params) for part in self.fix)

    def sentence(self, gettext: Gettext) -> str:
        """One sentence naming the value and how to fix it, as chat shows it:
        '“2026-02-31” is not a date; use YYYY-MM-DD (e.g. 2026-02-28).'"""
        said = gettext(self.said).format(value=self.value, **self.params)
        return f"{said}; {self.describe(gettext)[1]}."


# -- dates and times ------------------------------------------------------------------------
def _date_parts(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a date-shaped text, not yet checked to be a real date."""
    iso, uk = _ISO_DATE.match(text), _UK_DATE.match(text)
    if iso:
        year, month, day = (int(part) for part in iso.groups())
    elif uk:
        day, month, year = (int(part) for part in uk.groups())
        year += 2000 if year < 100 else 0
    else:
        return None
    return year, month, day


def numeric_date(value: str, *, spreadsheet: bool = False) -> date | bool | None:
    """A date written in digits: YYYY-MM-DD, or as in the UK DD/MM/YYYY (also with dots or
    hyphens, and a two-digit year meaning 20YY); in a spreadsheet also an Excel date serial
    number (a date cell that lost its format). False when date-shaped but impossible
    (31/02/2026), None when not date-shaped at all."""
    text = value.strip()
    parts = _date_parts(text)
    if parts is None:
        if spreadsheet and _EXCEL_SERIAL.match(text):
            return EXCEL_EPOCH + timedelta(days=int(text))
        return None
    try:
        return date(*parts)
    except ValueError:
        return False


def date_example(value: str) -> date:
    """A valid date close to what was typed: '31/02/2026' -> 2026-02-28."""
    parts = _date_parts(value.strip())
    if parts is None:
        return DATE_EXAMPLE
    year, month, day = parts
    month = min(max(month, 1), 12)
    year = min(max(year, EARLIEST_YEAR), LATEST_YEAR)
    return date(year, month, min(max(day, 1), calendar.monthrange(year, month)[1]))


def not_a_date(field: str, value: str, example: date | None = None) -> FieldRefused:
    """The one refusal of a value that is not a date."""
    shown = example or date_example(value)
    return FieldRefused(
        field,
        value,
        N_("“{value}” is not a date"),
        N_("not a date"),
        N_("use YYYY-MM-DD (e.g. {example})"),
        example=shown.isoformat(),
    )


def parse_date(
    value: str, field: str, *, spreadsheet: bool = False, example: date | None = None
) -> date:
    """A calendar date as `numeric_date` reads it, in the years 2000 to 2099; raises
    `FieldRefused` (with `example`, else a valid date close to the value, as the fix)."""
    found = numeric_date(value, spreadsheet=spreadsheet)
    if not isinstance(found, date):
        raise not_a_date(field, value.strip(), example)
    check_year(found.year, value, field)
    return found


def check_year(year: int, value: str, field: str) -> None:
    """Refuse a year outside 2000 to 2099 (a typing slip in this collaboration's register)."""
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise FieldRefused(
            field,
            value.strip(),
            N_("the year of “{value}” is out of range"),
            N_("the year is out of range"),
            N_("use a year from {first} to {last}"),
            first=EARLIEST_YEAR,
            last=LATEST_YEAR,
        )


def parse_clock(value: str, field: str) -> time:
    """A time of day: 17:00, 17.30, 5pm, 9am, 5yh (Welsh pm), 9yb; raises `FieldRefused`."""
    match = _CLOCK.match(value.strip())
    hour = int(match.group(1)) if match else -1
    minute = int(match.group(2) or 0) if match else -1
    period = (match.group(3) or "").lower() if match else ""
    if period and not 1 <= hour <= 12:
        hour = -1
    elif period in ("pm", "yh") and hour < 12:
        hour += 12
    elif period in ("am", "yb") and hour == 12:
        hour = 0
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise FieldRefused(
            field,
            value.strip(),
            N_("“{value}” is not a time of day"),
            N_("not a time of day"),
            N_("use HH:MM (e.g. {example})"),
            example="17:00",
        )
    return time(hour, minute)


# -- Schedule 12A and references ------------------------------------------------------------
def parse_paragraph(value: str, field: str = "exempt_paragraph") -> int | None:
    """A Schedule 12A paragraph that applies in Wales (12 to 18), written `14`, `para 14` or
    `paragraph 14` (`paragraff 14`); None when blank (the item is open)."""
    text = value.strip()
    if not text:
        return None
    match = _PARAGRAPH.match(text)
    number = int(match.group(1)) if match else None
    if number is None or number not in EXEMPT_PARAGRAPHS:
        raise FieldRefused(
            field,
            text,
            N_("“{value}” is not a Schedule 12A paragraph that applies in Wales"),
            N_("not a Schedule 12A paragraph that applies in Wales"),
            N_("use a number from {first} to {last}, or leave it blank if the item is open"),
            first=EXEMPT_PARAGRAPHS.start,
            last=EXEMPT_PARAGRAPHS.stop - 1,
        )
    return number


def parse_ref(value: str, field: str = "ref") -> str:
    """An item's reference such as TP-014, in upper case: letters, digits, `-._/`, no spaces."""
    text = value.strip().upper()
    if not _REF.fullmatch(text):
        raise FieldRefused(
            field,
            value.strip(),
            N_("“{value}” is not a valid reference"),
            N_("not a valid reference"),
            N_("use letters, digits and hyphens only, e.g. TP-014"),
        )
    return text


# -- partners and boards --------------------------------------------------------------------
_UNKNOWN: dict[str, tuple[str, str, str]] = {
    "partner": (
        N_("“{value}” is not a partner"),
        N_("unknown partner"),
        N_('unknown partner "{value}"'),
    ),
    "board": (N_("“{value}” is not a board"), N_("unknown board"), N_('unknown board "{value}"')),
}
_SEPARATE = {
    ";": N_("separate partners with ; (semicolons)"),
    ",": N_("separate partners with commas"),
}


class Lookup(Generic[T]):
    """Partners or boards found by slug, ref prefix, or English or Welsh name (any case)."""

    def __init__(
        self,
        kind: Literal["partner", "board"],
        items: Iterable[T],
        slug: Callable[[T], str],
        names: Callable[[T], Iterable[str]],
    ) -> None:
        self.kind = kind
        self.slug = slug
        self.items = list(items)
        self._by_name: dict[str, T] = {}
        for item in self.items:
            for name in (slug(item), *names(item)):
                if name:
                    self._by_name.setdefault(name.strip().lower(), item)

    def find(self, text: str) -> T | None:
        """The item `text` names, or None."""
        return self._by_name.get(text.strip().lower())

    def refusal(self, field: str, text: str, *, in_list: bool = False) -> FieldRefused:
        """Why `text` names nothing, with every slug and the closest match as the fix."""
        said, what, listed = _UNKNOWN[self.kind]
        slugs = ", ".join(self.slug(item) for item in self.items)
        close = difflib.get_close_matches(
            text.strip().lower(), list(self._by_name), n=1, cutoff=0.6
        )
        fix = [N_("use one of {slugs}")]
        if close:
            fix.append(N_('(did you mean "{slug}"?)'))
        return FieldRefused(
            field,
            text.strip(),
            said,
            listed if in_list else what,
            *fix,
            slugs=slugs,
            slug=self.slug(self._by_name[close[0]]) if close else "",
        )

    def one(self, text: str, field: str) -> T:
        """The item `text` names; raises `FieldRefused` naming the choices."""
        found = self.find(text)
        if found is None:
            raise self.refusal(field, text)
        return found

    def many(
        self, text: str, field: str, *, separator: str
    ) -> tuple[list[str], list[FieldRefused]]:
        """The slugs of a list of names split by `separator` (duplicates dropped, order
        kept), and a refusal for each name that names nothing. Imports separate with `;` (a
        comma is the file's own separator), forms with `,`."""
        slugs: list[str] = []
        refused: list[FieldRefused] = []
        for part in (piece.strip() for piece in text.split(separator)):
            if not part:
                continue
            found = self.find(part)
            if found is None:
                refusal = self.refusal(field, part, in_list=True)
                if any(other in part for other in _SEPARATE if other != separator):
                    refusal.fix = (_SEPARATE[separator],)
                refused.append(refusal)
            elif self.slug(found) not in slugs:
                slugs.append(self.slug(found))
        return slugs, refused


def partner_lookup(session: Session) -> Lookup[Partner]:
    """Every partner, found by slug or English or Welsh name (one query)."""
    partners = session.scalars(select(Partner).order_by(Partner.id)).all()
    return Lookup("partner", partners, lambda p: p.slug, lambda p: (p.name, p.name_cy))


def board_lookup(session: Session) -> Lookup[Board]:
    """Every board, found by slug, ref prefix or English or Welsh name (one query)."""
    boards = session.scalars(select(Board).order_by(Board.id)).all()
    return Lookup("board", boards, lambda b: b.slug, lambda b: (b.prefix, b.name, b.name_cy))
