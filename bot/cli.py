"""The `scrutiny-bot` command line. Commands import their feature lazily so start-up stays quick."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from bot.clock import CLOCK
from bot.i18n import _, ngettext
from bot.settings import Settings, SettingsError, load_settings
from bot.text_input import terminal_safe

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from bot.app import ScrutinyApp
    from bot.collaboration import ConfigProblem

cli = typer.Typer(
    name="scrutiny-bot",
    help="Joint-scrutiny bot for the SRS boards: Slack, Teams and a local console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
config_cli = typer.Typer(
    help="The collaboration file (partners, boards, members, channels).", no_args_is_help=True
)
cli.add_typer(db_cli, name="db")
cli.add_typer(config_cli, name="config")


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
        _refuse_database(error)
    return create_app(settings, engine)


def _refuse_database(error: Exception) -> NoReturn:
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


class TerminalSafeFormatter(logging.Formatter):
    """Log lines may quote what people typed: made safe for the terminal they are read on."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line that may carry user text (titles, questions, names): never a raw escape
    sequence or other control character (`terminal_safe`)."""
    typer.echo(terminal_safe(message), err=err, nl=nl)


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


def _refuse_config(problems: list[ConfigProblem], path: Path, *, err: bool) -> NoReturn:
    """Print every problem and the count, then exit with status 1."""
    from bot.i18n import ngettext

    for problem in problems:
        echo(str(problem), err=err)
    count = len(problems)
    echo(
        ngettext("{count} problem in {file}", "{count} problems in {file}", count).format(
            count=count, file=path
        ),
        err=err,
    )
    raise typer.Exit(1)


@config_cli.command("check")
def config_check(
    file: Path | None = typer.Argument(
        None, help=_("The collaboration file (default: SCRUTINY_CONFIG)"), show_default=False
    ),
) -> None:
    """Check a collaboration file: every problem with its line, key and a hint."""
    from bot.collaboration import ConfigError, load_collaboration, summarise

    path = file if file is not None else settings_or_exit().scrutiny_config
    try:
        collaboration = load_collaboration(path)
    except ConfigError as error:
        _refuse_config(error.problems, path, err=False)
    echo(_("{file} is valid: {counts}.").format(file=path, counts=summarise(collaboration)))


@config_cli.command("load")
def config_load(
    file: Path | None = typer.Argument(
        None, help=_("The collaboration file (default: SCRUTINY_CONFIG)"), show_default=False
    ),
) -> None:
    """Apply a collaboration file to the database: all of it or nothing, audited, idempotent."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.collaboration import ConfigError, apply_collaboration, load_collaboration, summarise
    from bot.db import make_engine, make_session_factory, migrate, unit_of_work

    settings = settings_or_exit()
    path = file if file is not None else settings.scrutiny_config
    try:
        collaboration = load_collaboration(path)
    except ConfigError as error:
        _refuse_config(error.problems, path, err=True)
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with unit_of_work(make_session_factory(engine)) as session:
            summary = apply_collaboration(session, collaboration)
    except ConfigError as error:
        _refuse_config(error.problems, path, err=True)
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


def _import_column_map(settings: Settings, kind: str) -> dict[str, str]:
    """The collaboration file's own header names for `kind` (its `imports:` section); a file
    with problems stops the import with them, as `config check` would list them."""
    from bot.collaboration import ConfigError, load_collaboration

    path = settings.scrutiny_config
    if not path.is_file():
        return {}
    try:
        collaboration = load_collaboration(path)
    except ConfigError as error:
        _refuse_config(error.problems, path, err=True)
    return dict(collaboration.imports.get(kind, {}))


def _write_import_template(kind: str, out: Path | None) -> None:
    """`import template KIND [--out FILE]`: write the .xlsx template for KIND."""
    from sqlalchemy import select

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.imports import KINDS
    from bot.imports.template import write_template
    from bot.models import Board, Partner

    if kind not in KINDS:
        message = _('Unknown kind "{kind}": use one of {kinds}.')
        echo(message.format(kind=kind, kinds=", ".join(KINDS)), err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        partners = list(session.scalars(select(Partner.slug).order_by(Partner.id)))
        boards = list(session.scalars(select(Board.slug).order_by(Board.id)))
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


@cli.command("import")
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

    from sqlalchemy import func, select
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db import make_engine, make_session_factory, migrate, unit_of_work
    from bot.imports import KINDS, PROGRESS_EVERY, ImportRejected, import_file, suffixes_for
    from bot.models import Partner

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

    column_map = _import_column_map(settings, kind)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            if not session.scalar(select(func.count()).select_from(Partner)):
                echo(_("Load the collaboration first: scrutiny-bot config load"), err=True)
                raise typer.Exit(1)
            report = import_file(
                session, kind, file, actor=actor, dry_run=dry_run,
                progress=show_progress, zone=settings.timezone, sheet=sheet,
                column_map=column_map,
            )  # fmt: skip
            if kind == "answers" and not dry_run:
                queued = _queue_answer_posts(session, settings)
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
    for notice in report.problems:
        echo(_("Note: {notice}").format(notice=notice))
    if kind == "answers" and not dry_run:
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


def _queue_answer_posts(session: Session, settings: Settings) -> int:
    """Queue the answers just imported for their partners' channels, in the import's
    transaction (each once: a repeated import queues nothing more)."""

    from bot.runtime import renderer_for
    from bot.services.question_posts import post_unposted_answers

    renderer = renderer_for(settings)
    now = CLOCK.now()
    return post_unposted_answers(session, renderer, now=now, zone=settings.timezone)


def _slack_ready(settings: Settings) -> bool:
    return bool(
        settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token)
    )


