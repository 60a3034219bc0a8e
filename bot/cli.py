"""The `scrutiny-bot` command line. Commands import their feature lazily so start-up stays quick."""

from __future__ import annotations

import logging
import sys

import typer

from bot.i18n import _
from bot.settings import Settings, SettingsError, load_settings

cli = typer.Typer(
    name="scrutiny-bot",
    help="Joint-scrutiny bot for the SRS boards: Slack, Teams and a local console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
config_cli = typer.Typer(help="The collaboration file (partners, boards, members, channels).", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(config_cli, name="config")


def settings_or_exit() -> Settings:
    """Read settings once; on a bad setting print its name and exit with status 2."""
    try:
        settings = load_settings()
    except SettingsError as problem:
        typer.echo(str(problem), err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return settings


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or update the database schema to the latest migration."""
    from bot.db import make_engine, migrate

    settings = settings_or_exit()
    migrate(make_engine(settings.database_url))
    typer.echo(_("Database schema is up to date."))


def main() -> None:
    """Console-script entry point."""
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
