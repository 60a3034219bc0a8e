"""`/scrutiny remind`: the secretariat schedules reminders in channels, lists and cancels them.

`remind #channel "text" every monday 9am` (skipping bank holidays unless followed by
"including bank holidays"), `remind #channel "text" on 2026-12-01 09:00`,
`remind list`, `remind cancel ID`; with no words, a form (Slack opens it as a modal). The
secretariat role is checked for the command and for the form's submission.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.context import Context, UserError
from bot.domain import Role
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.models import Channel, Reminder
from bot.router import Router
from bot.schedule_time import ScheduleError, describe_cron
from bot.services import reminders as service

router = Router("remind")
SECRETARIAT = (Role.SECRETARIAT,)

ADD_REMINDER = "remind.add"
"""Form id of 'schedule a reminder'."""


BANK_HOLIDAY_CHOICES = {"include": True, "skip": False}
"""The form's answers to 'on bank holidays' as `include_bank_holidays`."""


def _created(reminder: Reminder, ctx: Context) -> Reply:
    schedule = describe_cron(reminder.cron, ctx.t) if reminder.cron else ""
    return Reply(
        "reminder/created",
        {
            "id": reminder.id,
            "channel": reminder.channel.name,
            "text": reminder.text,
            "cron": reminder.cron,
            "schedule": schedule,
            "next_run": service.next_run(reminder, ctx.now),
            "skips_bank_holidays": reminder.skip_bank_holidays,
        },
    )


def _add(words: str, ctx: Context) -> Reply:
    try:
        reminder = service.add_reminder(
            ctx.session,
            words,
            now=ctx.now,
            created_by=ctx.member,
            tz=ctx.app.settings.timezone,
            actor=ctx.member.slug,
        )
    except ScheduleError as problem:
        raise UserError(problem.translate(ctx.t)) from None
    return _created(reminder, ctx)


def _list(ctx: Context) -> Reply:
    entries = []
    for reminder in service.list_reminders(ctx.session):
        schedule = describe_cron(reminder.cron, ctx.t) if reminder.cron else ctx.t._("once")
        entries.append(
            {
                "id": reminder.id,
                "channel": reminder.channel.name,
                "text": reminder.text,
                "schedule": schedule,
                "bank_holidays": ctx.t._(rule)
                if (rule := service.bank_holiday_rule(reminder))
                else "",
                "next_run": service.next_run(reminder, ctx.now),
            }
        )
    return Reply("reminder/list", {"reminders": entries})


def _cancel(words: list[str], ctx: Context) -> Reply:
    if not words:
        raise UserError(
            ctx.t._("Say which reminder: {cmd} remind cancel ID (remind list shows them).").format(
                cmd=ctx.t.cmd
            )
        )
    try:
        reminder = service.cancel_reminder(ctx.session, words[0], actor=ctx.member.slug)
    except ScheduleError as problem:
        raise UserError(problem.translate(ctx.t)) from None
    return Reply(
        "reminder/cancelled",
        {"id": reminder.id, "channel": reminder.channel.name, "text": reminder.text},
    )


def _form(ctx: Context) -> Reply:
    channels = ctx.session.scalars(select(Channel).order_by(Channel.name)).all()
    return Reply(
        "reminder/form",
        {
            "callback_id": ADD_REMINDER,
            "channels": [{"slug": c.slug, "name": c.name} for c in channels],
        },
        surface="modal",
    )


@router.command(
    "remind",
    summary=N_("Schedule, list or cancel reminders in a channel (secretariat)."),
    usage=N_(
        'remind #channel "text" every monday 9am [including bank holidays] '
        "| on 2026-12-01 09:00 | list | cancel ID"
    ),
    aliases=("atgoffa", "reminders"),
    roles=SECRETARIAT,
)
def remind(request: Request, ctx: Context) -> Reply:
    """Add, list or cancel a reminder; the form when no words are given."""
    words = request.text.split()
    if not words:
        return _form(ctx)
    head = words[0].lower()
    if head in ("list", "rhestr"):
        return _list(ctx)
    if head in ("cancel", "canslo", "stop"):
        return _cancel(words[1:], ctx)
    return _add(request.text, ctx)


@router.action(ADD_REMINDER, roles=SECRETARIAT)
def remind_submitted(request: Request, ctx: Context) -> Reply:
    """The 'schedule a reminder' form was submitted."""
    try:
        reminder = service.create_reminder(
            ctx.session,
            channel=str(request.values.get("channel", "")),
            text=str(request.values.get("text", "")),
            when=str(request.values.get("when", "")),
            now=ctx.now,
            created_by=ctx.member,
            tz=ctx.app.settings.timezone,
            actor=ctx.member.slug,
            include_bank_holidays=BANK_HOLIDAY_CHOICES.get(
                str(request.values.get("bank_holidays", ""))
            ),
        )
    except ScheduleError as problem:
        message = problem.translate(ctx.t)
        field = problem.field if isinstance(problem, service.ReminderError) else "when"
        return Reply("common/error", {"message": message}, field_errors={field: message})
    return _created(reminder, ctx)