def _serve(app: ScrutinyApp, host: str, port: int | None) -> None:
    import uvicorn

    from bot.web import WebPlatform, create_web_app

    settings = app.settings
    platforms: list[WebPlatform] = []
    if _slack_ready(settings):
        from bot.platforms.slack import build_slack

        platforms.append(build_slack(app))
    if settings.teams_enabled:
        from bot.platforms.teams.webhook import build_teams

        platforms.append(build_teams(app))
    if settings.teams_bot_enabled:
        from bot.platforms.teams.sdk_bot import build_teams_bot

        platforms.append(build_teams_bot(app))
    uvicorn.run(
        create_web_app(app, platforms),
        host=host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        proxy_headers=True,
    )


def _serve_register_beside_console(app: ScrutinyApp, host: str, port: int | None) -> None:
    """Serve the web register in a daemon thread while the console runs in the foreground."""
    import uvicorn

    from bot.web import create_web_app

    config = uvicorn.Config(
        create_web_app(app, []), host=host, port=port or app.settings.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="register-web", daemon=True).start()
    echo(
        _("The register is at {url} (on this machine, sign in as an example member).").format(
            url=f"http://{host}:{port or app.settings.port}/"
        ),
        err=True,
    )


@cli.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help=_("Address to listen on.")),
    port: int | None = typer.Option(
        None, help=_("Port to listen on (default: $PORT, else 3000)."), show_default=False
    ),
) -> None:
    """Serve the chat platforms, the register and GET /healthz under uvicorn (Slack: HTTP or
    Socket Mode). Starts with the register alone when sign-in to it is configured."""
    settings = settings_or_exit()
    chat = _slack_ready(settings) or settings.teams_enabled or settings.teams_bot_enabled
    if not chat and not settings.web_signin_configured:
        echo(
            _(
                "Nothing to serve: neither a chat platform nor sign-in to the register is "
                "configured. Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN "
                "for Socket Mode) - see docs/slack.md - or TEAMS_WEBHOOK_SECRET for Teams; or "
                "WEB_ENTRA_CLIENT_ID or WEB_SLACK_CLIENT_ID to serve the register alone. To try "
                "the register on this machine, use scrutiny-bot run."
            ),
            err=True,
        )
        raise typer.Exit(2)
    if not chat:
        echo(
            _("No chat platform is configured: serving the register alone at {url}.").format(
                url=settings.web_base_url
            ),
            err=True,
        )
    _serve(ready_app_or_exit(settings), host, port)


STOP_MARGIN_SECONDS = 30.0
"""What stopping `run` allows beyond the worker's own stop bound (posts still in flight)."""


def _start_worker(
    app: ScrutinyApp, show_post: Callable[[str, str], None] | None
) -> Callable[[], None]:
    """Run the scheduler and sender in a thread; call the returned function to stop it.

    Stopping waits for the worker to finish or abandon what it is doing (bounded by its
    `stop_seconds` plus the posts in flight); the thread is a daemon, so a worker that still
    has not stopped cannot keep the process from exiting.
    """
    from bot.leader import leader_lock_for
    from bot.platforms.messengers import messengers_from_settings
    from bot.scheduler import make_worker

    messengers = messengers_from_settings(app.settings, app.sessions, console=show_post)
    runner = make_worker(app, messengers, leader_lock_for(app.engine))
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="worker", daemon=True)
    thread.start()

    def stop_worker() -> None:
        stop.set()
        thread.join(runner.stop_seconds + STOP_MARGIN_SECONDS)

    return stop_worker


