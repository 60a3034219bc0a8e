"""Reminders: text the secretariat schedules for a channel, and reminders before each meeting.

A reminder is one-off (`run_at`) or repeating (`cron`, in wall-clock time). Each scheduled run
becomes an outbox Delivery keyed `reminder:{id}:{local date and time}`, written in the same
transaction that (for a one-off) retires the reminder, so a run is posted once whatever fails.
Meeting reminders go to the board's channels and the partner channels N days before each
meeting (per board, default 3), keyed by meeting, start date and channel.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from bot import text_input
from bot.domain import Platform
from bot.i18n import N_
from bot.messages import Reply
from bot.models import Channel, Delivery, Meeting, Member, Reminder
from bot.outbox import enqueue_id
from bot.rendering import Renderer, render_payload
from bot.schedule_time import LONDON, Fire, Schedule, ScheduleError, parse_when, to_utc
from bot.scheduled_units import UnitGuard, isolated
from bot.services import audit
from bot.services.queries import MeetingView

log = logging.getLogger(__name__)

REMINDER_KIND = "reminder"
MEETING_REMINDER_KIND = "meeting-reminder"
DEFAULT_MEETING_REMINDER_DAYS = 3
MEETING_REMINDER_TIME = time(9, 0)
"""Meeting reminders go out at 9am local time, N days before the meeting."""
TEXT_MAX = text_input.REMINDER.limit
_CHANNEL_MENTION = re.compile(r"^<#(?P<id>[A-Z0-9]+)(?:\|(?P<name>[^>]*))?>$")
_KEYWORDS = ("every", "on", "bob", "ar", "cron")


class ReminderError(ScheduleError):
    """A reminder request that cannot be carried out; says what is wrong and how to fix it."""

    def __init__(self, message: str, *, field: str = "when", **params: Any) -> None:
        self.field = field
        """The form field at fault: channel, text or when."""
        super().__init__(message, **params)


@dataclass(frozen=True)
class ReminderRequest:
    """`#channel "text" every monday 9am` split into its three parts."""

    channel: str
    text: str
    when: str


def split_request(words: str) -> ReminderRequest:
    """Split what follows `remind` into channel, text and when; ReminderError if it can't."""
    normalised = words.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    try:
        tokens = shlex.split(normalised)
    except ValueError:
        raise ReminderError(
            N_("A quote is not closed. Put the reminder text in quotes: “Papers for F&G due”.")
        ) from None
    if len(tokens) < 3:
        raise ReminderError(
            N_(
                "Say where, what and when: "
                "remind #channel “Papers for F&G due” every monday 9am (or on 2026-12-01 09:00)."
            )
        )
    channel, rest = tokens[0], tokens[1:]
    if '"' in normalised:
        text, when = rest[0], rest[1:]
    else:
        starts = [i for i, word in enumerate(rest) if word.lower() in _KEYWORDS and i > 0]
        if not starts:
            raise ReminderError(
                N_(
                    "Say when, starting with “every” or “on”: "
                    "every monday 9am, on 2026-12-01 09:00."
                )
            )
        text, when = " ".join(rest[: starts[-1]]), rest[starts[-1] :]
    return ReminderRequest(channel, text.strip(), " ".join(when))


def find_channel(session: Session, reference: str) -> Channel | None:
    """A channel by `#name`, slug, Slack mention `<#C123|name>` or platform id."""
    ref = reference.strip()
    mention = _CHANNEL_MENTION.match(ref)
    if mention:
        found = session.scalar(select(Channel).where(Channel.external_id == mention["id"]))
        if found is not None or not mention["name"]:
            return found
        ref = mention["name"]
    bare = ref.lstrip("#")
    return session.scalar(
        select(Channel)
        .where(
            or_(
                Channel.slug == bare,
                Channel.name == f"#{bare}",
                Channel.name == ref,
                Channel.external_id == ref,
            )
        )
        .order_by(Channel.id)
    )


def add_reminder(
    session: Session,
    words: str,
    *,
    now: datetime,
    created_by: Member | None,
    tz: ZoneInfo = LONDON,
    actor: str,
) -> Reminder:
    """A new reminder from `#channel "text" every monday 9am`; ReminderError if a part is bad."""
    request = split_request(words)
    return create_reminder(
        session,
        channel=request.channel,
        text=request.text,
        when=request.when,
        now=now,
        created_by=created_by,
        tz=tz,
        actor=actor,
    )


