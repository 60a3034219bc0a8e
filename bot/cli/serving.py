"""`serve`, `run`, `console` and `worker`: the long-running commands (chat platforms, the
register, the local console, the scheduler and outbox sender)."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from bot.cli.output import echo, refuse_config
from bot.cli.startup import app_or_exit, ready_app_or_exit, refuse_database, settings_or_exit
from bot.i18n import _

if TYPE_CHECKING:
    from bot.app import ScrutinyApp


def _serve(app: ScrutinyApp, host: str, port: int | None) -> None:
    import uvicorn

    from bot.platforms.registry import endpoints
    from bot.web import create_web_app

    settings = app.settings
    uvicorn.run(
        create_web_app(app, endpoints(app)),
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


def serve(
    host: str = typer.Option("127.0.0.1", help=_("Address to listen on.")),
    port: int | None = typer.Option(
        None, help=_("Port to listen on (default: $PORT, else 3000)."), show_default=False
    ),
) -> None:
    """Serve the chat platforms, the register and GET /healthz under uvicorn (Slack: HTTP or
    Socket Mode). Starts with the register alone when sign-in to it is configured."""
    from bot.platforms.registry import receiving_over_http

    settings = settings_or_exit()
    chat = bool(receiving_over_http(settings))
    if not chat and not settings.web_signin_configured:
        echo(
            _(
                "Nothing to serve: neither a chat platform nor sign-in to the register is "
                "configured. Set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN "
                "for Socket Mode) - see docs/slack.md - or TEAMS_APP_ID and TEAMS_CLIENT_SECRET "
                "for Teams - see docs/teams.md; or "
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
    from bot.platforms.registry import messengers
    from bot.scheduler import make_worker

    runner = make_worker(
        app,
        messengers(app.settings, app.sessions, show_post=show_post),
        leader_lock_for(app.engine),
    )
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), name="worker", daemon=True)
    thread.start()

    def stop_worker() -> None:
        stop.set()
        thread.join(runner.stop_seconds + STOP_MARGIN_SECONDS)

    return stop_worker


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
    from bot.platforms.registry import receiving_over_http

    settings = settings_or_exit()
    serving = bool(receiving_over_http(settings))
    if not serving and settings.log_level != "DEBUG":
        # In the console, routine log lines would interleave with replies; warnings still show.
        logging.getLogger().setLevel(logging.WARNING)
    try:
        app = prepare(settings, say=lambda line: echo(line, err=True))
    except SQLAlchemyError as error:
        refuse_database(error)
    except ConfigError as error:
        refuse_config(error.problems, settings.scrutiny_config, err=True)
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
    from bot.platforms.console.app import Console, run_console

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
    from bot.platforms.console.app import run_console

    code = run_console(app_or_exit(), member, channel, sys.stdin, sys.stdout, stderr=sys.stderr)
    raise typer.Exit(code)


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
    from bot.platforms.registry import messengers
    from bot.scheduler import make_worker

    app = ready_app_or_exit()
    lock = leader_lock_for(app.engine)
    senders = messengers(app.settings, app.sessions)
    runner = make_worker(app, senders, lock, grace=timedelta(minutes=grace_minutes))
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