@cli.command("run")
def run(
    member: str | None = typer.Option(
        None, "--as", help=_("Console: member slug to act as."), show_default=False
    ),
    channel: str | None = typer.Option(
        None, "--channel", help=_("Console: console channel slug to speak in."), show_default=False
    ),
    host: str = typer.Option("127.0.0.1", help=_("Address to listen on when serving.")),
    port: int | None = typer.Option(
        None, help=_("Port when serving (default: $PORT)."), show_default=False
    ),
    worker: bool = typer.Option(True, help=_("Also run the scheduler and sender in this process.")),
) -> None:
    """Set up the database and collaboration, then serve Slack/Teams, or open the console."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.bootstrap import prepare
    from bot.collaboration import ConfigError
    from bot.imports import ImportRejected

    settings = settings_or_exit()
    serving = _slack_ready(settings) or settings.teams_enabled or settings.teams_bot_enabled
    if not serving and settings.log_level != "DEBUG":
        # In the console, routine log lines would interleave with replies; warnings still show.
        logging.getLogger().setLevel(logging.WARNING)
    try:
        app = prepare(settings, say=lambda line: echo(line, err=True))
    except SQLAlchemyError as error:
        _refuse_database(error)
    except ConfigError as error:
        _refuse_config(error.problems, settings.scrutiny_config, err=True)
    except ImportRejected as rejected:
        for problem in rejected.problems:
            echo(str(problem), err=True)
        raise typer.Exit(1) from None
    if serving:
        stop = _start_worker(app, None) if worker else None
        try:
            _serve(app, host, port)
        finally:
            if stop is not None:
                stop()
        return
    from bot.platforms.console import Console, run_console

    _serve_register_beside_console(app, host, port)
    stops: list[Callable[[], None]] = []

    def start_worker(console: Console) -> None:
        if worker:
            stops.append(_start_worker(app, console.show_post))

    echo(
        _("No Slack or Teams credentials are set: opening the local console. Type :quit to leave."),
        err=True,
    )
    code = run_console(
        app, member, channel, sys.stdin, sys.stdout, stderr=sys.stderr, started=start_worker
    )
    for stop_worker in stops:
        stop_worker()
    raise typer.Exit(code)


@cli.command("console")
def console(
    member: str | None = typer.Option(
        None,
        "--as",
        help=_("Member slug to act as (asked for on a terminal when omitted)."),
        show_default=False,
    ),
    channel: str | None = typer.Option(
        None,
        "--channel",
        help=_("Console channel slug to speak in (default: a direct message)."),
        show_default=False,
    ),
) -> None:
    """Talk to the bot in this terminal as a member; reads commands line by line when piped."""
    from bot.platforms.console import run_console

    code = run_console(app_or_exit(), member, channel, sys.stdin, sys.stdout, stderr=sys.stderr)
    raise typer.Exit(code)


# -- schedules and the outbox (worker, deliveries, digest preview, remind) -------------------
digest_cli = typer.Typer(help="Channel digests.", no_args_is_help=True)
remind_cli = typer.Typer(help="Reminders posted to channels.", no_args_is_help=True)
cli.add_typer(digest_cli, name="digest")
cli.add_typer(remind_cli, name="remind")


@cli.command("worker")
def worker(
    once: bool = typer.Option(
        False, "--once", help=_("Run what is due and send what is waiting, then exit.")
    ),
    grace_minutes: int = typer.Option(
        60, min=1, help=_("Runs missed by more than this many minutes are skipped.")
    ),
) -> None:
    """Run the scheduler (one leader per database) and the outbox sender."""
    import signal
    import threading
    from datetime import timedelta

    from bot.leader import leader_lock_for
    from bot.platforms.messengers import messengers_from_settings
    from bot.scheduler import make_worker

    app = ready_app_or_exit()
    messengers = messengers_from_settings(app.settings, app.sessions)
    lock = leader_lock_for(app.engine)
    runner = make_worker(app, messengers, lock, grace=timedelta(minutes=grace_minutes))
    if once:
        outcome = runner.run_once()
        report = outcome.sent
        echo(
            _(
                "Sent {sent}, found already posted {found}, retrying {retrying}, "
                "deferred {deferred}, failed {failed}, cancelled {cancelled}."
            ).format(
                sent=report.sent,
                found=report.found_already_posted,
                retrying=report.retrying,
                deferred=report.deferred,
                failed=report.failed,
                cancelled=report.cancelled,
            )
        )
        if outcome.failures:
            # Everything else was sent first; the status tells cron something needs a look.
            echo(
                _("Scheduled items that could not be prepared: {refs}").format(
                    refs=", ".join(f.ref for f in outcome.failures)
                ),
                err=True,
            )
            raise typer.Exit(1)
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_args: stop.set())
    echo(
        _("Worker started; the scheduler runs while this worker holds the {lock}.").format(
            lock=lock.describe()
        )
    )
    runner.run(stop)


deliveries_cli = typer.Typer(
    help="The delivery log: what was posted where, what waits, what failed.",
    invoke_without_command=True,
)
cli.add_typer(deliveries_cli, name="deliveries")


def aligned_columns(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A header line and one line per row, each column padded to its widest cell."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in (headers, *rows)
    ]


def _since_option(value: str | None, settings: Settings) -> datetime | None:
    """`--since YYYY-MM-DD` as midnight in the collaboration's time zone (exit 2 if bad)."""
    from datetime import date as date_type
    from datetime import time as time_type

    from bot.imports.cells import at_local, date_example

    if value is None:
        return None
    try:
        day = date_type.fromisoformat(value.strip())
    except ValueError:
        echo(
            _("--since “{value}” is not a date; use YYYY-MM-DD (e.g. {example}).").format(
                value=value, example=date_example(value)
            ),
            err=True,
        )
        raise typer.Exit(2) from None
    return at_local(day, time_type(0, 0), settings.timezone)


