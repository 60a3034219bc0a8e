"""Gettext from the start: strings in code and templates are extractable; dates read naturally."""

from __future__ import annotations

from datetime import UTC, date, datetime

from bot.catalogue import extract
from bot.i18n import Translator


def _extracted() -> set[str]:
    found: set[str] = set()
    for message in extract():
        found.update([message.id] if isinstance(message.id, str) else message.id)
    return found


def test_code_and_template_strings_are_extractable_for_translation() -> None:
    messages = _extracted()
    assert (
        "I don't know you yet. Ask the SRS secretariat (%(channel)s) to add you as a member."
        in messages
    )
    assert "Show the commands you can use." in messages  # router summaries, marked with N_
    assert "Only members with the role {roles} can do that." in messages


def test_dates_and_times_in_english_and_welsh() -> None:
    when = datetime(2026, 6, 16, 8, 30, tzinfo=UTC)  # 9:30am BST
    assert Translator("en").datetime(when) == "Tuesday 16 June 2026, 9:30am"
    assert Translator("cy").datetime(when) == "Dydd Mawrth 16 Mehefin 2026, 9:30yb"
    assert Translator("cy").time(datetime(2026, 12, 3, 14, 0, tzinfo=UTC)) == "2:00yh"
    assert Translator("en").date(date(2026, 11, 23)) == "Monday 23 November 2026"
