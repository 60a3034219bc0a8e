"""Words a person types (a command's arguments or a free-text @mention) turned into filters.

`parse("overdue actions for Torfaen page 2", today)` gives a `Query` with `overdue=True`,
`partners=("torfaen",)`, `page=2` and the kind hint "actions"; words that are neither filters
nor stop words are kept as full-text terms. English words and a few Welsh ones are understood.
Pure functions: no database, no I/O, and no input makes them raise.
"""

from __future__ import annotations

import calendar
import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

from bot.domain import ActionStatus, Rag

Kind = Literal["actions", "decisions", "meetings"]

DUE_SOON_DAYS = 14
"""What 'due soon' means when no number of days is given (the channels' default too)."""

MAX_PAGE = 10_000
MAX_DAYS = 3_660

OPEN_STATUSES = frozenset(s for s in ActionStatus if not s.is_closed)


@dataclass(frozen=True)
class Query:
    """Filters and full-text terms read from a person's words."""

    kinds: frozenset[Kind] = frozenset()
    """What the words say they are about (empty when they do not say)."""
    partners: tuple[str, ...] = ()
    board: str | None = None
    statuses: frozenset[ActionStatus] = frozenset()
    all_statuses: bool = False
    """'all': include done and cancelled actions, which lists leave out unless asked."""
    overdue: bool = False
    due_within_days: int | None = None
    rags: frozenset[Rag] = frozenset()
    since: date | None = None
    """On or after this date."""
    until: date | None = None
    """On or before this date."""
    page: int = 1
    refs: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()
    bad_dates: tuple[str, ...] = ()
    """Words that looked like dates but are not (e.g. 2026-02-31)."""
    hints: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    """(typed term, known word it resembles), e.g. ("overdu", "overdue")."""

    @property
    def text(self) -> str | None:
        """The full-text part, or None when there is none."""
        return " ".join(self.terms) or None

    @property
    def has_action_filters(self) -> bool:
        """Whether any filter only makes sense for actions."""
        return bool(self.statuses or self.overdue or self.due_within_days is not None or self.rags)

    @property
    def has_filters(self) -> bool:
        """Whether anything but full-text terms narrows the results."""
        return bool(
            self.partners or self.board or self.has_action_filters or self.since or self.until
        )


# -- vocabulary ------------------------------------------------------------------------------
# Each phrase (a tuple of lower-case words) maps to what it means. Longest phrase wins.

Meaning = tuple[str, str]

