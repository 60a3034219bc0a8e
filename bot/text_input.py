"""Text people type or import: the one place that cleans or refuses hidden characters, holds
the length limit of every free-text field, and reads numbers typed in chat.

Every door uses `clean`: chat commands (the dispatcher), form fields (Slack modals, buttons),
the console, the CLI and every import. What it does with each kind of character:

- kept: printable text, newline and tab (a single-line field refuses line breaks and turns
  tabs into spaces);
- turned into a newline: CR LF, CR, vertical tab and form feed (Word's Shift+Enter and page
  break), NEL, and the Unicode line and paragraph separators;
- dropped: the byte-order mark U+FEFF (spreadsheets and Word put it at the start of a paste);
- refused, with the field and the character named: every other C0 control (NUL, ESC, BEL,
  backspace...), DEL, the C1 controls U+0080-U+009F, the bidirectional overrides, embeddings and
  isolates U+202A-U+202E and U+2066-U+2069 (they make text read differently from how it is
  stored), lone surrogates and the non-characters U+FFFE and U+FFFF. These have no place in a
  question, a decision or a reminder, and once stored they break the Word pack, Slack, Teams or
  the operator's terminal; refusing them says so at once instead of changing the text silently.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.i18n import N_

# -- character classes -------------------------------------------------------------------------
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_DROPPED = re.compile("\ufeff")
_REFUSED = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f\x80-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]"
)
_UNSAFE_OUTPUT = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ufffe\uffff\ud800-\udfff]"
)
_NAMES = {
    "\x00": "NUL",
    "\x07": "BEL",
    "\x08": "BS",
    "\x1b": "ESC",
    "\x7f": "DEL",
}


def character_name(char: str) -> str:
    """How an error message names a hidden character: 'ESC (U+001B)'."""
    code = f"U+{ord(char):04X}"
    name = _NAMES.get(char) or unicodedata.name(char, "")
    return f"{name} ({code})" if name else code


# -- fields and their limits -------------------------------------------------------------------
@dataclass(frozen=True)
class TextField:
    """A free-text field: its name in messages (translated where shown), longest length in
    characters, and whether it may hold several lines."""

    key: str
    label: str
    limit: int
    multiline: bool = False


MESSAGE = TextField("message", N_("Your message"), 30000, multiline=True)
"""A whole chat command as typed: room for the longest answer and its command words."""
FORM_VALUE = TextField("value", N_("This field"), 30000, multiline=True)
"""Any form or button value before its own field's check (which is stricter)."""
QUESTION = TextField("question", N_("Question"), 2000, multiline=True)
REASON = TextField("reason", N_("Reason"), 1000)
ANSWER = TextField("answer", N_("Answer"), 20000, multiline=True)
ANSWERED_BY = TextField("answered_by", N_("Answered by"), 200)
REF = TextField("ref", N_("Reference"), 32)
QUESTION_REF = TextField("question_ref", N_("Question reference"), 40)
TITLE = TextField("title", N_("Title"), 500)
SUMMARY = TextField("summary", N_("Summary"), 3000, multiline=True)
TITLE_CY = TextField("title_cy", N_("Welsh title"), 500)
SUMMARY_CY = TextField("summary_cy", N_("Welsh summary"), 3000, multiline=True)
LOCATION_CY = TextField("location_cy", N_("Welsh location"), 300)
NOTE = TextField("note", N_("Update note"), 3000, multiline=True)
OWNER = TextField("owner", N_("Owner"), 200)
THEME = TextField("theme", N_("Theme"), 200)
LINK = TextField("link", N_("Link"), 1000)
LOCATION = TextField("location", N_("Location"), 300)
CALENDAR_UID = TextField("source_uid", N_("Calendar event id"), 255)
REMINDER = TextField("text", N_("Reminder text"), 1000, multiline=True)
"""Every limit in one table: chat, forms and imports check the same numbers. Titles, refs,
owners, themes, locations and links are the database columns' lengths; a summary or an update
note is kept within one Slack section (3,000 characters)."""


