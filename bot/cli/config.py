"""`scrutiny-bot config`: check a collaboration file, or apply it to the database."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.cli.output import echo, refuse_config
from bot.cli.startup import settings_or_exit
from bot.i18n import _

config_cli = typer.Typer(
    help="The collaboration file (partners, boards, members, channels).", no_args_is_help=True
)


@config_cli.command("check")
def config_check(
    file: Path | None = typer.Argument(
        None, help=_("The collaboration file (default: SCRUTINY_CONFIG)"), show_default=False
    ),
) -> None:
    """Check a collaboration file: every problem with its line, key and a hint."""
    from bot.collaboration.load import load_collaboration
    from bot.collaboration.problems import ConfigError
    from bot.collaboration.schema import summarise

    path = file if file is not None else settings_or_exit().scrutiny_config
    try:
        collaboration = load_collaboration(path)
    except ConfigError as error:
        refuse_config(error.problems, path, err=False)
    echo(_("{file} is valid: {counts}.").format(file=path, counts=summarise(collaboration)))


@config_cli.command("load")
def config_load(
    file: Path | None = typer.Argument(
        None, help=_("The collaboration file (default: SCRUTINY_CONFIG)"), show_default=False
    ),
) -> None:
    """Apply a collaboration file to the database: all of it or nothing, audited, idempotent."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.collaboration.apply import apply_collaboration
    from bot.collaboration.load import load_collaboration
    from bot.collaboration.problems import ConfigError
    from bot.collaboration.schema import summarise
    from bot.db import make_engine, make_session_factory, migrate, unit_of_work

    settings = settings_or_exit()
    path = file if file is not None else settings.scrutiny_config
    try:
        collaboration = load_collaboration(path)
    except ConfigError as error:
        refuse_config(error.problems, path, err=True)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with unit_of_work(make_session_factory(engine)) as session:
            summary = apply_collaboration(session, collaboration)
    except ConfigError as error:
        refuse_config(error.problems, path, err=True)
    except SQLAlchemyError as error:
        echo(
            _("The database refused the change, so nothing was written: {error}").format(
                error=error
            ),
            err=True,
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    echo(_("Loaded {file}: {counts}.").format(file=path, counts=summarise(collaboration)))
    for line in summary.lines():
        echo(line)
