"""The `scrutiny-bot` application: every command group and top-level command, in the order
`--help` lists them. The commands live in one module per group and import their feature lazily,
so start-up stays quick."""

from __future__ import annotations

import sys

import typer

from bot.cli.config import config_cli
from bot.cli.database import db_cli
from bot.cli.digest import digest_cli
from bot.cli.i18n import i18n_cli
from bot.cli.imports import import_records
from bot.cli.logs import audit_log, deliveries_cli
from bot.cli.questions import questions_cli
from bot.cli.remind import remind_cli
from bot.cli.serving import console, run, serve, worker
from bot.cli.teams import calendar_cli, sync_cli, teams_cli

cli = typer.Typer(
    name="scrutiny-bot",
    help="Joint-scrutiny bot for the SRS boards: Slack, Teams and a local console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.add_typer(db_cli, name="db")
cli.add_typer(config_cli, name="config")
cli.command("import")(import_records)
cli.command("serve")(serve)
cli.command("run")(run)
cli.command("console")(console)
cli.add_typer(digest_cli, name="digest")
cli.add_typer(remind_cli, name="remind")
cli.command("worker")(worker)
cli.add_typer(deliveries_cli, name="deliveries")
cli.command("audit")(audit_log)
cli.add_typer(questions_cli, name="questions")
cli.add_typer(teams_cli, name="teams")
cli.add_typer(calendar_cli, name="calendar")
cli.add_typer(sync_cli, name="sync")
cli.add_typer(i18n_cli, name="i18n")


def main() -> None:
    """Console-script entry point."""
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
