"""`scrutiny-bot import`: records from a file, or the .xlsx template to fill in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bot.cli.output import echo, refuse_config
from bot.cli.startup import settings_or_exit
from bot.i18n import _, ngettext
from bot.text_input import terminal_safe

if TYPE_CHECKING:
    pass


def _write_import_template(kind: str, out: Path | None) -> None:
    """`import template KIND [--out FILE]`: write the .xlsx template for KIND."""
    from bot.db import make_engine, make_session_factory
    from bot.imports import KINDS
    from bot.imports.template import write_template
    from bot.services.file_imports import template_lists

    if kind not in KINDS:
        message = _('Unknown kind "{kind}": use one of {kinds}.')
        echo(message.format(kind=kind, kinds=", ".join(KINDS)), err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    partners, boards = template_lists(make_session_factory(make_engine(settings.database_url)))
    path = out or Path(f"{kind}-template.xlsx")
    if path.suffix.lower() != ".xlsx":
        echo(_("{file}: a template is written as .xlsx.").format(file=path), err=True)
        raise typer.Exit(2)
    write_template(KINDS[kind], path, partners=partners, boards=boards)
    echo(
        _(
            "Wrote {file}: fill in a row per {kind} (the second row is an example), then "
            "scrutiny-bot import {kind} {file}"
        ).format(file=path, kind=kind)
    )
    if not partners:
        echo(
            _(
                "The collaboration is not loaded, so the partner and board lists are empty: "
                "run scrutiny-bot config load first."
            ),
            err=True,
        )


def import_records(
    kind: str = typer.Argument(
        ...,
        help=_(
            "actions, decisions, meetings, answers or attendance; or template, to write an .xlsx "
            "to fill in (import template actions)"
        ),
    ),
    file: Path = typer.Argument(
        ...,
        help=_("A .csv or .xlsx file (meetings also .ics); after template, the kind."),
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help=_("Check and count; write nothing.")),
    sheet: str | None = typer.Option(
        None,
        "--sheet",
        help=_("The worksheet of an .xlsx file to read (default: the first visible one)."),
        show_default=False,
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help=_("Where import template writes its .xlsx (default: KIND-template.xlsx)."),
        show_default=False,
    ),
) -> None:
    """Import records from a file: every row or none; importing it again changes nothing."""
    import getpass

    from sqlalchemy.exc import SQLAlchemyError

    from bot.collaboration.problems import ConfigError
    from bot.db import make_engine, make_session_factory, migrate
    from bot.imports import KINDS, PROGRESS_EVERY, ImportRejected, suffixes_for
    from bot.services.file_imports import CollaborationNotLoaded, run_import

    if kind == "template":
        _write_import_template(str(file), out)
        return
    if kind not in KINDS:
        message = _('Unknown kind "{kind}": use one of {kinds}.')
        echo(message.format(kind=kind, kinds=", ".join(KINDS)), err=True)
        raise typer.Exit(2)
    if file.suffix.lower() not in suffixes_for(kind):
        message = _("{file}: {kind} can be imported from {types} files only.")
        types = ", ".join(suffixes_for(kind))
        echo(message.format(file=file.name, kind=kind, types=types), err=True)
        raise typer.Exit(2)
    if not file.is_file():
        echo(_("{file}: no such file.").format(file=file), err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        actor = f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        actor = "cli"

    unfinished_line: list[bool] = [False]

    def show_progress(done: int, total: int) -> None:
        if total > PROGRESS_EVERY:
            line = _("{file}: {done} of {total} rows checked")
            line = line.format(file=file.name, done=done, total=total)
            end = "\n" if done == total else ""
            typer.echo("\r" + terminal_safe(line) + end, err=True, nl=False)
            unfinished_line[0] = done != total

    try:
        outcome = run_import(
            make_session_factory(engine), settings, kind, file,
            actor=actor, dry_run=dry_run, sheet=sheet, progress=show_progress,
        )  # fmt: skip
    except ConfigError as error:
        refuse_config(error.problems, settings.scrutiny_config, err=True)
    except CollaborationNotLoaded:
        echo(_("Load the collaboration first: scrutiny-bot config load"), err=True)
        raise typer.Exit(1) from None
    except ImportRejected as rejected:
        if unfinished_line[0]:
            echo("", err=True)
        for problem in rejected.problems:
            echo(str(problem), err=True)
        echo(str(rejected), err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as error:
        message = _("The database refused the import, so nothing was written: {error}")
        echo(message.format(error=error), err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    report = outcome.report
    for notice in report.problems:
        echo(_("Note: {notice}").format(notice=notice))
    if outcome.answer_posts is not None:
        queued = outcome.answer_posts
        echo(
            ngettext(
                "{count} answer post queued for the partners' channels.",
                "{count} answer posts queued for the partners' channels.",
                queued,
            ).format(count=queued)
        )
    if dry_run:
        summary = _("Dry run: would import {file}: {created} created, {updated} updated, "
                    "{unchanged} unchanged.")  # fmt: skip
    else:
        summary = _("Imported {file}: {created} created, {updated} updated, {unchanged} unchanged.")
    counts = {"created": report.created, "updated": report.updated, "unchanged": report.unchanged}
    echo(summary.format(file=file.name, **counts))
