"""Calendars to subscribe to: one board's, or one member's boards', meetings and question
deadlines as RFC 5545 iCalendar, behind secret URLs that can be revoked.

The URL carries a random secret; only its SHA-256 is stored. UIDs are stable (the meeting's id
and the deployment's host), and SEQUENCE is the meeting's, raised on every change of time,
place or question window, so subscribed calendars update the event instead of adding one.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.i18n import Translator
from bot.models import Board, CalendarFeed, Meeting, Member
from bot.services import audit
from bot.services.questions.windows import meeting_end

QUESTION_DEADLINE_LENGTH = timedelta(minutes=15)
"""How long the 'questions close' reminder event lasts in a calendar."""


def token_hash(token: str) -> str:
    """What is stored for a feed's secret."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_feed(
    session: Session, *, actor: str, board: Board | None, member: Member | None, now: datetime
) -> tuple[CalendarFeed, str]:
    """A new feed of a board's meetings (or of a member's boards'); returns it and its secret."""
    token = secrets.token_urlsafe(32)
    feed = CalendarFeed(
        token_hash=token_hash(token),
        board=board,
        member=member,
        created_by=actor,
        created_at=now,
    )
    session.add(feed)
    session.flush()
    audit.record(
        session,
        actor=actor,
        verb="create",
        entity="calendar_feed",
        ref=str(feed.id),
        after={"board": board.slug if board else None, "member": member.slug if member else None},
    )
    return feed, token


def revoke_feed(session: Session, feed: CalendarFeed, *, actor: str, now: datetime) -> None:
    """Turn a feed's URL off for good (it answers 404 from now on)."""
    if feed.revoked_at is None:
        feed.revoked_at = now
        audit.record(
            session,
            actor=actor,
            verb="cancel",
            entity="calendar_feed",
            ref=str(feed.id),
            after={"revoked_at": now.isoformat()},
        )


def live_feed(session: Session, token: str) -> CalendarFeed | None:
    """The feed behind a secret, unless it is unknown or revoked."""
    feed = session.scalar(
        select(CalendarFeed)
        .options(joinedload(CalendarFeed.board), joinedload(CalendarFeed.member))
        .where(CalendarFeed.token_hash == token_hash(token))
    )
    if feed is None or feed.revoked_at is not None:
        return None
    if feed.member is not None and not feed.member.active:
        return None
    return feed


def feeds_of(session: Session, member: Member) -> list[CalendarFeed]:
    """The feeds a member made that still work, newest first."""
    return list(
        session.scalars(
            select(CalendarFeed)
            .options(joinedload(CalendarFeed.board))
            .where(CalendarFeed.created_by == member.slug, CalendarFeed.revoked_at.is_(None))
            .order_by(CalendarFeed.id.desc())
        )
    )


def feed_meetings(session: Session, feed: CalendarFeed) -> list[Meeting]:
    """The meetings a feed carries: its board's, or those of every board of its member (all
    boards for a member on none)."""
    statement = select(Meeting).options(joinedload(Meeting.board)).order_by(Meeting.starts_at)
    if feed.board_id is not None:
        statement = statement.where(Meeting.board_id == feed.board_id)
    elif feed.member is not None and feed.member.boards:
        statement = statement.where(Meeting.board_id.in_([b.id for b in feed.member.boards]))
    return list(session.scalars(statement))


def calendar_of(
    meetings: list[Meeting], *, name: str, host: str, zone: ZoneInfo, t: Translator, now: datetime
) -> bytes:
    """The iCalendar text of `meetings` and their question deadlines, times in `zone`."""
    calendar = Calendar()
    calendar.add("prodid", "-//SRS scrutiny-bot//register//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", zone.key)
    if meetings:
        first = min(m.questions_open or m.starts_at for m in meetings)
        last = max(meeting_end(m) for m in meetings)
        calendar.add_component(
            Timezone.from_tzinfo(
                zone,
                tzid=zone.key,
                first_date=(first - timedelta(days=366)).date(),
                last_date=(last + timedelta(days=366)).date(),
            )
        )
    for meeting in meetings:
        board = meeting.board.name_cy if t.language == "cy" else meeting.board.name
        event = Event()
        event.add("uid", f"meeting-{meeting.id}@{host}")
        event.add("sequence", meeting.sequence)
        event.add("dtstamp", now)
        event.add("summary", board)
        event.add("dtstart", meeting.starts_at.astimezone(zone))
        event.add("dtend", meeting_end(meeting).astimezone(zone))
        if meeting.location:
            event.add("location", meeting.location)
        if meeting.link:
            event.add("url", meeting.link)
        calendar.add_component(event)
        if meeting.questions_close is not None:
            deadline = Event()
            deadline.add("uid", f"questions-close-{meeting.id}@{host}")
            deadline.add("sequence", meeting.sequence)
            deadline.add("dtstamp", now)
            deadline.add(
                "summary",
                t._("Questions close: {board}, {date}").format(
                    board=board, date=t.date(meeting.starts_at.astimezone(zone).date())
                ),
            )
            closes = meeting.questions_close.astimezone(zone)
            deadline.add("dtstart", closes - QUESTION_DEADLINE_LENGTH)
            deadline.add("dtend", closes)
            calendar.add_component(deadline)
    return bytes(calendar.to_ical())