def create_reminder(
    session: Session,
    *,
    channel: str,
    text: str,
    when: str,
    now: datetime,
    created_by: Member | None,
    tz: ZoneInfo = LONDON,
    actor: str,
    include_bank_holidays: bool | None = None,
) -> Reminder:
    """A new reminder from its three parts (a form, the CLI); ReminderError naming the bad one.

    A repeating reminder skips England-and-Wales bank holidays unless `include_bank_holidays`
    (a form's or the CLI's choice) or its words ("including bank holidays") say otherwise."""
    try:
        cleaned = text_input.clean(text, text_input.REMINDER)
    except text_input.TextRefused as refused:
        if refused.problem == "too_long":
            raise ReminderError(
                N_("The reminder text is {length} characters long; keep it to {limit}."),
                field="text",
                length=refused.params["length"],
                limit=refused.params["limit"],
            ) from None
        raise ReminderError(
            N_(
                "The reminder text contains a hidden control character, {name}, at character "
                "{position}; retype it without hidden characters."
            ),
            field="text",
            **refused.params,
        ) from None
    request = ReminderRequest(channel.strip(), cleaned, when.strip())
    target = find_channel(session, request.channel)
    if target is None:
        raise ReminderError(
            N_(
                "I don't know the channel “{channel}”. Use its name as the bot knows it, "
                "for example #srs-torfaen ({cmd} remind list shows the reminders there are)."
            ),
            field="channel",
            channel=request.channel,
        )
    if not request.text:
        raise ReminderError(
            N_("The reminder has no text. Put it in quotes: “Papers for F&G due”."), field="text"
        )
    parsed = parse_when(request.when, now=now, tz=tz)
    if include_bank_holidays is not None:
        skip = not include_bank_holidays
    else:
        skip = parsed.skip_bank_holidays is not False
    reminder = Reminder(
        text=request.text,
        channel=target,
        run_at=parsed.run_at,
        cron=parsed.cron,
        timezone=tz.key,
        skip_bank_holidays=skip and parsed.cron is not None,
        created_by_id=created_by.id if created_by else None,
        active=True,
        created_at=now,
    )
    session.add(reminder)
    session.flush()
    audit.record(
        session,
        actor=actor,
        verb="create",
        entity="reminder",
        ref=str(reminder.id),
        after=audit.snapshot(reminder, ("text", "run_at", "cron", "timezone", "skip_bank_holidays"))
        | {"channel": target.slug},
    )
    return reminder


def list_reminders(session: Session, *, include_inactive: bool = False) -> list[Reminder]:
    """Reminders with their channels, soonest-created first."""
    statement = select(Reminder).options(joinedload(Reminder.channel)).order_by(Reminder.id)
    if not include_inactive:
        statement = statement.where(Reminder.active.is_(True))
    return list(session.scalars(statement))


def cancel_reminder(session: Session, reminder_id: str, *, actor: str) -> Reminder:
    """Stop a reminder; ReminderError if there is no active reminder with that number."""
    number = text_input.whole_number(reminder_id.strip())
    if number is None:
        raise ReminderError(
            N_("“{value}” is not a reminder number; {cmd} remind list shows them."),
            value=reminder_id.strip(),
        )
    reminder = session.get(Reminder, number)
    if reminder is None or not reminder.active:
        raise ReminderError(
            N_("There is no active reminder {id}; {cmd} remind list shows them."),
            id=reminder_id.strip(),
        )
    reminder.active = False
    audit.record(
        session,
        actor=actor,
        verb="cancel",
        entity="reminder",
        ref=str(reminder.id),
        before={"active": True},
        after={"active": False},
    )
    return reminder


def schedule_of(reminder: Reminder) -> Schedule:
    """A repeating reminder's schedule; ScheduleError if its stored cron or zone is bad."""
    assert reminder.cron is not None
    return Schedule.parse(reminder.cron, reminder.timezone, reminder.skip_bank_holidays)


def bank_holiday_rule(reminder: Reminder) -> str:
    """How a repeating reminder treats bank holidays, as a message to translate ('' for a
    one-off, which posts on its date)."""
    if not reminder.cron:
        return ""
    return (
        N_("skips bank holidays") if reminder.skip_bank_holidays else N_("including bank holidays")
    )


def next_run(reminder: Reminder, now: datetime) -> datetime | None:
    """When the reminder next posts (None once it never will)."""
    if not reminder.active:
        return None
    if reminder.cron:
        fire = schedule_of(reminder).next_after(now)
        return fire.at if fire else None
    return reminder.run_at if reminder.run_at and reminder.run_at > now else None


# -- running them ------------------------------------------------------------------------------
@dataclass
class ReminderRun:
    """One reminder run written to the outbox (or found already written)."""

    key: str
    delivery_id: int | None


def _payload(
    renderer: Renderer, template: str, context: dict[str, Any], channel: Channel
) -> dict[str, Any]:
    languages = channel.language.languages
    reply = Reply(template, {**context, "languages": list(languages)})
    return render_payload(renderer, reply, Platform(channel.platform), languages)


