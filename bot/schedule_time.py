"""Schedule maths in wall-clock time: cron expressions, DST, bank holidays, "every monday 9am".

Pure functions: no database and no I/O. A scheduled run is keyed by its local date and time
(`Fire.key`), so each wall-clock occurrence runs exactly once whatever the clocks do:
- a local time that does not exist (01:30 on 29 March 2026, clocks go forward 01:00 -> 02:00)
  fires once, shifted forward by the gap (02:30 BST) for repeating schedules, and is refused
  with a friendly error for one-off times typed by a person;
- a local time that happens twice (01:30 on 25 October 2026) fires once, at its first occurrence.
England-and-Wales bank holidays come from the `holidays` package.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays

from bot.i18n import N_, Translator, default_language
from bot.text_input import whole_number

LONDON = ZoneInfo("Europe/London")
SEARCH_DAYS = 5 * 366
"""How far ahead or back a schedule is searched before it is declared never to fire."""


class ScheduleError(ValueError):
    """A schedule or time a person gave is wrong; `translate` says what and how to fix it."""

    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(self.translate(None))

    def translate(self, t: Translator | None) -> str:
        """The message in `t`'s language (the CLI's default language when None)."""
        t = t or Translator(default_language())
        values: dict[str, Any] = {}
        for name, value in self.params.items():
            if isinstance(value, datetime):
                values[name] = t.datetime(value)
            elif isinstance(value, date):
                values[name] = t.date(value)
            else:
                values[name] = value
        # Messages may name a command; it is written as the reader's platform starts one.
        values.setdefault("cmd", t.cmd)
        return t._(self.message).format(**values)


# -- cron -----------------------------------------------------------------------------------
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_ALIASES = {
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS = (
    # name shown in errors, low, high, names
    (N_("minute"), 0, 59, None),
    (N_("hour"), 0, 23, None),
    (N_("day of month"), 1, 31, None),
    (N_("month"), 1, 12, _MONTHS),
    (N_("day of week"), 0, 7, _DAYS),
)


@dataclass(frozen=True)
class Cron:
    """A parsed five-field cron expression (minute hour day-of-month month day-of-week)."""

    source: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    """0 = Sunday ... 6 = Saturday, as in crontab."""
    days_restricted: bool
    weekdays_restricted: bool

    def matches_date(self, day: date) -> bool:
        """Whether the schedule runs on this local date (crontab's day-of-month OR day-of-week)."""
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    @property
    def times(self) -> list[time]:
        """The local times of day it runs, earliest first."""
        return [time(h, m) for h in sorted(self.hours) for m in sorted(self.minutes)]


def _value(
    token: str, field: str, low: int, high: int, names: list[str] | None, source: str
) -> int:
    lowered = token.lower()
    if names is not None and lowered[:3] in names and lowered.isalpha():
        index = names.index(lowered[:3])
        return index + 1 if names is _MONTHS else index
    number = whole_number(token)
    if number is None:
        raise ScheduleError(
            N_("Schedule “{cron}”: “{value}” is not a valid {field}."),
            cron=source,
            value=token,
            field=field,
        )
    if not low <= number <= high:
        raise ScheduleError(
            N_("Schedule “{cron}”: {field} {value} is out of range {low}–{high}."),
            cron=source,
            field=field,
            value=number,
            low=low,
            high=high,
        )
    return number


def _field(text: str, index: int, source: str) -> frozenset[int]:
    field, low, high, names = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step_number = whole_number(step_text)
            if not step_number:
                raise ScheduleError(
                    N_(
                        "Schedule “{cron}”: step “{value}” in the {field} must be a number above 0."
                    ),
                    cron=source,
                    value=step_text,
                    field=field,
                )
            step = step_number
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start = _value(first, field, low, high, names, source)
            end = _value(last, field, low, high, names, source)
            if end < start:
                raise ScheduleError(
                    N_("Schedule “{cron}”: range “{value}” in the {field} runs backwards."),
                    cron=source,
                    value=part,
                    field=field,
                )
        else:
            start = _value(part, field, low, high, names, source)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_cron(expression: str) -> Cron:
    """Parse a crontab expression (`0 9 * * mon`, `30 8 1 * *`, `@weekly`); ScheduleError if bad."""
    source = expression.strip()
    text = _ALIASES.get(source.lower(), source)
    parts = text.split()
    if len(parts) != 5:
        raise ScheduleError(
            N_(
                "Schedule “{cron}” needs five fields: minute hour day-of-month month day-of-week "
                "(for example “0 9 * * mon” for 9am every Monday)."
            ),
            cron=source,
        )
    fields = [_field(part, i, source) for i, part in enumerate(parts)]
    return Cron(
        source=source,
        minutes=fields[0],
        hours=fields[1],
        days=fields[2],
        months=fields[3],
        weekdays=fields[4],
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )


# -- wall-clock time -------------------------------------------------------------------------
def to_utc(local: datetime, tz: ZoneInfo = LONDON) -> datetime:
    """A naive local wall-clock time as an aware UTC instant.

    A time that happens twice gives its first occurrence; a time in a spring-forward gap is
    shifted forward by the gap (01:30 on 29 March 2026 gives 02:30 BST).
    """
    return local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def exists(local: datetime, tz: ZoneInfo = LONDON) -> bool:
    """False for a local time skipped when the clocks go forward."""
    return to_utc(local, tz).astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None)


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def is_bank_holiday(day: date) -> bool:
    """Whether `day` is a bank holiday in England and Wales."""
    return day in _bank_holidays(day.year)


