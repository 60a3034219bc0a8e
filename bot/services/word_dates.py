"""Dates and periods written in words, in English and Welsh, read against a given "today".

`read_period(words, i, today)` reads one date or period starting at `words[i]` ("1 October",
"1af Hydref 2026", "November", "ym mis Tachwedd", "last month", "y mis diwethaf", "this year",
"eleni", "llynedd", "2026", "2026-11-19", "19/11/2026") and gives its first and last day and how
many words it used; "next two weeks" / "y pythefnos nesaf" come back as a number of days ahead.
Words are the reader's tokens: lower case, accents folded. Pure functions; nothing raises.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from bot.fields import numeric_date
from bot.services.welsh_words import radicals

MAX_DAYS = 3_660

_EN_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_EN_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_EN_MONTHS.update({"sept": 9})
_CY_MONTHS = {
    "ionawr": 1, "chwefror": 2, "mawrth": 3, "ebrill": 4, "mai": 5, "mehefin": 6,
    "gorffennaf": 7, "gorffenaf": 7, "awst": 8, "medi": 9, "hydref": 10, "tachwedd": 11,
    "rhagfyr": 12,
}  # fmt: skip
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "couple": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "un": 1, "dau": 2, "dwy": 2, "tri": 3, "tair": 3, "pedwar": 4, "pedair": 4, "pump": 5,
    "pum": 5, "chwech": 6, "chwe": 6, "saith": 7, "wyth": 8, "naw": 9, "deg": 10,
}  # fmt: skip
_UNITS = {
    "day": 1, "days": 1, "diwrnod": 1, "diwrnodau": 1, "dydd": 1,
    "week": 7, "weeks": 7, "wk": 7, "wks": 7, "wythnos": 7, "wythnosau": 7,
    "fortnight": 14, "fortnights": 14, "pythefnos": 14,
    "month": 30, "months": 30, "mis": 30, "misoedd": 30,
    "year": 365, "years": 365, "blwyddyn": 365, "blynedd": 365,
}  # fmt: skip
_AHEAD = frozenset({"next", "coming", "upcoming", "following", "nesaf", "nesa"})
_BACK = frozenset({"last", "past", "previous", "diwethaf", "dwethaf", "diwetha", "dwetha"})
_THIS = frozenset({"this", "current", "hwn", "hon", "yma", "presennol"})
_ARTICLES = frozenset({"the", "y", "yr", "'r"})
_YEAR = re.compile(r"^(19|20)\d{2}$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_DAY = re.compile(r"^(\d{1,2})(st|nd|rd|th|af|il|ydd|fed|ed|eg|ain)?$")
_NUMBER = re.compile(r"^\d{1,4}$")


@dataclass(frozen=True)
class Period:
    """A date or period read from words: its first and last day, and the words used.

    `ahead` is set for "the next N days" (a window from today), which lists of actions read as
    "due within N days" rather than as dates.
    """

    first: date
    last: date
    used: int
    ahead: int | None = None
    bad: bool = False
    """The words are date-shaped but name no real date (2026-02-31)."""


def _in(word: str, group: frozenset[str]) -> bool:
    return bool(radicals(word) & group) if word else False


def _lookup(word: str, table: dict[str, int]) -> int | None:
    for form in radicals(word):
        if form in table:
            return table[form]
    return None


def month_of(word: str) -> int | None:
    """The month a word names, in English or Welsh (mutated or not): "fawrth" -> 3."""
    if word in _EN_MONTHS:
        return _EN_MONTHS[word]
    return _lookup(word, _CY_MONTHS)


MONTH_WORDS = frozenset(w for w in (*_EN_MONTHS, *_CY_MONTHS) if len(w) > 3)
"""Month names in both languages (for reading typos such as "novmber")."""


def unit_days(word: str) -> int | None:
    """Days in a unit word ("weeks" 7, "pythefnos" 14), or None."""
    return _unit(word)


def _unit(word: str) -> int | None:
    if word in _UNITS:
        return _UNITS[word]
    return _lookup(word, _UNITS)


def _count(word: str) -> int | None:
    if _NUMBER.match(word):
        return int(word)
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    return _lookup(word, _NUMBER_WORDS)


def _month_span(year: int, month: int) -> tuple[date, date] | None:
    if not (1 <= month <= 12 and 1 <= year <= 9999):
        return None
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _year_span(year: int) -> tuple[date, date] | None:
    return (date(year, 1, 1), date(year, 12, 31)) if 1 <= year <= 9999 else None


def _shift_month(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _at(words: list[str], i: int) -> str:
    return words[i] if 0 <= i < len(words) else ""


def _day_month(words: list[str], i: int, today: date) -> Period | None:
    """ "1 October [2026]", "1af Hydref", "October 1[st] [2026]", "Hydref 2026", "November"."""
    word = words[i]
    day_match = _DAY.match(word)
    if day_match:
        j = i + 1
        if _at(words, j) == "of":
            j += 1
        month = month_of(_at(words, j))
        if month is None:
            return None
        day = int(day_match.group(1))
        j += 1
    else:
        month = month_of(word)
        if month is None:
            return None
        j = i + 1
        next_day = _DAY.match(_at(words, j))
        day = 0
        if next_day and not _YEAR.match(_at(words, j)):
            day = int(next_day.group(1))
            j += 1
    year = today.year
    if _YEAR.match(_at(words, j)):
        year = int(_at(words, j))
        j += 1
    if day:
        try:
            when = date(year, month, day)
        except ValueError:
            return Period(today, today, j - i, bad=True)
        return Period(when, when, j - i)
    span = _month_span(year, month)
    return Period(*span, j - i) if span else None


def _direction(word: str) -> int | None:
    if _in(word, _BACK):
        return -1
    if _in(word, _AHEAD):
        return 1
    if _in(word, _THIS):
        return 0
    return None


_WELSH_DIRECTIONS = frozenset({"hwn", "hon", "yma", "nesaf", "nesa", "diwethaf", "dwethaf",
                               "diwetha", "dwetha"})  # fmt: skip


def _relative(words: list[str], i: int, today: date) -> Period | None:
    """ "last month", "this year", "next week", "y mis diwethaf", "eleni", "llynedd", "today"."""
    word = words[i]
    if word in ("today", "heddiw"):
        return Period(today, today, 1)
    if word in ("yesterday", "ddoe"):
        return Period(today - timedelta(days=1), today - timedelta(days=1), 1)
    if word in ("tomorrow", "yfory", "fory"):
        return Period(today + timedelta(days=1), today + timedelta(days=1), 1)
    if word == "eleni":
        span = _year_span(today.year)
        return Period(*span, 1) if span else None
    j = i + 1 if word in ("y", "yr") else i
    if _at(words, j) == "llynedd":
        span = _year_span(today.year - 1)
        return Period(*span, j - i + 1) if span else None
    direction = _direction(word) if word not in _WELSH_DIRECTIONS else None
    if direction is not None:
        # English: the direction, then the unit ("last month", "next year", "this week").
        unit, used = _at(words, i + 1), 2
    else:
        # Welsh: [y/yr] unit, then the direction ("y mis diwethaf", "yr wythnos hon").
        j = i + 1 if word in _ARTICLES else i
        unit, used = _at(words, j), j - i + 2
        direction = _direction(_at(words, j + 1))
        if direction is None:
            return None
    size = _unit(unit) if unit else None
    if size == 30:
        first = _shift_month(today.replace(day=1), direction)
        span = _month_span(first.year, first.month)
        return Period(*span, used) if span else None
    if size == 365:
        span = _year_span(today.year + direction)
        return Period(*span, used) if span else None
    if size == 7:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=direction)
        return Period(monday, monday + timedelta(days=6), used)
    if size in (1, 14) and direction:
        return _window(today, size * direction, used)
    return None


def _window(today: date, days: int, used: int) -> Period:
    days = max(-MAX_DAYS, min(days, MAX_DAYS))
    if days >= 0:
        return Period(today, today + timedelta(days=days), used, ahead=days)
    return Period(today + timedelta(days=days), today, used)


def _counted(words: list[str], i: int, today: date) -> Period | None:
    """ "next two weeks", "the past 30 days", "coming fortnight", "y pythefnos nesaf",
    "y 7 diwrnod nesaf", "o fewn 10 diwrnod", "within 5 days"."""
    j = i
    if _at(words, j) in ("in", "over", "during", "for", "dros", "yn"):
        j += 1
    if _at(words, j) == "ystod":
        j += 1
    if _at(words, j) in _ARTICLES:
        j += 1
    first = _at(words, j)
    direction = _direction(first) if first not in _WELSH_DIRECTIONS else None
    if direction:
        # English order: direction [count] unit.
        count = _count(_at(words, j + 1))
        k = j + 2 if count is not None else j + 1
        size = _unit(_at(words, k))
        if size is None or (count is None and size != 14):
            return None  # "next week", "last month": calendar periods (see _relative)
        return _window(today, direction * (count or 1) * size, k - i + 1)
    if first == "within" or (first == "o" and _at(words, j + 1) == "fewn"):
        # "within N days", "o fewn N diwrnod", "o fewn y pythefnos nesaf".
        k = j + (1 if first == "within" else 2)
        if _at(words, k) in _ARTICLES:
            k += 1
        if _direction(_at(words, k)) == 1:
            k += 1
        count = _count(_at(words, k))
        if count is not None:
            k += 1
        size = _unit(_at(words, k))
        if size is None:
            return None
        k += 1
        if _direction(_at(words, k)) == 1:
            k += 1
        return _window(today, (count or 1) * size, k - i)
    # Welsh order: [y] [count] unit direction.
    count = _count(first)
    k = j + 1 if count is not None and _unit(first) is None else j
    size = _unit(_at(words, k))
    direction = _direction(_at(words, k + 1))
    if size is None or not direction:
        return None
    if count is None and size != 14:
        return None  # "yr wythnos nesaf", "y mis nesaf": calendar periods (see _relative)
    return _window(today, direction * (count or 1) * size, k - i + 2)


_START = frozenset({"start", "beginning", "dechrau", "cychwyn"})
_END = frozenset({"end", "diwedd"})


def _edge_of(words: list[str], i: int, today: date) -> Period | None:
    """ "the start of October", "end of the year", "diwedd y flwyddyn", "dechrau mis Medi":
    the first or last day of a period (the current month or year when only the unit is named)."""
    word = words[i]
    if not (_in(word, _START) or _in(word, _END)):
        return None
    j = i + 1
    while _at(words, j) in ("of", "the", "this", "y", "yr", "'r", "o"):
        j += 1
    size = _unit(_at(words, j))
    inner: Period | None
    following = _at(words, j + 1)
    if size in (30, 365) and _direction(following) is None and month_of(following) is None:
        first = today.replace(day=1) if size == 30 else date(today.year, 1, 1)
        last = (
            date(today.year, 12, 31)
            if size == 365
            else date(today.year, today.month, calendar.monthrange(today.year, today.month)[1])
        )
        inner = Period(first, last, 1)
    else:
        inner = read_period(words, j, today) if j < len(words) else None
    if inner is None or inner.bad:
        return None
    day = inner.first if _in(word, _START) else inner.last
    return Period(day, day, j - i + inner.used, ahead=None)


def read_period(words: list[str], i: int, today: date) -> Period | None:
    """The date or period that starts at `words[i]`, or None."""
    word = words[i]
    edge = _edge_of(words, i, today)
    if edge is not None:
        return edge
    when = numeric_date(word)
    if when is False:
        return Period(today, today, 1, bad=True)
    if isinstance(when, date):
        return Period(when, when, 1)
    if _YEAR.match(word):
        span = _year_span(int(word))
        return Period(*span, 1) if span else None
    match = _YEAR_MONTH.match(word)
    if match:
        span = _month_span(int(match.group(1)), int(match.group(2)))
        return Period(*span, 1) if span else Period(today, today, 1, bad=True)
    counted = _counted(words, i, today)
    if counted is not None:
        return counted
    relative = _relative(words, i, today)
    if relative is not None:
        return relative
    if word in ("mis", "fis") and month_of(_at(words, i + 1)) is not None:
        inner = _day_month(words, i + 1, today)
        return Period(inner.first, inner.last, inner.used + 1, bad=inner.bad) if inner else None
    return _day_month(words, i, today)