class TextRefused(ValueError):
    """Text that `clean` will not accept; `describe` says what is wrong and how to fix it."""

    def __init__(self, field: TextField, problem: str, **params: Any) -> None:
        self.field = field
        self.problem = problem
        """'control', 'line_break' or 'too_long'."""
        self.params = params
        super().__init__(self.message(lambda message: message))

    def describe(self, gettext: Callable[[str], str]) -> tuple[str, str]:
        """(what is wrong, how to fix it), translated by `gettext`."""
        if self.problem == "control":
            what = N_("contains a hidden control character, {name}, at character {position}")
            fix = N_("retype the value without hidden characters (paste it as plain text)")
        elif self.problem == "line_break":
            what, fix = N_("contains a line break"), N_("put the value on one line")
        else:
            what = N_("too long ({length} characters)")
            fix = N_("shorten it to at most {limit} characters")
        return gettext(what).format(**self.params), gettext(fix).format(**self.params)

    def message(self, gettext: Callable[[str], str]) -> str:
        """One sentence naming the field: 'Question: contains a hidden control character ...'."""
        what, fix = self.describe(gettext)
        return f"{gettext(self.field.label)}: {what}; {fix}."


def clean(value: str, field: TextField) -> str:
    """`value` with line breaks made newlines and the byte-order mark dropped, surrounding
    spaces removed; raises `TextRefused` for a hidden control character, a line break in a
    single-line field, or more than the field's limit."""
    text = _DROPPED.sub("", _LINE_BREAKS.sub("\n", value))
    refused = _REFUSED.search(text)
    if refused is not None:
        raise TextRefused(
            field,
            "control",
            name=character_name(refused.group()),
            position=f"{refused.start() + 1:,}",
        )
    text = text.strip()
    if not field.multiline:
        if "\n" in text:
            raise TextRefused(field, "line_break")
        text = text.replace("\t", " ")
    if len(text) > field.limit:
        raise TextRefused(field, "too_long", length=f"{len(text):,}", limit=f"{field.limit:,}")
    return text


def clean_values(values: dict[str, Any]) -> dict[str, Any]:
    """Form or button values with every text cleaned (`FORM_VALUE`); raises `TextRefused`
    whose field key is the form field's name."""
    cleaned: dict[str, Any] = {}
    for name, value in values.items():
        field = TextField(str(name), str(name), FORM_VALUE.limit, multiline=True)
        if isinstance(value, str):
            cleaned[name] = _clean_kept(value, field)
        elif isinstance(value, list):
            cleaned[name] = [_clean_kept(v, field) if isinstance(v, str) else v for v in value]
        else:
            cleaned[name] = value
    return cleaned


def _clean_kept(value: str, field: TextField) -> str:
    """`clean` without stripping: a form value's own check decides about spaces."""
    clean(value, field)
    return _DROPPED.sub("", _LINE_BREAKS.sub("\n", value))


# -- links -------------------------------------------------------------------------------------
_WEB_LINK = re.compile(r"https?://[^\s|<>\x00-\x1f\x7f]+", re.IGNORECASE)


def is_web_link(value: str) -> bool:
    """Whether `value` is an http(s) address with a host, and nothing a chat tool reads as
    markup: no spaces, `|`, `<` or `>` (in Slack `<url|label>` would let whoever records the
    link choose the label readers see)."""
    if not _WEB_LINK.fullmatch(value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


# -- numbers -----------------------------------------------------------------------------------
NUMBER_MAX = 999_999
"""The largest number typed in chat (a page, a count, a meeting or reminder id): well inside
every database's integer column, and far more than any list here will ever hold."""
_DIGITS = re.compile(r"[0-9]{1,9}")


def whole_number(word: str, maximum: int = NUMBER_MAX) -> int | None:
    """The whole number `word` is, if it is ASCII digits only and at most `maximum`; None
    otherwise ('²', '٣', '1e9' and '99999999999999999999' are not numbers here)."""
    if not _DIGITS.fullmatch(word):
        return None
    number = int(word)
    return number if number <= maximum else None


# -- output ------------------------------------------------------------------------------------
def terminal_safe(text: str) -> str:
    """`text` safe to print to a terminal or a log: newlines and tabs kept, CR LF made a
    newline, every other control character (ESC sequences, CR, C1, bidi overrides) shown as a
    visible escape such as \\x1b, so nothing can move the cursor, clear the screen or
    reorder what the operator reads."""
    text = text.replace("\r\n", "\n")
    return _UNSAFE_OUTPUT.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


def pack_safe(text: str) -> str:
    """`text` as stored (perhaps before these checks existed) made safe for a document: line
    breaks made newlines, refused characters dropped. Never raises."""
    text = _DROPPED.sub("", _LINE_BREAKS.sub("\n", text))
    return _REFUSED.sub("", text)