def _fire_of(reminder: Reminder, now: datetime, grace: timedelta) -> Fire | None:
    """The run of `reminder` due in (now - grace, now], if any, and after it was created."""
    if reminder.cron:
        try:
            schedule = schedule_of(reminder)
        except ScheduleError as problem:
            log.warning("reminder %s has a bad schedule: %s", reminder.id, problem)
            return None
        fires = [f for f in schedule.between(now - grace, now) if f.at > reminder.created_at]
        return fires[-1] if fires else None
    if reminder.run_at is not None and now - grace < reminder.run_at <= now:
        zone = ZoneInfo(reminder.timezone)
        return Fire(reminder.run_at.astimezone(zone).replace(tzinfo=None), reminder.run_at)
    return None


def run_due_reminders(
    session: Session,
    renderer: Renderer,
    *,
    now: datetime,
    grace: timedelta,
    guard: UnitGuard | None = None,
) -> list[ReminderRun]:
    """Write every reminder run due within the grace period; retire one-offs that are done.

    With a `guard`, each run is its own unit (one that fails is reported, the rest go out)."""
    reminders = list_reminders(session)
    due: list[tuple[Reminder, Fire]] = []
    for reminder in reminders:
        fire = _fire_of(reminder, now, grace)
        if fire is not None:
            due.append((reminder, fire))
        elif not reminder.cron and (reminder.run_at is None or reminder.run_at <= now - grace):
            # Missed by more than the grace period (the worker was down): too late to be useful.
            log.warning(
                "one-off reminder %s missed its time %s; retiring it", reminder.id, reminder.run_at
            )
            reminder.active = False
    keys = {f"reminder:{r.id}:{f.key}": (r, f) for r, f in due}
    done = _existing(session, list(keys))
    runs = []
    for key, (reminder, fire) in keys.items():
        if key in done:
            reminder.active = reminder.active and bool(reminder.cron)
            continue
        with isolated(guard, key):
            context = {"text": reminder.text, "at": fire.at}
            payload = _payload(renderer, "reminder/post", context, reminder.channel)
            delivery_id = enqueue_id(
                session, key=key, channel=reminder.channel, kind=REMINDER_KIND, payload=payload
            )
            runs.append(ReminderRun(key, delivery_id))
            # Retired only with its post, so a run that fails stays due within the grace period.
            reminder.active = reminder.active and bool(reminder.cron)
    return runs


def _existing(session: Session, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    return set(
        session.scalars(select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(keys)))
    )


def meeting_reminder_at(meeting: Meeting, days: int, tz: ZoneInfo = LONDON) -> datetime:
    """9am local time, `days` days before the meeting's local date."""
    local_day = meeting.starts_at.astimezone(tz).date() - timedelta(days=days)
    return to_utc(datetime.combine(local_day, MEETING_REMINDER_TIME), tz)


def run_meeting_reminders(
    session: Session,
    renderer: Renderer,
    *,
    now: datetime,
    tz: ZoneInfo = LONDON,
    horizon_days: int = 60,
    guard: UnitGuard | None = None,
) -> list[ReminderRun]:
    """Write the reminder of every meeting whose reminder time has come and that has not begun
    (each post its own unit when a `guard` is given)."""
    meetings = session.scalars(
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(Meeting.starts_at > now, Meeting.starts_at <= now + timedelta(days=horizon_days))
        .order_by(Meeting.starts_at)
    ).all()
    due = []
    for meeting in meetings:
        days = meeting.board.meeting_reminder_days
        days = DEFAULT_MEETING_REMINDER_DAYS if days is None else days
        if days > 0 and meeting_reminder_at(meeting, days, tz) <= now:
            due.append(meeting)
    if not due:
        return []
    channels = session.scalars(
        select(Channel)
        .where(
            or_(Channel.board_id.in_({m.board_id for m in due}), Channel.partner_id.is_not(None))
        )
        .where(Channel.secretariat.is_(False))
        .order_by(Channel.id)
    ).all()
    planned: dict[str, tuple[Meeting, Channel]] = {}
    for meeting in due:
        start = meeting.starts_at.astimezone(tz).date().isoformat()
        for channel in channels:
            if channel.board_id in (None, meeting.board_id) and (
                channel.board_id or channel.partner_id
            ):
                planned[f"meeting:{meeting.id}:{start}:{channel.slug}"] = (meeting, channel)
    done = _existing(session, list(planned))
    runs = []
    for key, (meeting, channel) in planned.items():
        if key in done:
            continue
        with isolated(guard, key):
            payload = _payload(
                renderer, "reminder/meeting", {"meeting": MeetingView.of(meeting, now)}, channel
            )
            delivery_id = enqueue_id(
                session, key=key, channel=channel, kind=MEETING_REMINDER_KIND, payload=payload
            )
            runs.append(ReminderRun(key, delivery_id))
    return runs
