"""Gettext for every user-facing string, and dates and times in English and Welsh.

Catalogues live in `locale/<lang>/LC_MESSAGES/messages.po`; they are compiled in memory when
first used, so no build step is needed and a missing catalogue falls back to English.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
import io
import os
import re
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES = ("en", "cy")
_BABEL_LOCALE = {"en": "en_GB", "cy": "cy"}
# CLDR gives Welsh no short am/pm; Welsh style guides use yb (y bore) and yh (yr hwyr).
_PERIODS = {"en": ("am", "pm"), "cy": ("yb", "yh")}


@cache
def translations(language: str) -> _gettext.NullTranslations:
    """The catalogue for a language; English (the source strings) when there is none."""
    po_path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po_path.exists():
        return _gettext.NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


_WELSH_DAYS = "Llun|Mawrth|Mercher|Iau|Gwener|Sadwrn|Sul"
_SOFTENING_BEFORE_DAY = re.compile(
    rf"(?<![\w'’])(tan|Tan|ar|Ar|o|O|i|I|am|Am|dros|Dros|drwy|Drwy|trwy|Trwy|wrth|Wrth|heb|Heb|hyd|Hyd)"
    rf"(\s+)Dydd(\s+)({_WELSH_DAYS})\b"
)
_PLAIN_BEFORE_DAY = re.compile(
    rf"(?<![\w'’])(ers|Ers|erbyn|Erbyn|cyn|Cyn)(\s+)Dydd(\s+)({_WELSH_DAYS})\b"
)


def welsh_day_mutations(text: str) -> str:
    """Mutate the day names our date formatter writes ("Dydd Gwener ...") after a preposition.

    A translation can put a date placeholder after a preposition ("tan %(when)s"), but the
    formatted date cannot know it: "tan Dydd Gwener" must read "tan ddydd Gwener" (soft
    mutation after tan, ar, o, i, am, dros, drwy, wrth, heb, hyd), and after the prepositions
    that do not mutate (ers, erbyn, cyn) "dydd" is lower case mid-sentence. Only "Dydd" followed
    by a day's name is touched, so names and other text are left as they are.
    """
    text = _SOFTENING_BEFORE_DAY.sub(r"\1\2ddydd\3\4", text)
    return _PLAIN_BEFORE_DAY.sub(r"\1\2dydd\3\4", text)


def default_language() -> str:
    """The language of CLI output: SCRUTINY_LANGUAGE, else English."""
    language = os.environ.get("SCRUTINY_LANGUAGE", "en")
    return language if language in LANGUAGES else "en"


def N_(message: str) -> str:
    """Mark a string for extraction without translating it yet (translated where it is shown)."""
    return message


def _(message: str) -> str:
    """Translate a message into the process's default language (CLI output, logs for people)."""
    return translations(default_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Plural-aware translation into the process's default language."""
    return translations(default_language()).ngettext(singular, plural, n)


DEFAULT_COMMAND_PREFIX = "/scrutiny"
"""The slash command in Slack and the console."""


class Translator:
    """Translation and date formatting bound to one language, handed to handlers and templates."""

    def __init__(
        self, language: str, tz: ZoneInfo | None = None, cmd: str = DEFAULT_COMMAND_PREFIX
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(
                f"unsupported language {language!r}; use one of {', '.join(LANGUAGES)}"
            )
        self.language = language
        self.tz = tz or ZoneInfo("Europe/London")
        self.cmd = cmd
        """How the reader starts a command on their platform ("/scrutiny" or "@Scrutiny")."""
        self._catalogue = translations(language)

    def _(self, message: str) -> str:
        """Translate one message."""
        return self._catalogue.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        """Translate a message whose form depends on a count (Welsh has six forms)."""
        return self._catalogue.ngettext(singular, plural, n)

    def grammar(self, text: str) -> str:
        """Finished text with the mutations a formatted date needs after a preposition (Welsh;
        English text is returned as it is). Templates do this for every printed expression."""
        return welsh_day_mutations(text) if self.language == "cy" else text

    def date(self, value: dt.date) -> str:
        """'Tuesday 16 June 2026' / 'Dydd Mawrth 16 Mehefin 2026'."""
        return _babel_date(value, "EEEE d MMMM y", locale=_BABEL_LOCALE[self.language])

    def short_date(self, value: dt.date) -> str:
        """'16 Jun' / '16 Meh' for dense lists."""
        # CLDR's en_GB abbreviates September as "Sept"; GOV.UK style and our users write "Sep".
        locale = "en" if self.language == "en" else _BABEL_LOCALE[self.language]
        return _babel_date(value, "d MMM", locale=locale)

    def time(self, value: dt.datetime) -> str:
        """'9:30am' / '9:30yb' in local wall-clock time."""
        local = value.astimezone(self.tz) if value.tzinfo else value
        hour = local.hour % 12 or 12
        period = _PERIODS[self.language][0 if local.hour < 12 else 1]
        return f"{hour}:{local.minute:02d}{period}"

    def datetime(self, value: dt.datetime) -> str:
        """'Tuesday 16 June 2026, 9:30am' in local wall-clock time."""
        local = value.astimezone(self.tz) if value.tzinfo else value
        return f"{self.date(local.date())}, {self.time(local)}"
