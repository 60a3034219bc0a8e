"""`scrutiny-bot remind`: reminders posted to channels."""

from __future__ import annotations

from typing import NoReturn

import typer

from bot.cli.output import echo
from bot.cli.startup import settings_or_exit
from bot.clock import CLOCK
from bot.i18n import _

remind_cli = typer.Typer(help="Reminders posted to channels.", no_args_is_help=True)


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
