"""`scrutiny-bot teams`, `calendar` and `sync`: the Teams app package, the sign-in that reads
group calendars, and the Microsoft 365 sync."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.output import echo, refuse_config
from bot.cli.startup import settings_or_exit
from bot.i18n import _
from bot.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime


teams_cli = typer.Typer(help="Microsoft Teams.", no_args_is_help=True)
calendar_cli = typer.Typer(
    help="Reading Microsoft 365 group calendars for the sync.", no_args_is_help=True
)
sync_cli = typer.Typer(help="Synchronise records from elsewhere.", no_args_is_help=True)


def _graph_required(settings: Settings) -> None:
    if not settings.graph_ready:
        message = _("Set GRAPH_TENANT_ID and GRAPH_CLIENT_ID first (see docs/teams.md).")
        echo(message, err=True)
        raise typer.Exit(2)


@calendar_cli.command("login")
def calendar_login() -> None:
    """Sign in once (device code) as the account whose group calendars `sync graph` reads:
    read-only (Group.Read.All); the bot never posts as it."""

    from bot.microsoft365.graph import login

    settings = settings_or_exit()
    _graph_required(settings)

    def show(url: str, code: str, expires: datetime) -> None:
        echo(
            _(
                "Sign in at {url} with the code {code}, as an account that is a member of "
                "the groups whose calendars the sync reads. The bot only reads their "
                "calendars with it (Group.Read.All); it never posts as this account."
            ).format(url=url, code=code)
        )

    try:
        path = login(settings, show)
    except Exception as error:  # azure-identity reports sign-in failures with assorted types
        echo(_("Sign-in failed: {error}").format(error=error), err=True)
        raise typer.Exit(1) from None
    echo(
        _(
            "Signed in; sync graph reads group calendars as this account, recorded in {file}."
        ).format(file=path)
    )


@teams_cli.command("package")
def teams_package(
    out: Path = typer.Option(
        Path("scrutiny-teams-app.zip"), "--out", help=_("Where to write the zip.")
    ),
) -> None:
    """Write the Teams app package (manifest, icons, Welsh strings) an administrator uploads."""
    from bot.collaboration import ConfigError, load_collaboration
    from bot.platforms.teams.app_package import PackageRefused, build_package

    settings = settings_or_exit()
    try:
        package = build_package(settings, load_collaboration(settings.scrutiny_config))
    except (PackageRefused, ConfigError) as refused:
        echo(str(refused), err=True)
        raise typer.Exit(2) from None
    out.write_bytes(package)
    echo(
        _("Wrote {file}: upload it in the Teams admin centre (see docs/teams.md).").format(file=out)
    )


@sync_cli.command("graph")
def sync_graph_command(
    dry_run: bool = typer.Option(False, "--dry-run", help=_("Check and count; write nothing.")),
) -> None:
    """Read meetings, decisions and actions from Microsoft 365 and upsert them by ref."""
    from bot.collaboration import ConfigError
    from bot.db import make_engine, make_session_factory, migrate
    from bot.microsoft365.graph import sync_from_settings
    from bot.services.graph_sync import SyncFailed, graph_config

    settings = settings_or_exit()
    _graph_required(settings)
    try:
        config = graph_config(settings.scrutiny_config)
    except ConfigError as error:
        refuse_config(error.problems, settings.scrutiny_config, err=True)
    if config is None:
        echo(
            _("{file} has no graph: section, so there is nothing to read.").format(
                file=settings.scrutiny_config
            ),
            err=True,
        )
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        report = sync_from_settings(settings, make_session_factory(engine), config, dry_run=dry_run)
    except SyncFailed as failure:
        echo(_("Nothing was written: {error}").format(error=failure), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    for kind, done in report.imported.items():
        echo(
            _("{kind}: {created} created, {updated} updated, {unchanged} unchanged.").format(
                kind=kind, created=done.created, updated=done.updated, unchanged=done.unchanged
            )
        )
        for notice in done.problems:
            echo(_("Note: {notice}").format(notice=notice))
    for kind, problems in report.refused.items():
        for problem in problems:
            echo(str(problem), err=True)
        echo(
            _("{kind}: nothing was written ({count} problems).").format(
                kind=kind, count=len(problems)
            ),
            err=True,
        )
    if not report.ok:
        raise typer.Exit(1)