@deliveries_cli.callback()
def deliveries(
    ctx: typer.Context,
    failed: bool = typer.Option(False, "--failed", help=_("Only deliveries that failed.")),
    state: str | None = typer.Option(
        None,
        "--state",
        help=_("Only this state: pending, sending, sent, failed or cancelled."),
        show_default=False,
    ),
    channel: str | None = typer.Option(
        None, "--channel", help=_("Only this channel (its slug)."), show_default=False
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help=_("Only posts queued on or after this date (YYYY-MM-DD)."),
        show_default=False,
    ),
    retry: int | None = typer.Option(
        None, "--retry", help=_("Queue this failed delivery again."), show_default=False
    ),
    limit: int = typer.Option(50, min=1, max=10_000, help=_("How many to list, newest first.")),
) -> None:
    """List the outbox (scheduled posts) with headers and filters, or queue a failed post again;
    `deliveries show ID` prints one post as it was posted."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.domain import DeliveryState
    from bot.outbox import retry_failed
    from bot.services import delivery_log

    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    sessions = make_session_factory(make_engine(settings.database_url))
    if retry is not None:
        with unit_of_work(sessions) as session:
            delivery = retry_failed(session, retry)
            if delivery is None:
                echo(
                    _(
                        "There is no failed or cancelled delivery {id}; "
                        "scrutiny-bot deliveries --failed lists them."
                    ).format(id=retry),
                    err=True,
                )
                raise typer.Exit(1)
            echo(
                _("Delivery {id} ({key}) is queued again; the worker sends it shortly.").format(
                    id=delivery.id, key=delivery.idempotency_key
                )
            )
        return
    wanted: DeliveryState | None = DeliveryState.FAILED if failed else None
    if state is not None:
        try:
            wanted = DeliveryState(state.strip().lower())
        except ValueError:
            echo(
                _("--state “{value}” is not a state; use one of: {states}.").format(
                    value=state, states=", ".join(s.value for s in DeliveryState)
                ),
                err=True,
            )
            raise typer.Exit(2) from None
    query = delivery_log.DeliveryFilter(
        channel=channel, state=wanted, since=_since_option(since, settings), limit=limit
    )
    with unit_of_work(sessions) as session:
        _warn_waiting(session, settings)
        try:
            rows = delivery_log.list_deliveries(session, query)
        except delivery_log.UnknownChannel as unknown:
            hint = (
                _(" Did you mean: {suggestions}?").format(
                    suggestions=", ".join(unknown.suggestions)
                )
                if unknown.suggestions
                else ""
            )
            echo(_("There is no channel “{slug}”.").format(slug=unknown.slug) + hint, err=True)
            raise typer.Exit(2) from None
        total = delivery_log.count_deliveries(session, query)
    if not rows:
        if wanted is DeliveryState.FAILED and not (query.channel or query.since):
            echo(_("No failed deliveries."))
        elif query.channel or wanted or query.since:
            echo(_("No deliveries match."))
        else:
            echo(_("The outbox is empty."))
        return
    zone = settings.timezone
    headers = (_("ID"), _("STATE"), _("TRIES"), _("CHANNEL"), _("WHEN (local)"), _("KEY"))
    table = [
        (
            str(row.id),
            row.state.value,
            str(row.attempts),
            row.channel,
            f"{row.when.astimezone(zone):%Y-%m-%d %H:%M}",
            row.key,
        )
        for row in rows
    ]
    heading, *lines = aligned_columns(headers, table)
    echo(heading)
    for row, line in zip(rows, lines, strict=True):
        echo(line)
        if row.last_error:
            echo("    " + _("error: {error}").format(error=row.last_error[:200]))
    if total > len(rows):
        echo(
            _("Showing {shown} of {total}, newest first; --limit shows more.").format(
                shown=len(rows), total=total
            )
        )


def _warn_waiting(session: Session, settings: Settings) -> None:
    """Warn on stderr about posts that wait for a platform with no credentials here."""
    from bot.services.delivery_log import waiting_without_credentials

    for platform, count in sorted(
        waiting_without_credentials(session, settings.posting_platforms).items()
    ):
        echo(
            ngettext(
                "Warning: {count} post is waiting for {platform}, which has no credentials "
                "here; it will not be sent until they are set.",
                "Warning: {count} posts are waiting for {platform}, which has no credentials "
                "here; they will not be sent until they are set.",
                count,
            ).format(count=count, platform=platform.value),
            err=True,
        )


@deliveries_cli.command("show")
def deliveries_show(
    delivery_id: int = typer.Argument(..., help=_("The delivery's ID (first column).")),
) -> None:
    """Print one post: where, when, its state and the message as posted."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.services.delivery_log import get_delivery

    settings = settings_or_exit()
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        detail = get_delivery(session, delivery_id)
    if detail is None:
        echo(_("There is no delivery {id}.").format(id=delivery_id), err=True)
        raise typer.Exit(1)
    row = detail.row
    zone = settings.timezone
    lines = [
        _("Delivery {id}: {key}").format(id=row.id, key=row.key),
        _("channel: {name} ({slug}, {platform})").format(
            name=row.channel_name, slug=row.channel, platform=row.platform.value
        ),
        ngettext(
            "state: {state}, {count} try", "state: {state}, {count} tries", row.attempts
        ).format(state=row.state.value, count=row.attempts),
        _("queued: {when}").format(when=f"{row.created_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"),
    ]
    if row.sent_at:
        lines.append(
            _("posted: {when} (message id {id})").format(
                when=f"{row.sent_at.astimezone(zone):%Y-%m-%d %H:%M %Z}",
                id=row.platform_message_id or "-",
            )
        )
    else:
        lines.append(
            _("next try: {when}").format(
                when=f"{row.next_try_at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
            )
        )
    if row.last_error:
        lines.append(_("last error: {error}").format(error=row.last_error))
    lines += ["", detail.text]
    echo("\n".join(lines))


