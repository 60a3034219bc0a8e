"""The dispatcher: help, unknown users and commands, roles, and errors that never escape."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.context import Context, UserError
from bot.db import make_session_factory
from bot.domain import Platform
from bot.messages import Reply, Request
from bot.models import Partner
from bot.router import Router
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


@pytest.mark.parametrize("failure", [RuntimeError("a fault"), UserError("Not like that.")])
def test_a_read_only_command_that_fails_leaves_nothing_behind(
    app: ScrutinyApp, engine: Engine, seed: Seed, failure: Exception
) -> None:
    """A read-only command runs without a savepoint; when its handler fails, the whole unit is
    rolled back, so an object it added is never written (and the next command still answers)."""
    router = Router("failing")

    @router.command("breaks", summary="Breaks.", writes=False)
    def breaks(request: Request, ctx: Context) -> Reply:
        ctx.session.add(Partner(slug="left-behind", name="Left", name_cy="Ar ôl"))
        raise failure

    app.register(router)
    out = ask(app, "sian-hughes", "breaks")

    expected = str(failure) if isinstance(failure, UserError) else "Something went wrong"
    assert expected in out
    with make_session_factory(engine)() as session:
        assert session.scalar(select(Partner).where(Partner.slug == "left-behind")) is None
    assert "SB-2026-031" in ask(app, "sian-hughes", "decision SB-2026-031")


def test_a_read_only_command_takes_no_savepoint(
    app: ScrutinyApp, engine: Engine, session: Session, seed: Seed
) -> None:
    statements: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        out = ask(app, "sian-hughes", "decision SB-2026-031")
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert "SB-2026-031" in out
    assert statements and not [s for s in statements if "SAVEPOINT" in s.upper()]