_PARTNER_WORDS: dict[str, tuple[str, ...]] = {
    # Welsh place names also in their mutated forms: "ym Mlaenau Gwent", "yng Nghasnewydd",
    # "i Dorfaen", "yn Nhorfaen", "a Chasnewydd".
    "blaenau-gwent": (
        "blaenau-gwent",
        "blaenau gwent",
        "blaenau",
        "cbs blaenau gwent",
        "mlaenau gwent",
        "flaenau gwent",
    ),
    "monmouthshire": ("monmouthshire", "monmouth", "mynwy", "sir fynwy", "fynwy", "sir-fynwy"),
    "newport": ("newport", "casnewydd", "nghasnewydd", "gasnewydd", "chasnewydd"),
    "torfaen": ("torfaen", "dorfaen", "nhorfaen", "thorfaen"),
    "gwent-police": ("gwent-police", "gwent police", "police", "heddlu", "heddlu gwent"),
    "srs": ("srs", "central team", "srs central team", "tîm canolog", "tim canolog"),
}
_BOARD_WORDS: dict[str, tuple[str, ...]] = {
    "strategic": ("strategic", "strategol", "sb"),
    "finance-governance": (
        "finance-governance",
        "finance",
        "f&g",
        "fg",
        "finance & governance",
        "finance and governance",
        "cyllid",
        "gyllid",
        "chyllid",
        "cyllid a llywodraethu",
    ),
    "business-collaboration": (
        "business-collaboration",
        "business",
        "b&c",
        "bc",
        "business & collaboration",
        "business and collaboration",
        "busnes",
        "fusnes",
        "busnes a chydweithio",
    ),
}
_STATUS_WORDS: dict[ActionStatus, tuple[str, ...]] = {
    ActionStatus.NOT_STARTED: (
        "not-started",
        "not started",
        "heb ddechrau",
        "heb ei ddechrau",
        "heb eu dechrau",
    ),
    ActionStatus.IN_PROGRESS: ("in-progress", "in progress", "ar waith", "ar y gweill"),
    ActionStatus.BLOCKED: (
        "blocked",
        "stuck",
        "wedi'i rwystro",
        "wedi ei rwystro",
        "wedi'u rhwystro",
        "wedi eu rhwystro",
    ),
    ActionStatus.DONE: (
        "done",
        "complete",
        "completed",
        "finished",
        "wedi'i gwblhau",
        "wedi ei gwblhau",
        "wedi'u cwblhau",
        "wedi eu cwblhau",
        "wedi gorffen",
        "cwblhawyd",
    ),
    ActionStatus.CANCELLED: (
        "cancelled",
        "canceled",
        "wedi'i ganslo",
        "wedi ei ganslo",
        "wedi'u canslo",
        "wedi eu canslo",
        "canslwyd",
    ),
}
_RAG_WORDS: dict[Rag, tuple[str, ...]] = {
    Rag.RED: ("red", "coch"),
    Rag.AMBER: ("amber", "ambr", "oren"),
    Rag.GREEN: ("green", "gwyrdd"),
}
_KIND_WORDS: dict[Kind, tuple[str, ...]] = {
    "actions": (
        "actions",
        "action",
        "tasks",
        "task",
        "camau",
        "cam",
        "chamau",
        "gamau",
        "camau gweithredu",
        "tasgau",
        "due",
        "owned",
        "owner",
    ),
    "decisions": (
        "decisions",
        "decision",
        "decide",
        "decided",
        "decides",
        "agreed",
        "agree",
        "approved",
        "resolved",
        "penderfyniadau",
        "penderfyniad",
        "penderfynu",
        "penderfynodd",
        "benderfyniadau",
        "benderfyniad",
        "benderfynu",
        "benderfynodd",
        "phenderfyniadau",
    ),
    "meetings": (
        "meetings",
        "meeting",
        "meet",
        "meets",
        "cyfarfodydd",
        "cyfarfod",
        "gyfarfodydd",
        "gyfarfod",
    ),
}
_OTHER_WORDS: dict[str, tuple[str, ...]] = {
    "overdue": ("overdue", "late", "hwyr", "yn hwyr", "ar ei hôl hi", "over-due", "past due"),
    "due-soon": ("due-soon", "due soon", "coming up", "upcoming", "cyn bo hir", "yn fuan"),
    "open": ("open", "outstanding", "agored", "ar agor", "heb eu cwblhau"),
    "all": ("all", "pob", "popeth", "i gyd", "y cyfan"),
}
# fmt: off
STOP_WORDS = frozenset({
    "a", "about", "after", "also", "an", "and", "any", "anything", "are", "as", "at", "be",
    "been", "before", "being", "board", "boards", "by", "can", "could", "did", "do", "does",
    "doing", "for", "from", "get", "give", "got", "has", "have", "how", "i", "in", "info",
    "information", "into", "is", "it", "its", "latest", "list", "me", "my", "next", "of", "on",
    "or", "our", "please", "recent", "recently", "show", "since", "so", "some", "tell", "than",
    "that", "the", "their", "them", "there", "these", "they", "this", "those", "to", "until",
    "up", "us", "was", "we", "were", "what", "whats", "when", "where", "which", "who", "why",
    "will", "with", "within", "would", "you", "your", "bwrdd", "byrddau", "y", "yr", "am", "ar",
    "beth", "pa", "ac", "o", "gan", "yn", "ydy", "oes", "ag", "â", "fy", "ein", "eich",
    "eu", "ei", "mae", "sydd", "sy", "oedd", "dangos", "dangoswch", "rhestr", "rhestrwch", "pryd",
    "ble", "pwy", "pam", "sut", "gyda", "hefyd", "ynghylch", "ynglŷn", "gyfer", "cyngor",
    "wnaeth", "'r", "mewn", "wedi", "gweithredu",
})
# fmt: on