@cli.command("audit")
def audit_log(
    ref: str | None = typer.Argument(
        None,
        help=_("Only this item (e.g. TP-014, SB-2026-014, a member's slug)."),
        show_default=False,
    ),
    actor: str | None = typer.Option(
        None,
        "--actor",
        help=_("Only changes made by this member (slug) or process."),
        show_default=False,
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help=_("Only changes on or after this date (YYYY-MM-DD)."),
        show_default=False,
    ),
    limit: int = typer.Option(50, min=1, max=200, help=_("How many to show, newest first.")),
) -> None:
    """Who changed what and when, with before and after in words (the audit log)."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.i18n import Translator
    from bot.services.history import HistoryFilter, count_history, read_history

    settings = settings_or_exit()
    query = HistoryFilter(ref=ref, actor=actor, since=_since_option(since, settings), limit=limit)
    t = Translator(settings.scrutiny_language, settings.timezone)
    with unit_of_work(make_session_factory(make_engine(settings.database_url))) as session:
        entries = read_history(session, query, t)
        total = count_history(session, query)
    if not entries:
        echo(_("No changes match."))
        return
    headers = (_("WHEN (local)"), _("WHO"), _("WHAT"), _("ITEM"))
    table = [
        (
            f"{e.at.astimezone(settings.timezone):%Y-%m-%d %H:%M}",
            e.actor,
            e.verb,
            f"{e.entity} {e.ref}",
        )
        for e in entries
    ]
    heading, *lines = aligned_columns(headers, table)
    echo(heading)
    for entry, line in zip(entries, lines, strict=True):
        echo(line)
        for change in entry.changes:
            if change.before is None:
                echo(f"    {change.field}: {change.after}")
            else:
                after = change.after if change.after is not None else _("(removed)")
                echo(f"    {change.field}: {change.before} → {after}")
    if total > len(entries):
        echo(
            _("Showing {shown} of {total}, newest first; --limit shows more.").format(
                shown=len(entries), total=total
            )
        )


@digest_cli.command("preview")
def digest_preview(
    channel: str = typer.Option(..., "--channel", help=_("Channel slug.")),
    at: str | None = typer.Option(
        None,
        "--at",
        help=_("Local date and time, YYYY-MM-DD HH:MM (default: now)."),
        show_default=False,
    ),
) -> None:
    """Show a channel's next digest as text, without posting or recording anything."""
    from datetime import datetime

    from sqlalchemy import select

    from bot.db import unit_of_work
    from bot.domain import Platform
    from bot.i18n import N_
    from bot.messages import Reply
    from bot.models import Channel
    from bot.schedule_time import ScheduleError, exists, parse_clock, parse_day, to_utc
    from bot.services.digests import TEMPLATE, build_digest

    app = app_or_exit()
    settings = app.settings
    now = CLOCK.now()
    if at is not None:
        try:
            day_text, _sep, clock_text = at.strip().partition(" ")
            local = datetime.combine(parse_day(day_text), parse_clock(clock_text or "09:00"))
            if not exists(local, settings.timezone):
                raise ScheduleError(
                    N_("{when} does not exist in UK time (the clocks go forward); pick another."),
                    when=at,
                )
        except ScheduleError as problem:
            echo(f"--at: {problem}", err=True)
            raise typer.Exit(2) from None
        now = to_utc(local, settings.timezone)
    with unit_of_work(app.sessions) as session:
        found = session.scalar(select(Channel).where(Channel.slug == channel))
        if found is None:
            slugs = ", ".join(session.scalars(select(Channel.slug).order_by(Channel.slug)))
            echo(
                _("There is no channel {slug}; the channels are: {slugs}.").format(
                    slug=channel, slugs=slugs or "-"
                ),
                err=True,
            )
            raise typer.Exit(2)
        content = build_digest(
            session, found, now=now, first_digest_days=settings.scrutiny_first_digest_days
        )
        text = app.renderer.render_text(
            Reply(TEMPLATE, content.context()),
            found.language.languages,
            Platform(found.platform),
        )
    echo(text)
    if content.is_empty:
        echo(
            "\n"
            + (
                _("(Nothing new: this channel posts “nothing new”.)")
                if found.post_empty_digest
                else _(
                    "(Nothing new: this channel skips empty digests, so nothing would be posted.)"
                )
            )
        )