@dataclass(frozen=True)
class Fire:
    """One scheduled run: its local wall-clock time (the key) and the instant it happens."""

    local: datetime
    at: datetime

    @property
    def key(self) -> str:
        """`2026-11-23T09:00`: what idempotency keys use for this run."""
        return self.local.strftime("%Y-%m-%dT%H:%M")


@dataclass(frozen=True)
class Schedule:
    """A cron in a wall-clock zone, optionally skipping England-and-Wales bank holidays."""

    cron: Cron
    tz: ZoneInfo = LONDON
    skip_bank_holidays: bool = False

    @classmethod
    def parse(
        cls, expression: str, tz: str | ZoneInfo = LONDON, skip_bank_holidays: bool = False
    ) -> Schedule:
        """A schedule from a cron expression and a zone name; ScheduleError if either is bad."""
        zone = tz if isinstance(tz, ZoneInfo) else _zone(tz)
        return cls(parse_cron(expression), zone, skip_bank_holidays)

    def runs_on(self, day: date) -> bool:
        """Whether the schedule runs on this local date."""
        return self.cron.matches_date(day) and not (
            self.skip_bank_holidays and is_bank_holiday(day)
        )

    def _fires_on(self, day: date) -> Iterator[Fire]:
        if self.runs_on(day):
            for moment in self.cron.times:
                local = datetime.combine(day, moment)
                yield Fire(local, to_utc(local, self.tz))

    def between(self, start: datetime, end: datetime) -> Iterator[Fire]:
        """Runs with `start < at <= end`, in order (both instants aware)."""
        day = start.astimezone(self.tz).date() - timedelta(days=1)
        last = end.astimezone(self.tz).date() + timedelta(days=1)
        while day <= last:
            for fire in self._fires_on(day):
                if start < fire.at <= end:
                    yield fire
            day += timedelta(days=1)

    def next_after(self, instant: datetime, search_days: int = SEARCH_DAYS) -> Fire | None:
        """The first run strictly after `instant`, or None if none within `search_days`."""
        day = instant.astimezone(self.tz).date() - timedelta(days=1)
        for _ in range(search_days + 2):
            for fire in self._fires_on(day):
                if fire.at > instant:
                    return fire
            day += timedelta(days=1)
        return None

    def latest_at_or_before(self, instant: datetime, search_days: int = SEARCH_DAYS) -> Fire | None:
        """The last run at or before `instant`, or None if none within `search_days`."""
        day = instant.astimezone(self.tz).date() + timedelta(days=1)
        for _ in range(search_days + 2):
            for fire in reversed(list(self._fires_on(day))):
                if fire.at <= instant:
                    return fire
            day -= timedelta(days=1)
        return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise ScheduleError(
            N_("Unknown time zone “{zone}”; use a name such as Europe/London."), zone=name
        ) from None


