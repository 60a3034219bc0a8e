"""Words a person types (a command's arguments or a free-text @mention), read as filters.

`parse("overdue actions for Torfaen since 1 October", today, lexicon)` gives a `Query` with
`overdue=True`, `partners=("torfaen",)`, `since=2026-10-01` and the kind hint "actions". It reads
English and Welsh as people type them: refs anywhere ("where are we with tp014?"), apostrophes
("what's", "sy'n", "wedi'i rwystro"), Welsh mutations ("yn Nhorfaen", "gyllideb"), missing
accents ("ar ei hol hi"), small typos ("overdu"), everyday words for statuses ("late", "stuck",
"on track", "hwyr", "wedi'i gwblhau") and dates in words ("last month", "ym mis Tachwedd",
"y pythefnos nesaf", "eleni"). Partner and board names come from the collaboration's data
(`Lexicon.of`), and the bilingual glossary turns a term into every form of it in both
languages, so "canolfan ddata" also searches for "data centre".

Words that are neither filters nor filler are kept as full-text terms. Pure functions: no
database, no I/O, and no input makes them raise.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Literal

from bot.domain import ActionStatus, Rag
from bot.services import word_dates
from bot.services.welsh_words import fold, radicals, variants

Kind = Literal["actions", "decisions", "meetings"]
Language = Literal["en", "cy"]

DUE_SOON_DAYS = 14
"""What 'due soon' means when no number of days is given (the channels' default too)."""

MAX_PAGE = 10_000
MAX_DAYS = word_dates.MAX_DAYS

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
    ahead_days: int | None = field(default=None, compare=False)
    """A window from today named as a period ("the next two weeks"), not as "due soon"."""
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
    """(typed word, known word it was read as), e.g. ("overdu", "overdue")."""
    search: tuple[tuple[str, ...], ...] = field(default=(), compare=False)
    """What full-text search looks for: every group must match, through any one of its
    alternatives (a glossary term in both languages, a Welsh word in its mutated forms)."""
    also: tuple[str, ...] = field(default=(), compare=False)
    """Glossary equivalents in the other language that were searched for too."""
    language: Language = field(default="en", compare=False)
    """The language the words are in (the member's when they do not tell)."""
    last_meeting: bool = False
    """"At the last meeting": the caller turns it into that meeting's date."""

    @property
    def text(self) -> str | None:
        """The full-text part as typed, or None when there is none."""
        return " ".join(self.terms) or None

    @property
    def search_groups(self) -> tuple[tuple[str, ...], ...]:
        """Groups to search for: the glossary-expanded ones, else one group per term."""
        return self.search or tuple((term,) for term in self.terms)

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


# -- fixed vocabulary: the words of the two languages, not of the collaboration ----------------
Meaning = tuple[str, str]

# Welsh phrases are written in their dictionary form where a mutation may change them:
# "wedi'i rwystro" also reads "wedi'u rhwystro", "heb ddechrau" also "heb dechrau".
_STATUS_WORDS: dict[ActionStatus, tuple[str, ...]] = {
    ActionStatus.NOT_STARTED: (
        "not-started", "not started", "not yet started", "yet to start", "yet to begin",
        "not begun", "hasn't started", "haven't started", "havent started", "hasnt started",
        "heb ddechrau", "heb ei ddechrau", "heb eu dechrau", "heb gychwyn", "heb ei gychwyn",
        "heb eu cychwyn", "dim wedi dechrau",
    ),
    ActionStatus.IN_PROGRESS: (
        "in-progress", "in progress", "underway", "under way", "ongoing", "ar waith",
        "ar y gweill", "yn mynd rhagddo", "yn mynd rhagddynt", "ar droed", "yn parhau",
    ),
    ActionStatus.BLOCKED: (
        "blocked", "stuck", "on hold", "held up", "blocking", "wedi'i rwystro", "wedi rhwystro",
        "wedi'u rhwystro", "wedi ei rwystro", "wedi eu rhwystro", "rhwystro", "rhwystredig",
        "yn sownd", "sownd", "wedi'i atal", "wedi'u hatal", "ar stop", "wedi'i ddal yn ôl",
    ),
    ActionStatus.DONE: (
        "done", "complete", "completed", "finished", "delivered", "wedi'i gwblhau",
        "wedi ei gwblhau", "wedi'u cwblhau", "wedi eu cwblhau", "wedi cwblhau", "cwblhawyd",
        "wedi gorffen", "wedi'i orffen", "wedi'u gorffen", "wedi'i gyflawni", "wedi'u cyflawni",
        "cyflawnwyd", "wedi'u gwneud", "wedi'i wneud", "gorffenedig", "wedi dod i ben",
    ),
    ActionStatus.CANCELLED: (
        "cancelled", "canceled", "dropped", "abandoned", "wedi'i ganslo", "wedi ei ganslo",
        "wedi'u canslo", "wedi eu canslo", "canslwyd", "wedi canslo", "wedi'i ddileu",
    ),
}  # fmt: skip
_RAG_WORDS: dict[Rag, tuple[str, ...]] = {
    Rag.RED: ("red", "coch", "off track", "oddi ar y trywydd"),
    Rag.AMBER: ("amber", "ambr", "oren", "at risk", "mewn perygl", "dan fygythiad"),
    Rag.GREEN: (
        "green", "gwyrdd", "on track", "on schedule", "on target", "ar y trywydd iawn",
        "ar y trywydd cywir", "ar y trywydd", "ar amser", "ar darged",
    ),
}  # fmt: skip
_KIND_WORDS: dict[Kind, tuple[str, ...]] = {
    "actions": (
        "actions", "action", "tasks", "task", "tactical plan", "tp", "deadline", "deadlines",
        "due", "owned", "owner", "owns", "camau", "cam", "camau gweithredu", "cam gweithredu",
        "tasgau", "tasg", "cynllun tactegol", "dyddiad cau", "dyddiadau cau", "perchennog",
        "dyledus", "i'w cwblhau", "i'w gorffen", "i'w wneud",
    ),
    "decisions": (
        "decisions", "decision", "decide", "decided", "decides", "deciding", "agreed", "agree",
        "approved", "approve", "resolved", "endorsed", "penderfyniadau", "penderfyniad",
        "penderfynu", "penderfynodd", "penderfynon", "penderfynwyd", "cytunwyd", "cytuno",
        "cytunodd", "cymeradwywyd", "cymeradwyo", "cymeradwyodd",
    ),
    "meetings": (
        "meetings", "meeting", "meet", "meets", "cyfarfodydd", "cyfarfod", "cwrdd",
        "cyfarfod nesaf",
    ),
}  # fmt: skip
_OTHER_WORDS: dict[str, tuple[str, ...]] = {
    "overdue": (
        "overdue", "over-due", "late", "behind", "behind schedule", "slipping", "slipped",
        "slipped past", "past due", "past their due date", "past the due date", "delayed",
        "running late", "missed", "missed deadline", "hwyr", "yn hwyr", "ar ei hôl hi",
        "ar eu hôl hi", "ar ei hôl", "ar eu hôl", "tu ôl", "wedi llithro", "llithro",
        "wedi'i oedi", "wedi'u hoedi", "heibio'r dyddiad", "dros amser", "hwyr yn cyrraedd",
        "ar ôl y dyddiad", "ar ôl y dyddiad cau", "ar ôl eu dyddiad", "wedi'r dyddiad",
        "wedi methu'r dyddiad", "dros y dyddiad",
    ),
    "due-soon": (
        "due-soon", "due soon", "coming up", "upcoming", "soon", "cyn bo hir", "yn fuan",
        "ar fin", "i ddod", "sydd i ddod", "ar y gorwel",
    ),
    "open": (
        "open", "outstanding", "incomplete", "unfinished", "not done", "not complete",
        "not completed", "not finished", "agored", "ar agor", "heb eu cwblhau",
        "heb ei gwblhau", "heb orffen", "anorffenedig", "heb eu gorffen",
    ),
    "all": ("all", "every", "pob", "popeth", "i gyd", "y cyfan", "pob un", "holl"),
    "last-meeting": (
        "last meeting", "latest meeting", "previous meeting", "most recent meeting",
        "last board meeting", "latest board meeting", "its last meeting", "cyfarfod diwethaf",
        "cyfarfod dwetha", "cyfarfod diweddaraf", "cyfarfod blaenorol",
    ),
}  # fmt: skip
# fmt: off
_EN_STOP = frozenset({
    "a", "about", "after", "again", "also", "am", "an", "and", "any", "anything", "are",
    "around", "as", "at", "be", "been", "before", "being", "board", "boards", "but", "by",
    "can", "concerning", "could", "currently", "did", "do", "does", "doing", "done?",
    "for", "from", "get", "give", "going", "got", "had", "happen", "happened", "happening",
    "has", "have", "having", "hello", "hi", "how", "i", "i'd", "if", "in", "info",
    "information", "into", "is", "it", "its", "just", "know", "latest", "let", "like",
    "list", "look", "me", "mine", "more", "my", "need", "new", "news", "next", "now", "of",
    "on", "or", "our", "please", "pls", "plz", "progress", "re", "recent", "recently",
    "regarding", "report", "say", "see", "show", "since", "so", "some", "state", "status",
    "still", "tell", "than", "thanks", "that", "the", "their", "them", "then", "there",
    "these", "they", "thing", "things", "this", "those", "to", "today's", "until", "up",
    "update", "updates", "us", "very", "want", "was", "we", "were", "what", "whats",
    "what's", "when", "where", "wheres", "which", "who", "why", "will", "with", "within",
    "would", "you", "your", "'s", "'re", "'ve", "'ll", "'d", "'m", "'t", "council",
    "councils", "county", "borough", "city", "cbc", "item", "items", "details", "detail",
    "summary", "any?", "should", "must", "how's", "hows", "everything", "find",
    "search", "overall", "affecting", "affect", "involving", "relating",
    "related", "relate", "regards", "far", "where's", "anything?", "yet", "there's",
    "theres", "ones", "one", "stand", "stands", "standing", "position", "ask", "asked",
    "wondering", "wonder", "whether", "happenings", "rated", "rating", "rag", "concern",
    "concerns", "concerned", "made", "many", "much", "stuff", "work", "works", "responsible",
    "bit", "bits",
})
_CY_STOP = frozenset({
    "a", "ac", "ag", "am", "amdan", "amdano", "amdani", "amdanynt", "ar", "at", "beth", "be",
    "ble", "bod", "bwrdd", "byrddau", "cael", "cyngor", "cynghorau", "da", "dangos",
    "dangoswch", "dewch", "diolch", "digwydd", "digwyddodd", "diweddaraf", "diweddariad",
    "dweud", "dywedwch", "e", "ei", "eich", "ein", "eu", "fi", "fy", "gan", "gennych",
    "gweithredu", "gwybod", "gyda", "gydar", "hanes", "hefyd", "hefo", "efo", "hwn", "hon",
    "hynny", "hyn", "i", "ia", "in", "lle", "mae", "maen", "mewn", "mi", "mod", "na",
    "newyddion", "ni", "nhw", "o", "oedd", "oes", "os", "pa", "pam", "parthed", "pethau",
    "plis", "pryd", "pwy", "rhestr", "rhestrwch", "rhowch", "sut", "sy", "sydd", "syn",
    "statws", "ti", "unrhyw", "wedi", "wnaeth", "wnaethon", "wrth", "wrthyf", "y", "yma",
    "yn", "ynghylch", "ynglyn", "yng", "ym", "yr", "ydy", "ydi", "yw", "ydyn", "ydynt",
    "'r", "'n", "'i", "'u", "'w", "'m", "'th", "'ch", "chwilio", "ffeindio", "eisiau",
    "isio", "moyn", "hoffwn", "hoffen", "gallwch", "allwch", "fedrwch", "medrwch", "dwi",
    "rwy", "rwyn", "dw", "wyf", "sefyllfa", "cynnydd", "rhywbeth", "bellach",
    "nawr", "rwan", "fan", "yno", "gwelwch", "dda", "arall", "eraill", "roedd",
    "gafodd", "cafodd", "wnaed", "sefyll", "gwneud", "wneud", "ddigwydd", "ddigwyddodd",
    "newydd", "yna", "yngl", "hyd", "iw", "hi", "ynddo", "gyfer", "ynddi", "beth'",
    "chi", "nid", "ddim", "dim", "ydym", "maent", "fod", "fe", "ydych",
    "bydd", "fydd", "fyddan", "ynde", "ife", "rhai", "popeth?", "manylion", "crynodeb",
    "dywed", "rhoi", "gael", "ers", "tan", "eto", "ymwneud", "nesaf", "nesa", "perthynas",
    "berthynas", "sgoriau", "sgor", "gradd", "faint", "sawl",
})
# fmt: on
STOP_WORDS = frozenset(fold(w) for w in _EN_STOP | _CY_STOP)

# Words that mostly say which language a question is in.
_CY_MARKERS = frozenset(fold(w) for w in _CY_STOP - _EN_STOP) | {
    "eleni", "llynedd", "camau", "penderfyniadau", "cyfarfodydd", "hwyr",
}  # fmt: skip
_EN_MARKERS = frozenset(fold(w) for w in _EN_STOP - _CY_STOP) | {
    "actions", "decisions", "meetings", "overdue", "late",
}  # fmt: skip

# Clitics typed without their apostrophe, split as if it were there.
_FUSED = {"syn": ("sy", "'n"), "wedii": ("wedi", "'i"), "wediu": ("wedi", "'u"),
          "iw": ("i", "'w"), "gydar": ("gyda", "'r"), "whats": ("what", "'s")}  # fmt: skip
_CLITIC = re.compile(r"^(.+?)('(?:s|re|ve|ll|d|m|t|r|n|i|u|w|th|ch))$")

_DATE_EDGES = {
    "since": "since", "from": "since", "ers": "since", "o": "since", "starting": "since",
    "after": "after",
    "before": "before", "cyn": "before", "prior": "before",
    "until": "until", "till": "until", "til": "until", "to": "until", "by": "until",
    "tan": "until", "hyd": "until", "erbyn": "until",
}  # fmt: skip
_DATE_EDGE_PAIRS = {("ar", "ol"): "after", ("hyd", "at"): "until", ("up", "to"): "until",
                    ("prior", "to"): "before", ("hyd", "nes"): "until"}  # fmt: skip
_PERIOD_INTRO = frozenset({"in", "during", "for", "ym", "yn", "yng", "over"})
_BETWEEN = frozenset({"between", "rhwng"})
_ABOUT_ONE_THING = frozenset({"is", "has", "was", "ydy", "ydi", "yw", "ydyw", "oedd"})
_ARTICLES = frozenset({"the", "y", "yr", "'r"})
_ANY = frozenset({"any", "anything", "there", "unrhyw", "rhywbeth", "rhai", "pob", "'n"})


def _about_one_thing(words: Sequence[str]) -> bool:
    """Whether a yes/no question asks about one named thing ("is the move on track?",
    "ydy adnewyddu'r cytundeb ar y trywydd iawn?") rather than whether any exist."""
    if len(words) < 2 or words[0] not in _ABOUT_ONE_THING:
        return False
    if words[0] in ("is", "has", "was"):
        return words[1] in _ARTICLES
    return words[1] not in _ANY


_BETWEEN_AND = frozenset({"and", "a", "ac", "to", "i", "tan", "-"})
_AMBIGUOUS_MONTHS = frozenset({"may", "march", "mar", "mai", "mawrth", "medi", "fai", "fawrth"})
_PAGE_WORDS = frozenset({"page", "tudalen", "p", "pg", "dudalen"})
_NUMBER = re.compile(r"^\d{1,6}$")
_DECISION_REF = re.compile(r"^[a-z]{1,4}-\d{4}-\d{1,4}$")
_ACTION_REF = re.compile(r"^[a-z]{1,4}-\d{1,5}$")
_QUESTION_REF = re.compile(r"^q-[a-z]{1,8}-\d{4}-\d{1,2}-\d{1,6}$")
_EDGE_PUNCTUATION = '?!.,;:"“”‘’()[]{}<>*`«»…'
_SPLIT = re.compile(r"[\s,;!?()\[\]{}“”\"…]+")
_TYPO_CUTOFF = 0.84
_TYPO_MIN_LENGTH = 5


# -- the collaboration's own words ----------------------------------------------------------


@dataclass(frozen=True)
class NamedThing:
    """A partner or board as the collaboration names it (from its database row)."""

    slug: str
    name: str
    name_cy: str
    prefix: str = ""
    """A board's decision-ref prefix (SB), empty for a partner."""


@dataclass(frozen=True)
class GlossaryTerm:
    """One term in both languages: every form a member may type."""

    en: tuple[str, ...]
    cy: tuple[str, ...]


# Words that name what kind of body something is, not which one.
_GENERIC_NAME_WORDS = frozenset({
    "council", "county", "borough", "city", "board", "the", "of", "and", "&", "a", "ac",
    "cyngor", "bwrdeistref", "sirol", "dinas", "bwrdd", "y", "yr", "'r", "team",
})  # fmt: skip


_CONNECTORS = frozenset({"the", "of", "and", "&", "a", "ac", "y", "yr", "'r"})
_BODY_WORDS = frozenset({
    "council", "county", "borough", "city", "board", "cyngor", "bwrdeistref", "sirol", "dinas",
    "bwrdd", "team",
})  # fmt: skip


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    meaning: Meaning
    welsh: bool
    """Match mutated forms (a Welsh phrase or a name)."""


def _phrase_words(text: str) -> tuple[str, ...]:
    return tuple(tokens(text))


def _name_phrases(thing: NamedThing, others: Sequence[NamedThing]) -> list[str]:
    """Every way a member may name a partner or board: full names, slug, prefix, the name
    without "County Borough Council"/"Cyngor", its acronym, its first distinctive word."""
    forms = {thing.slug, thing.slug.replace("-", " "), thing.name, thing.name_cy}
    if thing.prefix:
        forms.add(thing.prefix)
    other_names = [
        " ".join(_phrase_words(text))
        for other in others
        if other.slug != thing.slug
        for text in (other.name, other.name_cy)
    ]
    other_words = {
        w for other in others if other.slug != thing.slug
        for w in (*_phrase_words(other.name), *_phrase_words(other.name_cy))
    }  # fmt: skip
    for name in (thing.name, thing.name_cy):
        raw = name.split()
        words = [w for w in _phrase_words(name) if w not in _GENERIC_NAME_WORDS]
        if not words:
            continue
        forms.add(" ".join(words))
        if len(words) > 1 and ("&" in name or " and " in name):
            forms.add("&".join(w[0] for w in words))  # "f&g"
        # The name without what kind of body it is, connectors kept: "finance & governance".
        named = " ".join(w for w in _phrase_words(name) if w not in _BODY_WORDS)
        for text in (name, named):
            forms.add(text)
            if "&" in text or " and " in text or " a " in text:
                forms.add(text.replace("&", "and"))
                forms.add(text.replace("&", "a"))
                forms.add(text.replace(" and ", " & ").replace(" a ", " & "))
        # Any run of two or more of its words no other name shares ("central team").
        every = _phrase_words(name)
        for size in range(2, len(every)):
            for start in range(len(every) - size + 1):
                run = every[start : start + size]
                text = " ".join(run)
                ends = {run[0], run[-1]}
                if ends & _CONNECTORS or any(text in o for o in other_names):
                    continue
                if set(run) - _GENERIC_NAME_WORDS:
                    forms.add(text)
        # An acronym as written ("SRS", "GAR") names the thing on its own.
        forms.update(w.lower() for w in raw if len(w) >= 2 and w.isupper() and w.isalpha())
        # Its first distinctive word ("blaenau", "police", "fynwy"), unless it starts with an
        # acronym ("SRS central team" is "srs", never "central").
        if not (raw[0].isupper() and raw[0].isalpha() and len(raw[0]) > 1):
            distinctive = [w for w in words if len(w) >= 4 and w not in other_words]
            if distinctive:
                forms.add(distinctive[0])
    return sorted({fold(f) for f in forms if f.strip()})


class Lexicon:
    """The collaboration's words: partner and board names (from the database rows, so a
    partner renamed or added in the collaboration file is read at once), ref prefixes, and
    the bilingual glossary; plus the fixed words of both languages."""

    def __init__(
        self,
        partners: Iterable[NamedThing] = (),
        boards: Iterable[NamedThing] = (),
        glossary: Iterable[GlossaryTerm] = (),
        ref_prefixes: Iterable[str] = (),
    ) -> None:
        self.partners = tuple(partners)
        self.boards = tuple(boards)
        self.glossary = tuple(glossary)
        self.ref_prefixes = frozenset(p.lower() for p in ref_prefixes) | {
            b.prefix.lower() for b in self.boards if b.prefix
        }
        phrases: list[_Phrase] = []

        def add(texts: Iterable[str], meaning: Meaning, welsh: bool) -> None:
            for text in texts:
                words = _phrase_words(text)
                if words:
                    phrases.append(_Phrase(words, meaning, welsh))

        for status, texts in _STATUS_WORDS.items():
            add(texts, ("status", status.value), True)
        for rag, texts in _RAG_WORDS.items():
            add(texts, ("rag", rag.value), True)
        for kind, texts in _KIND_WORDS.items():
            add(texts, ("kind", kind), True)
        for name, texts in _OTHER_WORDS.items():
            add(texts, (name, name), True)
        for index, term in enumerate(self.glossary):
            add(term.en, ("term", str(index)), False)
            add(term.cy, ("term", str(index)), True)
        everyone = (*self.partners, *self.boards)
        for partner in self.partners:
            add(_name_phrases(partner, everyone), ("partner", partner.slug), True)
        for board in self.boards:
            add(_name_phrases(board, everyone), ("board", board.slug), True)
        # The collaboration's names come last so they win a tie with a fixed word.
        self._index: dict[str, list[_Phrase]] = {}
        for phrase in phrases:
            keys = radicals(phrase.words[0]) if phrase.welsh else {phrase.words[0]}
            for key in keys:
                self._index.setdefault(key, []).append(phrase)
        self._longest = max((len(p.words) for p in phrases), default=1)
        singles = {p.words[0] for p in phrases if len(p.words) == 1 and len(p.words[0]) > 3}
        self.known_words = sorted(
            singles | {w for w in STOP_WORDS if len(w) > 4} | word_dates.MONTH_WORDS
        )

    def match(self, words: Sequence[str], i: int) -> tuple[Meaning, int] | None:
        """The longest known phrase starting at `words[i]`: its meaning and length. Of two
        the same length, one written as typed wins over one matched through a mutation."""
        best: tuple[int, bool] | None = None
        found: Meaning | None = None
        for key in sorted(radicals(words[i]), key=lambda k: (k != words[i], k)):
            for phrase in self._index.get(key, ()):
                size = len(phrase.words)
                if i + size > len(words):
                    continue
                if not all(_same(words[i + k], phrase.words[k], phrase.welsh) for k in range(size)):
                    continue
                rank = (size, tuple(words[i : i + size]) == phrase.words)
                if best is None or rank > best:
                    best, found = rank, phrase.meaning
        return (found, best[0]) if found is not None and best is not None else None

    def term(self, index: int) -> GlossaryTerm:
        """A glossary term by its position."""
        return self.glossary[index]


def _same(typed: str, known: str, welsh: bool) -> bool:
    if typed == known:
        return True
    return welsh and bool(radicals(typed) & radicals(known))


# -- tokens ----------------------------------------------------------------------------------
_REF_IN_TEXT = re.compile(
    r"(?<![\w-])(?:(q)[-\s]?([a-z]{1,4})[-\s]?(\d{4})[-\s]?(\d{1,2})[-\s]?(\d{1,6})"
    r"|([a-z]{1,4})[-\s]?(\d{4})[-\s]?(\d{1,4})"
    r"|([a-z]{1,4})[-\s]?(\d{1,5}))(?![\w-])"
)


def _canonical_refs(text: str, prefixes: frozenset[str]) -> str:
    """Refs typed any way ("tp014", "TP 14", "sb 2026 031") joined as one word ("tp-014")."""

    def join(match: re.Match[str]) -> str:
        whole = match.group(0)
        if match.group(1):
            return "-".join(match.group(i) for i in range(1, 6))
        if match.group(6):
            if match.group(6) in prefixes or not any(ch.isspace() for ch in whole):
                return f"{match.group(6)}-{match.group(7)}-{match.group(8)}"
            return whole
        if match.group(9) in prefixes:
            return f"{match.group(9)}-{match.group(10)}"
        return whole

    return _REF_IN_TEXT.sub(join, text)


def tokens(text: str, ref_prefixes: frozenset[str] = frozenset()) -> list[str]:
    """Lower-case words without accents or surrounding punctuation; clitics split off
    ("what's" -> what 's, "sy'n" -> sy 'n); refs joined ("TP 14" -> tp-14); `&` kept."""
    normal = unicodedata.normalize("NFKC", text).lower()
    normal = normal.replace("’", "'").replace("‘", "'").replace("`", "'")
    if ref_prefixes:
        normal = _canonical_refs(normal, ref_prefixes)
    found: list[str] = []
    for raw in _SPLIT.split(normal):
        word = fold(raw.strip(_EDGE_PUNCTUATION + "'"))
        if not word:
            continue
        if word in _FUSED:
            found.extend(_FUSED[word])
            continue
        clitic = _CLITIC.match(word)
        if clitic and clitic.group(1).strip("'"):
            found.append(clitic.group(1).strip("'"))
            word = clitic.group(2)
        found.append(word)
    return [w for w in found if w]


# -- reading ---------------------------------------------------------------------------------


def _is_noise(word: str) -> bool:
    # "/scrutiny" typed into a mention, "@bot" left in by a platform, lone symbols like "&".
    return word[0] in "/@#" or not any(ch.isalnum() for ch in word)


@dataclass
class _Builder:
    today: date
    kinds: set[Kind] = field(default_factory=set)
    partners: list[str] = field(default_factory=list)
    board: str | None = None
    statuses: set[ActionStatus] = field(default_factory=set)
    all_statuses: bool = False
    overdue: bool = False
    due_within_days: int | None = None
    ahead_days: int | None = None
    rags: set[Rag] = field(default_factory=set)
    since: date | None = None
    until: date | None = None
    page: int = 1
    refs: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    search: list[tuple[str, ...]] = field(default_factory=list)
    also: list[str] = field(default_factory=list)
    bad_dates: list[str] = field(default_factory=list)
    hints: list[tuple[str, str]] = field(default_factory=list)
    last_meeting: bool = False

    def narrow(self, first: date | None, last: date | None) -> None:
        if first is not None:
            self.since = first if self.since is None else max(self.since, first)
        if last is not None:
            self.until = last if self.until is None else min(self.until, last)

    def period(self, period: word_dates.Period, edge: str, words: Sequence[str]) -> None:
        if period.bad:
            self.bad_dates.append(" ".join(words))
            return
        if period.ahead is not None and edge == "in":
            self.due_within_days = self.ahead_days = period.ahead
            return
        if edge == "since":
            self.narrow(period.first, None)
        elif edge == "after":
            self.narrow(period.last + timedelta(days=1) if period.last < date.max else None, None)
        elif edge == "before":
            self.narrow(None, period.first - timedelta(days=1) if period.first > date.min else None)
        elif edge == "until":
            self.narrow(None, period.last)
        else:
            self.narrow(period.first, period.last)

    def apply(self, meaning: Meaning, phrase: Sequence[str], lexicon: Lexicon) -> None:
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
        elif what == "last-meeting":
            self.last_meeting = True
        elif what == "term":
            self.glossary_term(lexicon.term(int(value)), phrase)

    def glossary_term(self, term: GlossaryTerm, phrase: Sequence[str]) -> None:
        typed = " ".join(phrase)
        if typed in self.terms:
            return
        self.terms.append(typed)
        alternatives: list[str] = []
        for text in (*term.en, *term.cy):
            words = [w for w in tokens(text) if w not in STOP_WORDS]
            if not words:
                continue
            alternatives.append(" ".join(words))
            if text in term.cy:
                # A Welsh record may hold the term mutated: "ei gyllideb", "y ganolfan ddata".
                alternatives += [
                    " ".join([form, *words[1:]]) for form in sorted(variants(words[0]))
                ]
        group = tuple(dict.fromkeys(alternatives))
        self.search.append(group)
        in_english = typed in {" ".join(tokens(t)) for t in term.en}
        other = term.cy if in_english else term.en
        if other and other[0] not in self.also:
            self.also.append(other[0])

    def term(self, *words: str, welsh: bool = False) -> None:
        for word in words:
            if word in self.terms:
                continue
            self.terms.append(word)
            forms = sorted(variants(word) - {word}) if welsh and len(word) > 2 else []
            self.search.append((word, *forms))


def _language(words: Sequence[str], default: Language) -> Language:
    welsh = sum(1 for w in words if w in _CY_MARKERS)
    english = sum(1 for w in words if w in _EN_MARKERS)
    if welsh == english:
        return default
    return "cy" if welsh > english else "en"


def _edge_at(words: Sequence[str], i: int) -> tuple[str, int] | None:
    pair = tuple(words[i : i + 2])
    if len(pair) == 2 and pair in _DATE_EDGE_PAIRS:
        return _DATE_EDGE_PAIRS[pair], 2
    if words[i] in _DATE_EDGES:
        return _DATE_EDGES[words[i]], 1
    if words[i] in _BETWEEN:
        return "between", 1
    if words[i] in _PERIOD_INTRO:
        return "in", 1
    return None


def _period_at(words: list[str], i: int, today: date, edge: bool) -> word_dates.Period | None:
    if i >= len(words):
        return None
    if not edge and words[i] in _AMBIGUOUS_MONTHS:
        # "may", "march", "mai" (that) and "medi" (reap) are months only after "in", "since"…
        following = words[i + 1] if i + 1 < len(words) else ""
        if not re.match(r"^(19|20)\d{2}$", following):
            return None
    return word_dates.read_period(words, i, today)


def _due_days(words: list[str], i: int) -> tuple[int, int] | None:
    """'due in 7 days', 'due within 7 days', 'in 7 days': the number of days and words used."""
    j = i
    if words[j] == "due":
        j += 1
    start = j
    while j < len(words) and words[j] in ("in", "within", "the", "next") and j - start < 3:
        j += 1
    if j == start or j >= len(words) or not _NUMBER.match(words[j]):
        return None
    following = words[j + 1] if j + 1 < len(words) else ""
    if following not in ("days", "day", "diwrnod", "ddiwrnod", "niwrnod"):
        if word_dates.unit_days(following) is not None:
            return None  # "next 2 weeks": a period (see word_dates)
        if words[i] != "due" and "next" not in words[start:j]:
            return None
    days = min(int(words[j]), MAX_DAYS)
    j += 1
    if following in ("days", "day", "diwrnod", "ddiwrnod", "niwrnod"):
        j += 1
    return days, j - i


def _correct(word: str, lexicon: Lexicon) -> str | None:
    """The known word a typo stands for ("overdu" -> "overdue"), or None."""
    if len(word) < _TYPO_MIN_LENGTH or not word.isalpha():
        return None
    best: tuple[float, str] | None = None
    # A mutated typo ("gyllidb") is compared in its unmutated form ("cyllidb") too.
    for form in sorted(radicals(word)):
        for close in difflib.get_close_matches(form, lexicon.known_words, n=1, cutoff=_TYPO_CUTOFF):
            score = difflib.SequenceMatcher(None, form, close).ratio()
            if best is None or score > best[0]:
                best = (score, close)
    return best[1] if best is not None and best[1] != word else None


def parse(text: str, today: date, lexicon: Lexicon, language: Language = "en") -> Query:
    """Read filters, a page number, refs and full-text terms from `text`."""
    words = tokens(text, lexicon.ref_prefixes)
    lang = _language(words, language)
    b = _Builder(today)
    corrected_at: set[int] = set()
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in _PAGE_WORDS and _NUMBER.match(nxt):
            b.page = max(1, min(int(nxt), MAX_PAGE))
            i += 2
            continue
        if _DECISION_REF.match(word) or _ACTION_REF.match(word) or _QUESTION_REF.match(word):
            ref = word.upper()
            if ref not in b.refs:
                b.refs.append(ref)
            i += 1
            continue
        due = _due_days(words, i)
        if due is not None:
            b.due_within_days, used = due
            b.kinds.add("actions")
            i += used
            continue
        edge = _edge_at(words, i)
        if edge is not None:
            name, used = edge
            start = i + used
            while start < len(words) - 1 and words[start] in ("the", "y", "yr"):
                start += 1  # "since the start of October", "ers y mis diwethaf"
            period = _period_at(words, start, today, True)
            if period is not None and name == "between":
                after = start + period.used
                if after < len(words) and words[after] in _BETWEEN_AND:
                    second = _period_at(words, after + 1, today, True)
                    if second is not None:
                        b.period(period, "since", words[start:after])
                        b.period(second, "until", words[after + 1 : after + 1 + second.used])
                        i = after + 1 + second.used
                        continue
                period = None
            if period is not None:
                b.period(period, name, words[start : start + period.used])
                i = start + period.used
                continue
        period = _period_at(words, i, today, False)
        if period is not None:
            b.period(period, "in", words[i : i + period.used])
            i += period.used
            continue
        if word == "srs" and nxt in ("board", "boards", "bwrdd", "byrddau"):
            # "the SRS boards" names the collaboration, not the central team as a partner.
            i += 1
            continue
        matched = lexicon.match(words, i)
        if word == "srs" and matched is not None and nxt:
            following = lexicon.match(words, i + 1)
            if following is not None and following[0][0] == "board":
                i += 1
                continue
        if matched is not None:
            meaning, used = matched
            b.apply(meaning, words[i : i + used], lexicon)
            i += used
            continue
        if word in STOP_WORDS or _is_noise(word):
            i += 1
            continue
        corrected = _correct(word, lexicon) if i not in corrected_at else None
        if corrected is not None:
            corrected_at.add(i)
            b.hints.append((word, corrected))
            words[i] = corrected
            continue
        b.term(word, welsh=lang == "cy")
        i += 1
    if b.terms and _about_one_thing(words):
        # "Is the enterprise agreement renewal on track?" asks about one thing: show it with
        # its status rather than filter it out by the status asked about.
        b.statuses.clear()
        b.rags.clear()
        b.overdue = False
    return Query(
        kinds=frozenset(b.kinds),
        partners=tuple(b.partners),
        board=b.board,
        statuses=frozenset(b.statuses),
        all_statuses=b.all_statuses,
        overdue=b.overdue,
        due_within_days=b.due_within_days,
        ahead_days=b.ahead_days,
        rags=frozenset(b.rags),
        since=b.since,
        until=b.until,
        page=b.page,
        refs=tuple(b.refs),
        terms=tuple(b.terms),
        bad_dates=tuple(b.bad_dates),
        hints=tuple(b.hints),
        search=tuple(b.search),
        also=tuple(b.also),
        language=lang,
        last_meeting=b.last_meeting,
    )


# -- writing a query back as words ------------------------------------------------------------

_CANONICAL: dict[Language, dict[str, str]] = {
    "en": {
        "open": "open", "all": "all", "overdue": "overdue", "since": "since", "until": "until",
        "page": "page", "due": "due within {days} days",
        "not-started": "not-started", "in-progress": "in-progress", "blocked": "blocked",
        "done": "done", "cancelled": "cancelled", "red": "red", "amber": "amber",
        "green": "green",
    },
    "cy": {
        "open": "agored", "all": "pob", "overdue": "hwyr", "since": "ers", "until": "tan",
        "page": "tudalen", "due": "o fewn {days} diwrnod",
        "not-started": "heb ddechrau", "in-progress": "ar waith", "blocked": "wedi'i rwystro",
        "done": "wedi'i gwblhau", "cancelled": "wedi'i ganslo", "red": "coch",
        "amber": "ambr", "green": "gwyrdd",
    },
}  # fmt: skip


_LONGEST_PERIOD = 4
"""The most words a date phrase that can span two terms takes ("the last 7 months")."""


def _combines(before: list[str], second: str, lexicon: Lexicon) -> bool:
    """Whether `second`, written after the words `before`, would be read together with them as
    one phrase (a name, "page 2", or a date such as "last 7 month") rather than as terms."""
    first = before[-1]
    if first in _PAGE_WORDS and bool(_NUMBER.match(second)):
        return True
    matched = lexicon.match([first, second], 0)
    if matched is not None and matched[1] == 2:
        return True
    window = [*before[-(_LONGEST_PERIOD - 1) :], second]
    for start in range(len(window) - 1):
        period = word_dates.read_period(window, start, date(2000, 1, 1))
        if period is not None and start + period.used == len(window):
            return True
    return False


def command_words(
    query: Query,
    lexicon: Lexicon,
    *,
    page: int | None = None,
    terms: bool = True,
    language: Language = "en",
) -> str:
    """The query in canonical words that `parse` reads back to the same filters.

    Used for "next page" commands and buttons, and for suggesting a broader query.
    """
    say = _CANONICAL[language]
    words: list[str] = list(query.refs)
    if query.board:
        words.append(query.board)
    if query.statuses == OPEN_STATUSES:
        words.append(say["open"])
    else:
        words += [say[s] for s in sorted(s.value for s in query.statuses)]
    if query.all_statuses:
        words.append(say["all"])
    if query.overdue:
        words.append(say["overdue"])
    if query.due_within_days is not None:
        words.append(say["due"].format(days=query.due_within_days))
    words += [say[r] for r in sorted(r.value for r in query.rags)]
    if query.since:
        words += [say["since"], query.since.isoformat()]
    if query.until:
        words += [say["until"], query.until.isoformat()]
    # Terms come after every filter word and partners after the terms: "srs" before a board
    # word would read as "the SRS boards", and a board word among the terms is text.
    free = list(query.terms) if terms else []
    run: list[str] = []
    """The words since the last separator: a phrase could only form among them."""
    for word in [*free, *query.partners]:
        if run and _combines(run, word.split()[0], lexicon):
            # Keep terms from reading back as one phrase ("central team", "last 7 month").
            words.append("·")
            run = []
        words.append(word)
        run += word.split()
    page = query.page if page is None else page
    if page > 1:
        words += [say["page"], str(page)]
    return " ".join(w for w in words if w)


def ref_kind(ref: str) -> Literal["actions", "decisions", "questions"]:
    """Decision refs carry a year (SB-2026-014); action refs do not (TP-014); question refs
    start with Q- and carry a board and month (Q-SB-2026-12-003)."""
    lower = ref.lower()
    if _QUESTION_REF.match(lower):
        return "questions"
    return "decisions" if _DECISION_REF.match(lower) else "actions"


def without_terms(query: Query) -> Query:
    """The same filters with no full-text terms (a broader query to suggest)."""
    return replace(query, terms=(), search=(), also=(), page=1)


def without_filters(query: Query) -> Query:
    """Only the full-text terms (a broader query to suggest)."""
    return Query(terms=query.terms, kinds=query.kinds, search=query.search, also=query.also)
