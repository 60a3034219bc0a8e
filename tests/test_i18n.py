"""Gettext from the start: strings in code and templates are extractable; dates read naturally."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir

from bot.i18n import Translator

ROOT = Path(__file__).resolve().parent.parent


def _extracted() -> set[str]:
    method_map = [
        ("bot/**.py", "python"),
        ("handlers/**.py", "python"),
        ("templates/**.j2", "jinja2"),
    ]
    options = {"templates/**.j2": {"extensions": "jinja2.ext.i18n", "trim_blocks": "true"}}
    found: set[str] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT),
        method_map,
        options_map=options,
        keywords={"_": None, "N_": None, "ngettext": (1, 2)},
    ):
        found.update([message] if isinstance(message, str) else [m for m in message if m])
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