_DATE_WORDS = {
    **{"since": "since", "from": "since", "ers": "since", "after": "after", "before": "before"},
    **{"until": "until", "till": "until", "to": "until", "by": "until", "tan": "until"},
    **{"cyn": "before", "erbyn": "until", "hyd": "until"},
}
_PAGE_WORDS = frozenset({"page", "tudalen", "p", "pg"})
_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
_MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
_MONTHS.update({"sept": 9})
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_UK_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_YEAR = re.compile(r"^(19|20)\d{2}$")
_YEAR_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_NUMBER = re.compile(r"^\d{1,6}$")
_DECISION_REF = re.compile(r"^[a-z]{1,4}-\d{4}-\d{1,4}$")
_ACTION_REF = re.compile(r"^[a-z]{1,4}-\d{1,5}$")
_EDGE_PUNCTUATION = "?!.,;:\"'“”‘’()[]{}<>*`«»"


def _vocabulary() -> dict[tuple[str, ...], Meaning]:
    table: dict[tuple[str, ...], Meaning] = {}

    def add(words: Sequence[str], meaning: Meaning) -> None:
        for phrase in words:
            table[tuple(phrase.split())] = meaning

    for slug, words in _PARTNER_WORDS.items():
        add(words, ("partner", slug))
    for slug, words in _BOARD_WORDS.items():
        add(words, ("board", slug))
    for status, words in _STATUS_WORDS.items():
        add(words, ("status", status.value))
    for rag, words in _RAG_WORDS.items():
        add(words, ("rag", rag.value))
    for kind, words in _KIND_WORDS.items():
        add(words, ("kind", kind))
    for name, words in _OTHER_WORDS.items():
        add(words, (name, name))
    return table


VOCABULARY = _vocabulary()
_LONGEST_PHRASE = max(len(p) for p in VOCABULARY)
_KNOWN_WORDS = sorted({w for phrase in VOCABULARY for w in phrase if len(w) > 3})


def tokens(text: str) -> list[str]:
    """Lower-case words with surrounding punctuation removed; `&` joins as in "f&g"."""
    normal = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    words = (w.strip(_EDGE_PUNCTUATION) for w in normal.split())
    return [w for w in words if w]


def _parse_date(word: str) -> date | Literal[False] | None:
    """A date, None when the word is not date-shaped, False when it is but is impossible."""
    match = _ISO_DATE.match(word)
    if match:
        year, month, day = (int(g) for g in match.groups())
    else:
        match = _UK_DATE.match(word)
        if not match:
            return None
        day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return False


def _month_span(year: int, month: int) -> tuple[date, date] | None:
    if not (1 <= month <= 12 and 1 <= year <= 9999):
        return None
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def _period(words: list[str], i: int, today: date) -> tuple[tuple[date, date], int] | None:
    """A named period starting at words[i] ("this month", "in 2026", "in 2026-11",
    "in november [2026]", "last year"): its first and last day and how many words it used."""
    word = words[i]
    nxt = words[i + 1] if i + 1 < len(words) else ""
    if word in ("this", "last") and nxt in ("month", "year"):
        back = word == "last"
        if nxt == "month":
            first = today.replace(day=1)
            if back:
                first = (first - timedelta(days=1)).replace(day=1)
            span = _month_span(first.year, first.month)
        else:
            year = today.year - (1 if back else 0)
            span = (date(year, 1, 1), date(year, 12, 31)) if year >= 1 else None
        return (span, 2) if span else None
    if word not in ("in", "yn", "ym") or not nxt:
        return None
    if _YEAR.match(nxt):
        year = int(nxt)
        return (date(year, 1, 1), date(year, 12, 31)), 2
    match = _YEAR_MONTH.match(nxt)
    if match:
        span = _month_span(int(match.group(1)), int(match.group(2)))
        return (span, 2) if span else None
    if nxt in _MONTHS:
        after = words[i + 2] if i + 2 < len(words) else ""
        year, used = (int(after), 3) if _YEAR.match(after) else (today.year, 2)
        span = _month_span(year, _MONTHS[nxt])
        return (span, used) if span else None
    return None