def _reminder_problem(problem: Exception) -> NoReturn:
    echo(str(problem), err=True)
    raise typer.Exit(2)


@remind_cli.command("add")
def remind_add(
    channel: str = typer.Argument(..., help=_("Channel, e.g. #srs-torfaen or srs-torfaen.")),
    text: str = typer.Argument(..., help=_("What to say (quote it).")),
    when: list[str] = typer.Argument(
        ..., help=_("every monday 9am | every weekday 17:30 | on 2026-12-01 09:00")
    ),
    include_bank_holidays: bool | None = typer.Option(
        None,
        "--include-bank-holidays/--skip-bank-holidays",
        help=_(
            "Whether a repeating reminder also posts on bank holidays (default: it skips them)."
        ),
        show_default=False,
    ),
) -> None:
    """Schedule a reminder in a channel."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.schedule_time import ScheduleError
    from bot.services.reminders import create_reminder, next_run

    settings = settings_or_exit()
    sessions = make_session_factory(make_engine(settings.database_url))
    now = CLOCK.now()
    try:
        with unit_of_work(sessions) as session:
            reminder = create_reminder(
                session,
                channel=channel,
                text=text,
                when=" ".join(when),
                now=now,
                created_by=None,
                tz=settings.timezone,
                actor="cli",
                include_bank_holidays=include_bank_holidays,
            )
            upcoming = next_run(reminder, now)
            echo(
                _("Reminder {id} set for {channel}; next on {when}.").format(
                    id=reminder.id,
                    channel=reminder.channel.name,
                    when=upcoming.astimezone(settings.timezone).strftime("%Y-%m-%d %H:%M")
                    if upcoming
                    else "-",
                )
            )
    except ScheduleError as problem:
        _reminder_problem(problem)


@remind_cli.command("list")
def remind_list() -> None:
    """List the active reminders."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.services.reminders import bank_holiday_rule, list_reminders, next_run

    settings = settings_or_exit()
    sessions = make_session_factory(make_engine(settings.database_url))
    now = CLOCK.now()
    with unit_of_work(sessions) as session:
        found = list_reminders(session)
        if not found:
            echo(_("There are no active reminders."))
        for reminder in found:
            upcoming = next_run(reminder, now)
            schedule = reminder.cron or _("once")
            when = (
                upcoming.astimezone(settings.timezone).strftime("%Y-%m-%d %H:%M")
                if upcoming
                else "-"
            )
            rule = bank_holiday_rule(reminder)
            holidays = _(rule) if rule else ""
            name, text = reminder.channel.name, reminder.text[:60]
            echo(f"{reminder.id:>5}  {name:<24} {schedule:<16} {holidays:<24} {when}  {text}")


