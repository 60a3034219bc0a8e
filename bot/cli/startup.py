"""What a command starts from: the settings, or the bot built from them, or an exit status saying
what to fix."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

import typer

from bot.cli.output import TerminalSafeFormatter, echo
from bot.i18n import _
from bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from bot.app import ScrutinyApp


def app_or_exit() -> ScrutinyApp:
    """The bot built from the settings (exit status 2 on a bad setting)."""
    from bot.app import create_app

    return create_app(settings_or_exit())


def ready_app_or_exit(settings: Settings | None = None) -> ScrutinyApp:
    """The bot on a database whose schema is brought up to date first (`serve` and `worker`
    start ready); exit status 1 with what to check when the database cannot be migrated."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.app import create_app
    from bot.db import make_engine, migrate

    settings = settings or settings_or_exit()
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
    except SQLAlchemyError as error:
        refuse_database(error)
    return create_app(settings, engine)


def refuse_database(error: Exception) -> NoReturn:
    cause = str(getattr(error, "orig", None) or error).strip().splitlines()
    typer.echo(
        _(
            "Cannot bring the database schema up to date: {error}. Check DATABASE_URL, "
            "then run `scrutiny-bot db upgrade`."
        ).format(error=cause[0] if cause else type(error).__name__),
        err=True,
    )
    raise typer.Exit(1) from None


def settings_or_exit() -> Settings:
    """Read settings once; on a bad setting print its name and exit with status 2."""
    try:
        settings = load_settings()
    except SettingsError as problem:
        echo(str(problem), err=True)
        raise typer.Exit(2) from None
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    return settings
