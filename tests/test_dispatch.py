"""The dispatcher: help, unknown users and commands, roles, and errors that never escape."""

from __future__ import annotations

from bot.app import ScrutinyApp
from bot.domain import Platform
from bot.messages import Request
from tests.conftest import NOW
from tests.factories import Seed


def ask(app: ScrutinyApp, user: str, text: str, platform: Platform = Platform.CONSOLE) -> str:
    return app.dispatch(Request(platform=platform, user_id=user, text=text, now=NOW)).text


def test_help_lists_registered_commands(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "help")
    assert "/scrutiny help" in out
    assert "Sian Hughes" in out


def test_empty_text_shows_help(app: ScrutinyApp, seed: Seed) -> None:
    assert "/scrutiny help" in ask(app, "sian-hughes", "")


def test_unknown_user_is_refused_politely_naming_the_secretariat(
    app: ScrutinyApp, seed: Seed
) -> None:
    out = ask(app, "U999", "help", Platform.SLACK)
    assert "I don't know you yet" in out
    assert "#srs-secretariat" in out


def test_unknown_command_suggests_close_names(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "hlep")
    assert "“hlep”" in out
    assert "help" in out