@remind_cli.command("cancel")
def remind_cancel(reminder_id: str = typer.Argument(..., help=_("Reminder number."))) -> None:
    """Stop a reminder."""
    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.schedule_time import ScheduleError
    from bot.services.reminders import cancel_reminder

    settings = settings_or_exit()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(sessions) as session:
            reminder = cancel_reminder(session, reminder_id, actor="cli")
            echo(_("Reminder {id} is cancelled.").format(id=reminder.id))
    except ScheduleError as problem:
        _reminder_problem(problem)


# -- joint-scrutiny questions -------------------------------------------------------------------
questions_cli = typer.Typer(
    help="Joint-scrutiny questions: a meeting's pack and its questions.", no_args_is_help=True
)
cli.add_typer(questions_cli, name="questions")

_MEETING_HELP = 'The meeting: its number, or board and date ("strategic 2026-12-03").'


def _questions_problem(problem: Exception) -> NoReturn:
    echo(str(problem), err=True)
    raise typer.Exit(1)


@questions_cli.command("pack")
def questions_pack(
    meeting: str = typer.Option(..., "--meeting", help=_MEETING_HELP),
    fmt: str = typer.Option("md", "--format", help="md or docx"),
    out: Path | None = typer.Option(
        None, "--out", help="File to write (Markdown goes to the terminal without it)."
    ),
    language: str | None = typer.Option(
        None,
        "--language",
        help=_("en, cy or cy+en (bilingual, Welsh first); default: SCRUTINY_LANGUAGE"),
        show_default=False,
    ),
) -> None:
    """Write a meeting's question pack as Markdown or Word, for the secretariat's readers."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.domain import ChannelLanguage
    from bot.i18n import Translator, default_language
    from bot.services import question_pack
    from bot.services.question_windows import QuestionError, meeting_named

    if fmt not in ("md", "docx"):
        echo(_('Unknown format "{fmt}": use md or docx.').format(fmt=fmt), err=True)
        raise typer.Exit(2)
    chosen = language if language is not None else default_language()
    if chosen not in {choice.value for choice in ChannelLanguage}:
        echo(
            _('Unknown language "{language}": use en, cy or cy+en.').format(language=chosen),
            err=True,
        )
        raise typer.Exit(2)
    settings = settings_or_exit()
    t = Translator(default_language(), settings.timezone)
    languages = [Translator(code, settings.timezone) for code in ChannelLanguage(chosen).languages]
    now = CLOCK.now()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(sessions) as session:
            found = meeting_named(session, meeting, now=now, zone=settings.timezone, t=t)
            audience = question_pack.secretariat_audience(session)
            pack = question_pack.build_pack(
                session, found, audience, now=now, zone=settings.timezone
            )
    except QuestionError as problem:
        _questions_problem(problem)
    if fmt == "md":
        text = question_pack.to_markdown(pack, languages)
        if out is None:
            echo(text)
            return
        out.write_text(text, encoding="utf-8")
    else:
        out = out or Path(question_pack.file_name(pack, "docx"))
        out.write_bytes(question_pack.to_docx(pack, languages))
    echo(
        _("Wrote {file}: {count} questions.").format(file=out, count=len(pack.questions)),
        err=True,
    )


@questions_cli.command("list")
def questions_list(meeting: str = typer.Option(..., "--meeting", help=_MEETING_HELP)) -> None:
    """List every question of a meeting with its state and partners (secretariat's view)."""

    from bot.db import make_engine, make_session_factory, unit_of_work
    from bot.i18n import Translator, default_language
    from bot.services import question_pack
    from bot.services.question_windows import QuestionError, meeting_named
    from bot.services.questions import STATE_LABELS, list_questions

    settings = settings_or_exit()
    t = Translator(default_language(), settings.timezone)
    now = CLOCK.now()
    sessions = make_session_factory(make_engine(settings.database_url))
    try:
        with unit_of_work(sessions) as session:
            found = meeting_named(session, meeting, now=now, zone=settings.timezone, t=t)
            listed = list_questions(
                session,
                question_pack.secretariat_audience(session),
                None,
                now=now,
                zone=settings.timezone,
                meeting=found,
                sees_private=True,
            )
    except QuestionError as problem:
        _questions_problem(problem)
    for group in listed.meetings:
        if not group.questions:
            echo(_("No questions for {meeting}.").format(meeting=group.meeting.spec))
        for q in group.questions:
            partners = ", ".join(p.slug for p in (*q.askers, *q.supporters))
            state = t._(STATE_LABELS[q.state])
            echo(f"{q.ref:<20} {state:<20} {partners:<40} {q.text[:70]}")
    if listed.withheld_total:
        echo(
            _("{count} more not shown: above the secretariat channel's clearance.").format(
                count=listed.withheld_total
            )
        )


# -- Microsoft Teams and Microsoft 365 ----------------------------------------------------------
teams_cli = typer.Typer(help="Microsoft Teams.", no_args_is_help=True)
sync_cli = typer.Typer(help="Synchronise records from elsewhere.", no_args_is_help=True)
cli.add_typer(teams_cli, name="teams")
cli.add_typer(sync_cli, name="sync")


def _graph_required(settings: Settings) -> None:
    if not settings.graph_ready:
        message = _("Set GRAPH_TENANT_ID and GRAPH_CLIENT_ID first (see docs/teams.md).")
        echo(message, err=True)
        raise typer.Exit(2)


@teams_cli.command("login")
def teams_login() -> None:
    """Sign the Teams service account in (device code) so the bot can post through Graph."""

    from bot.platforms.graph import login

    settings = settings_or_exit()
    _graph_required(settings)

    def show(url: str, code: str, expires: datetime) -> None:
        echo(
            _("Sign in as the service account at {url} with the code {code}.").format(
                url=url, code=code
            )
        )

    try:
        path = login(settings, show)
    except Exception as error:  # azure-identity reports sign-in failures with assorted types
        echo(_("Sign-in failed: {error}").format(error=error), err=True)
        raise typer.Exit(1) from None
    echo(_("Signed in; the account is recorded in {file}.").format(file=path))


@sync_cli.command("graph")
def sync_graph_command(
    dry_run: bool = typer.Option(False, "--dry-run", help=_("Check and count; write nothing.")),
) -> None:
    """Read meetings, decisions and actions from Microsoft 365 and upsert them by ref."""
    from bot.collaboration import ConfigError
    from bot.db import make_engine, make_session_factory, migrate
    from bot.platforms.graph import sync_from_settings
    from bot.services.graph_sync import SyncFailed, graph_config

    settings = settings_or_exit()
    _graph_required(settings)
    try:
        config = graph_config(settings.scrutiny_config)
    except ConfigError as error:
        _refuse_config(error.problems, settings.scrutiny_config, err=True)
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


# -- translations -------------------------------------------------------------------------------
i18n_cli = typer.Typer(
    help=_("Translations: extract the strings, update the catalogues, check them."),
    no_args_is_help=True,
)
cli.add_typer(i18n_cli, name="i18n")


@i18n_cli.command("extract")
def i18n_extract() -> None:
    """Write locale/messages.pot from the strings in the code and templates."""
    from bot.catalogue import LOCALE_DIR, TEMPLATE_FILE, extract, write_template

    catalog = extract()
    changed = write_template(catalog)
    count = sum(1 for message in catalog if message.id)
    message = (
        _("{file}: {count} strings, updated.")
        if changed
        else _("{file}: {count} strings, unchanged.")
    )
    echo(message.format(file=LOCALE_DIR / TEMPLATE_FILE, count=count))


@i18n_cli.command("update")
def i18n_update() -> None:
    """Merge locale/messages.pot into each language's catalogue, keeping the translations."""
    from dataclasses import asdict

    from bot.catalogue import LOCALE_DIR, TEMPLATE_FILE, TRANSLATED, update

    if not (LOCALE_DIR / TEMPLATE_FILE).exists():
        echo(_("There is no template yet: run `scrutiny-bot i18n extract` first."), err=True)
        raise typer.Exit(1)
    for language in TRANSLATED:
        summary = update(language)
        message = _(
            "{path}: {total} strings; {added} new, {dropped} dropped, {fuzzy} fuzzy, "
            "{untranslated} to translate."
        )
        echo(message.format(**asdict(summary)))


@i18n_cli.command("check")
def i18n_check() -> None:
    """Fail (status 1) when a catalogue is missing, stale, untranslated or fuzzy anywhere."""
    from bot.catalogue import check
    from bot.i18n import ngettext

    problems = check()
    for problem in problems:
        echo(str(problem), err=True)
    if problems:
        echo(
            ngettext(
                "{count} translation problem. Run `scrutiny-bot i18n extract`, then "
                "`scrutiny-bot i18n update`, and translate what is listed.",
                "{count} translation problems. Run `scrutiny-bot i18n extract`, then "
                "`scrutiny-bot i18n update`, and translate what is listed.",
                len(problems),
            ).format(count=len(problems)),
            err=True,
        )
        raise typer.Exit(1)
    echo(_("The translation catalogues match the code."))


def main() -> None:
    """Console-script entry point."""
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