def _due_days(words: list[str], i: int) -> tuple[int, int] | None:
    """'due in 7 days', 'due within 7 days', 'due in the next 7 days', 'next 7 days':
    the number of days and how many words were used."""
    j = i
    if words[j] == "due":
        j += 1
    start = j
    while j < len(words) and words[j] in ("in", "within", "the", "next") and j - start < 3:
        j += 1
    if j == start or j >= len(words) or not _NUMBER.match(words[j]):
        return None
    if words[i] != "due" and "next" not in words[start:j]:
        return None
    days = min(int(words[j]), MAX_DAYS)
    j += 1
    if j < len(words) and words[j] in ("days", "day", "diwrnod", "ddiwrnod", "niwrnod"):
        j += 1
    return days, j - i


def _is_noise(word: str) -> bool:
    # "/scrutiny" typed into a mention, "@bot" left in by a platform, lone symbols like "&".
    return word[0] in "/@#" or not any(ch.isalnum() for ch in word)


def _is_board_word(word: str) -> bool:
    meaning = VOCABULARY.get((word,))
    return meaning is not None and meaning[0] == "board"


def _match_phrase(words: list[str], i: int) -> tuple[Meaning, int] | None:
    for length in range(min(_LONGEST_PHRASE, len(words) - i), 0, -1):
        meaning = VOCABULARY.get(tuple(words[i : i + length]))
        if meaning is not None:
            return meaning, length
    return None


@dataclass
class _Builder:
    kinds: set[Kind] = field(default_factory=set)
    partners: list[str] = field(default_factory=list)
    board: str | None = None
    statuses: set[ActionStatus] = field(default_factory=set)
    all_statuses: bool = False
    overdue: bool = False
    due_within_days: int | None = None
    rags: set[Rag] = field(default_factory=set)
    since: date | None = None
    until: date | None = None
    page: int = 1
    refs: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    bad_dates: list[str] = field(default_factory=list)

    def narrow(self, first: date | None, last: date | None) -> None:
        if first is not None:
            self.since = first if self.since is None else max(self.since, first)
        if last is not None:
            self.until = last if self.until is None else min(self.until, last)

    def apply(self, meaning: Meaning, phrase: list[str]) -> None:
        what, value = meaning
        if what == "partner":
            if value not in self.partners:
                self.partners.append(value)
        elif what == "board":
            # The first board named is the filter; a later board word ("business case") is text.
            if self.board is None:
                self.board = value
            else:
                self.term(*phrase)
        elif what == "status":
            self.statuses.add(ActionStatus(value))
        elif what == "rag":
            self.rags.add(Rag(value))
        elif what == "kind":
            self.kinds.add(value)  # type: ignore[arg-type]
        elif what == "overdue":
            self.overdue = True
        elif what == "due-soon":
            self.due_within_days = DUE_SOON_DAYS
        elif what == "open":
            self.statuses |= OPEN_STATUSES
        elif what == "all":
            self.all_statuses = True

    def term(self, *words: str) -> None:
        for word in words:
            if word not in self.terms:
                self.terms.append(word)