# -- what people type ------------------------------------------------------------------------
_DAY_WORDS = {
    **{
        name: i
        for i, name in enumerate(
            ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
        )
    },
    **{name: i for i, name in enumerate(_DAYS)},
    # Welsh: dydd Sul, dydd Llun, ...
    **{
        name: i
        for i, name in enumerate(["sul", "llun", "mawrth", "mercher", "iau", "gwener", "sadwrn"])
    },
}
_TIME = re.compile(
    r"^(?P<hour>\d{1,2})(?:[:.](?P<minute>\d{2}))?\s*(?P<period>am|pm|yb|yh|a\.m\.|p\.m\.)?$"
)
_DATE_ISO = re.compile(r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})$")
_DATE_UK = re.compile(r"^(?P<d>\d{1,2})/(?P<m>\d{1,2})/(?P<y>\d{4})$")


_BANK_HOLIDAYS = (
    r"(?:the\s+)?bank[\s-]+holidays?|g?w[yŷ]liau(?:'r|\s+y)?\s+banc|g?[wŵ]yl(?:\s+y)?\s+banc"
)
_INCLUDING = re.compile(
    rf"(?<!\S)(?:including|include|incl\.?|also\s+on|gan\s+gynnwys|yn\s+cynnwys)\s+"
    rf"(?:{_BANK_HOLIDAYS})(?!\S)",
    re.IGNORECASE,
)
_SKIPPING = re.compile(
    rf"(?<!\S)(?:skipping|skip|except(?:\s+for)?|excluding|but\s+not|not|"
    rf"ac\s+eithrio|heblaw(?:\s+am)?|heb|gan\s+hepgor|ond\s+nid)\s+(?:{_BANK_HOLIDAYS})(?!\S)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class When:
    """A parsed reminder time: either a repeating `cron` or a one-off `run_at` (UTC)."""

    cron: str | None = None
    run_at: datetime | None = None
    skip_bank_holidays: bool | None = None
    """What the words said about bank holidays ("including bank holidays": False), if anything."""


def bank_holiday_choice(text: str) -> tuple[str, bool | None]:
    """`text` without its words about bank holidays, and what they said: True for "skipping
    bank holidays" (Welsh "ac eithrio gwyliau banc"), False for "including bank holidays"
    ("gan gynnwys gwyliau banc"), None when they are not mentioned."""
    found: bool | None = None
    for pattern, skip in ((_INCLUDING, False), (_SKIPPING, True)):
        text, count = pattern.subn(" ", text)
        if count:
            if found is not None and found != skip:
                raise ScheduleError(
                    N_(
                        "Say either “including bank holidays” or “skipping bank holidays”, "
                        "not both."
                    )
                )
            found = skip
    # "every monday 9am, including bank holidays": the comma went with the words.
    return " ".join(text.split()).strip(" ,"), found


def parse_clock(text: str) -> time:
    """`9am`, `9:30am`, `09:00`, `17.30`, `5yh` as a time of day; ScheduleError if not a time."""
    match = _TIME.match(text.strip().lower())
    if not match:
        raise ScheduleError(
            N_("“{value}” is not a time; write it like 9am, 9:30am or 17:30."), value=text.strip()
        )
    hour = int(match["hour"])
    minute = int(match["minute"] or 0)
    period = (match["period"] or "").replace(".", "")
    if period:
        if not 1 <= hour <= 12:
            raise ScheduleError(
                N_("“{value}” is not a time: with am or pm the hour runs from 1 to 12."),
                value=text.strip(),
            )
        hour = hour % 12 + (12 if period in ("pm", "yh") else 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(
            N_("“{value}” is not a time; hours run 0–23 and minutes 0–59."), value=text.strip()
        )
    return time(hour, minute)


def parse_day(text: str) -> date:
    """`2026-12-01` or `01/12/2026` as a date; ScheduleError saying how to write it if not."""
    value = text.strip()
    match = _DATE_ISO.match(value) or _DATE_UK.match(value)
    if match:
        try:
            return date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            pass
    raise ScheduleError(
        N_("“{value}” is not a date; use YYYY-MM-DD (for example 2026-12-01)."), value=value
    )


def one_off(day: date, moment: time, *, now: datetime, tz: ZoneInfo = LONDON) -> datetime:
    """A one-off local date and time as UTC; ScheduleError if it does not exist or has passed."""
    local = datetime.combine(day, moment)
    if not exists(local, tz):
        raise ScheduleError(
            N_(
                "{time} on {date} does not exist in UK time: the clocks go forward that night. "
                "Choose a time before the change or an hour later."
            ),
            time=moment.strftime("%H:%M"),
            date=day,
        )
    at = to_utc(local, tz)
    if at <= now:
        raise ScheduleError(N_("{when} has already passed; choose a time in the future."), when=at)
    return at


def _weekdays(words: list[str], original: str) -> str:
    if words in (["day"], ["dydd"]) or words == ["diwrnod"]:
        return "*"
    if words in (["weekday"], ["weekdays"]):
        return "1-5"
    days: list[int] = []
    for word in words:
        word = word.strip(",")
        if word in ("and", "a", "ac", "dydd", ""):
            continue
        key = word[:-1] if word.endswith("s") and word[:-1] in _DAY_WORDS else word
        if key not in _DAY_WORDS:
            raise ScheduleError(
                N_(
                    "I can't read “{value}” as days: write “every monday 9am”, "
                    "“every weekday 9am” or “every day 17:00”."
                ),
                value=original,
            )
        days.append(_DAY_WORDS[key])
    if not days:
        raise ScheduleError(N_("Say which days, for example “every monday 9am”."))
    return ",".join(str(d) for d in sorted(set(days)))


def parse_when(text: str, *, now: datetime, tz: ZoneInfo = LONDON) -> When:
    """Read `every monday 9am`, `every weekday 17:30`, `on 2026-12-01 09:00` or `cron 0 9 * * 1`,
    each repeating one optionally followed by "including bank holidays" or "skipping bank
    holidays" (`When.skip_bank_holidays`)."""
    text, bank_holidays = bank_holiday_choice(text)
    words = text.strip().lower().replace(",", " , ").split()
    if not words:
        raise ScheduleError(N_("Say when: “every monday 9am” or “on 2026-12-01 09:00”."))
    head, rest = words[0], words[1:]
    if head == "cron":
        expression = " ".join(text.strip().split()[1:])
        parse_cron(expression)
        return When(cron=expression, skip_bank_holidays=bank_holidays)
    if head in ("every", "bob"):
        if len(rest) < 2:
            raise ScheduleError(N_("Say which days and what time, for example “every monday 9am”."))
        moment = parse_clock(rest[-1])
        days = _weekdays([w for w in rest[:-1] if w != ","], " ".join(rest[:-1]))
        expression = f"{moment.minute} {moment.hour} * * {days}"
        schedule = Schedule.parse(expression, tz, skip_bank_holidays=bool(bank_holidays))
        if schedule.next_after(now) is None:
            raise ScheduleError(N_("That schedule never runs; check the days."))
        return When(cron=expression, skip_bank_holidays=bank_holidays)
    if head in ("on", "ar", "at"):
        if bank_holidays is not None:
            raise ScheduleError(
                N_(
                    "Bank holidays matter only to repeating reminders: a reminder on one date "
                    "posts on that date. Leave out the words about bank holidays."
                )
            )
        if len(rest) != 2:
            raise ScheduleError(N_("Give a date and a time, for example “on 2026-12-01 09:00”."))
        return When(run_at=one_off(parse_day(rest[0]), parse_clock(rest[1]), now=now, tz=tz))
    raise ScheduleError(
        N_(
            "Start with “every” (repeating) or “on” (once): "
            "“every monday 9am”, “on 2026-12-01 09:00”."
        )
    )


def describe_cron(expression: str, t: Translator) -> str:
    """A short description of a reminder's schedule for lists ("every Monday, 9:00am")."""
    cron = parse_cron(expression)
    times = ", ".join(
        t.time(datetime.combine(date(2026, 1, 5), moment)) for moment in cron.times[:4]
    )
    if not cron.weekdays_restricted and not cron.days_restricted:
        return t._("every day at {times}").format(times=times)
    if cron.weekdays_restricted and not cron.days_restricted:
        # 4 January 2026 is a Sunday; the reader's day names come from their date format.
        names = [
            _weekday_name(date(2026, 1, 4) + timedelta(days=d), t) for d in sorted(cron.weekdays)
        ]
        return t._("every {days} at {times}").format(days=", ".join(names), times=times)
    return t._("on the schedule “{cron}”").format(cron=expression)


def _weekday_name(day: date, t: Translator) -> str:
    # "Monday 5 January 2026" / "Dydd Llun 5 Ionawr 2026": the words before the day number.
    return re.split(r"\s\d", t.date(day), maxsplit=1)[0]
