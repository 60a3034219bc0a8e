"""`scrutiny-bot db`: the database schema."""

from __future__ import annotations

import typer

from bot.cli.output import echo
from bot.cli.startup import settings_or_exit
from bot.i18n import _

db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Create or update the database schema to the latest migration."""
    from bot.db import head_revision, make_engine, migrate, schema_revision

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    before = schema_revision(engine)
    migrate(engine)
    if before == head_revision():
        echo(_("Database schema is up to date."))
    else:
        echo(_("Database schema upgraded to the latest migration."))