def parse(text: str, today: date) -> Query:
    """Read filters, a page number, refs and full-text terms from `text`."""
    words = tokens(text)
    b = _Builder()
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in _PAGE_WORDS and _NUMBER.match(nxt):
            b.page = max(1, min(int(nxt), MAX_PAGE))
            i += 2
            continue
        if word in _DATE_WORDS and nxt:
            when = _parse_date(nxt)
            if when is False:
                b.bad_dates.append(nxt)
                i += 2
                continue
            if when is not None:
                edge = _DATE_WORDS[word]
                if edge == "since":
                    b.narrow(when, None)
                elif edge == "after":
                    b.narrow(when + timedelta(days=1) if when < date.max else when, None)
                elif edge == "before":
                    b.narrow(None, when - timedelta(days=1) if when > date.min else when)
                else:
                    b.narrow(None, when)
                i += 2
                continue
        period = _period(words, i, today)
        if period is not None:
            (first, last), used = period
            b.narrow(first, last)
            i += used
            continue
        due = _due_days(words, i)
        if due is not None:
            b.due_within_days, used = due
            b.kinds.add("actions")
            i += used
            continue
        when = _parse_date(word)
        if when is False:
            b.bad_dates.append(word)
            i += 1
            continue
        if when is not None:
            b.narrow(when, when)
            i += 1
            continue
        if word == "srs" and (nxt in ("board", "boards") or _is_board_word(nxt)):
            # "the SRS strategic board" names the collaboration, not the central team as a partner.
            i += 1
            continue
        matched = _match_phrase(words, i)
        if matched is not None:
            meaning, used = matched
            b.apply(meaning, words[i : i + used])
            i += used
            continue
        if _DECISION_REF.match(word) or _ACTION_REF.match(word):
            ref = word.upper()
            if ref not in b.refs:
                b.refs.append(ref)
        elif word not in STOP_WORDS and not _is_noise(word):
            b.term(word)
        i += 1
    hints = tuple(
        (term, close[0])
        for term in b.terms
        if (close := difflib.get_close_matches(term, _KNOWN_WORDS, n=1, cutoff=0.8))
        and close[0] != term
    )
    return Query(
        kinds=frozenset(b.kinds),
        partners=tuple(b.partners),
        board=b.board,
        statuses=frozenset(b.statuses),
        all_statuses=b.all_statuses,
        overdue=b.overdue,
        due_within_days=b.due_within_days,
        rags=frozenset(b.rags),
        since=b.since,
        until=b.until,
        page=b.page,
        refs=tuple(b.refs),
        terms=tuple(b.terms),
        bad_dates=tuple(b.bad_dates),
        hints=hints,
    )


_PAIRS = frozenset(phrase[:2] for phrase in VOCABULARY if len(phrase) > 1)


def _combines(first: str, second: str) -> bool:
    """Whether two adjacent words would be read as one filter rather than as two terms."""
    return (
        (first, second) in _PAIRS
        or (first in _PAGE_WORDS and bool(_NUMBER.match(second)))
        or (first in ("this", "last") and second in ("month", "year"))
    )


def command_words(query: Query, *, page: int | None = None, terms: bool = True) -> str:
    """The query in canonical words that `parse` reads back to the same filters.

    Used for "next page" commands and buttons, and for suggesting a broader query.
    """
    words: list[str] = list(query.refs)
    if query.board:
        words.append(query.board)
    if query.statuses == OPEN_STATUSES:
        words.append("open")
    else:
        words += sorted(s.value for s in query.statuses)
    if query.all_statuses:
        words.append("all")
    if query.overdue:
        words.append("overdue")
    if query.due_within_days is not None:
        words += ["due", "within", str(query.due_within_days), "days"]
    words += sorted(r.value for r in query.rags)
    if query.since:
        words += ["since", query.since.isoformat()]
    if query.until:
        words += ["until", query.until.isoformat()]
    # Terms come after every filter word and partners after the terms: "srs" before a board
    # word would read as "the SRS boards", and a board word among the terms is text.
    free = list(query.terms) if terms else []
    previous = ""
    for word in [*free, *query.partners]:
        if _combines(previous, word):
            # Keep two terms from reading back as one phrase ("central team", "last month").
            words.append("·")
        words.append(word)
        previous = word
    page = query.page if page is None else page
    if page > 1:
        words += ["page", str(page)]
    return " ".join(words)


def ref_kind(ref: str) -> Literal["actions", "decisions"]:
    """Decision refs carry a year (SB-2026-014); action refs do not (TP-014)."""
    return "decisions" if _DECISION_REF.match(ref.lower()) else "actions"


def without_terms(query: Query) -> Query:
    """The same filters with no full-text terms (a broader query to suggest)."""
    return replace(query, terms=(), page=1)


def without_filters(query: Query) -> Query:
    """Only the full-text terms (a broader query to suggest)."""
    return Query(terms=query.terms, kinds=query.kinds)
