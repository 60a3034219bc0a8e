"""Meetings as questions see them: naming one in a command, and its question window.

A meeting is named by its board and local date ("strategic 2026-12-03") or its number
("#12"). The secretariat opens, closes and extends windows (defaults from the board's
`questions_open_days` / `questions_close_days`); a window whose close time has passed is
closed. Every change is audited; input is checked first and refused with `QuestionError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.context import UserError
from bot.fields import FieldRefused, numeric_date, parse_clock, parse_date
from bot.i18n import Translator
from bot.models import Board, Meeting
from bot.services import audit
from bot.services.plain_words import Lexicon, NamedThing, tokens
from bot.services.queries import BoardView, MeetingView, WindowState
from bot.text_input import NUMBER_MAX, whole_number

MEETING_LENGTH = timedelta(hours=3)
"""How long a meeting is taken to last when its end time is not known."""
DEFAULT_CLOSE_TIME = time(17, 0)
"""Local time a window closes when only a date is given."""
DEFAULT_OPEN_TIME = time(9, 0)


class QuestionError(UserError):
    """Input refused, nothing changed; `field` names the form field at fault, if any."""

    def __init__(self, message: str, field: str = "question") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class MeetingInfo:
    """A meeting as the question replies show it, with the words that name it in commands."""

    id: int
    spec: str
    """How to name it in a command: "strategic 2026-12-03"."""
    board: BoardView
    starts_at: datetime
    questions_open: datetime | None
    questions_close: datetime | None
    window: WindowState

    @classmethod
    def of(cls, meeting: Meeting, now: datetime, zone: ZoneInfo) -> MeetingInfo:
        """The view of a loaded meeting (its board loaded too) at `now`."""
        view = MeetingView.of(meeting, now)
        return cls(
            id=meeting.id,
            spec=meeting_spec(meeting, zone),
            board=view.board,
            starts_at=meeting.starts_at,
            questions_open=meeting.questions_open,
            questions_close=meeting.questions_close,
            window=view.window,
        )


@dataclass(frozen=True)
class WindowChange:
    """What a window command did."""

    verb: str
    """"open", "close" or "extend"."""
    meeting: MeetingInfo
    before: tuple[datetime | None, datetime | None]


# -- meetings ---------------------------------------------------------------------------------
def meeting_spec(meeting: Meeting, zone: ZoneInfo) -> str:
    """The words that name a meeting in commands: board slug and local date."""
    return f"{meeting.board.slug} {meeting.starts_at.astimezone(zone).date().isoformat()}"


def meeting_end(meeting: Meeting) -> datetime:
    """When the meeting is over: its end time, or its start plus a usual meeting's length."""
    return meeting.ends_at or meeting.starts_at + MEETING_LENGTH


def board_names(session: Session) -> Lexicon:
    """The boards' names, slugs and prefixes as the plain-words reader knows them."""
    return Lexicon(
        boards=[
            NamedThing(b.slug, b.name, b.name_cy, b.prefix)
            for b in session.scalars(select(Board).order_by(Board.id))
        ]
    )


def _board_word(word: str, boards: Lexicon) -> str | None:
    words = tokens(word)
    matched = boards.match(words, 0) if len(words) == 1 else None
    return matched[0][1] if matched is not None and matched[0][0] == "board" else None


def _parse_date(word: str, field: str, t: Translator) -> date:
    try:
        return parse_date(word, field)
    except FieldRefused as refusal:
        raise QuestionError(refusal.sentence(t._), field) from None


def _meeting_number(word: str, t: Translator) -> int:
    number = whole_number(word)
    if number is None:
        raise QuestionError(
            t._(
                "“{value}” is not a meeting number; use a number up to {limit}, or name the "
                "meeting by board and date, e.g. strategic 2026-12-03."
            ).format(value=word, limit=f"{NUMBER_MAX:,}"),
            "meeting",
        )
    return number


def read_meeting_words(
    words: Sequence[str], t: Translator, *, bare: bool, boards: Lexicon
) -> tuple[tuple[str, Any] | None, list[str]]:
    """A meeting named at the start of `words`, and the words after it.

    `#12` is meeting 12; a board word and a date ("strategic 2026-12-03") is that board's
    meeting that day. With `bare`, a plain number and a board word alone (its next meeting)
    count too; without it (in a question's words) they are taken as the question's own words.
    """
    if not words:
        return None, []
    first = words[0]
    if first.startswith("#") and first[1:].isdigit():
        return ("id", _meeting_number(first[1:], t)), list(words[1:])
    if bare and first.isdigit():
        return ("id", _meeting_number(first, t)), list(words[1:])
    board = _board_word(first, boards)
    if board is not None and len(words) > 1 and numeric_date(words[1]) is not None:
        return ("day", (board, _parse_date(words[1], "meeting", t))), list(words[2:])
    if board is not None and bare:
        return ("next", board), list(words[1:])
    return None, list(words)


def find_meeting(
    session: Session, spec: tuple[str, Any], *, now: datetime, zone: ZoneInfo, t: Translator
) -> Meeting:
    """The meeting `spec` (from `read_meeting_words`) names; a clear error if there is none."""
    kind, value = spec
    statement = select(Meeting).options(joinedload(Meeting.board))
    if kind == "id":
        meeting = session.scalar(statement.where(Meeting.id == value))
        if meeting is None:
            raise QuestionError(
                t._("There is no meeting #{id}; {cmd} meetings lists them.").format(
                    cmd=t.cmd, id=value
                ),
                "meeting",
            )
        return meeting
    slug = value[0] if kind == "day" else value
    board = session.scalar(select(Board).where(Board.slug == slug))
    if board is None:
        raise QuestionError(t._("There is no board “{board}”.").format(board=slug), "meeting")
    statement = statement.where(Meeting.board_id == board.id)
    if kind == "day":
        day: date = value[1]
        start = datetime.combine(day, time(0), tzinfo=zone)
        meeting = session.scalar(
            statement.where(
                Meeting.starts_at >= start, Meeting.starts_at < start + timedelta(days=1)
            ).order_by(Meeting.starts_at)
        )
    else:
        meeting = session.scalar(
            statement.where(Meeting.starts_at > now - MEETING_LENGTH).order_by(Meeting.starts_at)
        )
    if meeting is not None:
        return meeting
    upcoming = [
        meeting_spec(m, zone)
        for m in session.scalars(
            statement.where(Meeting.starts_at > now - MEETING_LENGTH)
            .order_by(Meeting.starts_at)
            .limit(3)
        )
    ]
    if kind == "day":
        message = t.grammar(
            t._("The {board} has no meeting on {date}.").format(
                board=_board_label(board, t), date=t.date(value[1])
            )
        )
    else:
        message = t._("The {board} has no meeting coming up.").format(board=_board_label(board, t))
    hint = (
        t._("Its next meetings: {meetings}.").format(meetings=", ".join(upcoming))
        if upcoming
        else t._("{cmd} meetings lists the meetings there are.").format(cmd=t.cmd)
    )
    raise QuestionError(f"{message} {hint}", "meeting")


def meeting_named(
    session: Session, words: str, *, now: datetime, zone: ZoneInfo, t: Translator
) -> Meeting:
    """The meeting named by all of `words` (its number, or board and date)."""
    spec, rest = read_meeting_words(words.split(), t, bare=True, boards=board_names(session))
    if spec is None or rest:
        raise QuestionError(
            t._(
                "“{words}” does not name a meeting; give its number, or its board and date "
                "(e.g. strategic 2026-12-03)."
            ).format(words=words),
            "meeting",
        )
    return find_meeting(session, spec, now=now, zone=zone, t=t)


def _board_label(board: Board, t: Translator) -> str:
    return board.name_cy if t.language == "cy" and board.name_cy else board.name


def open_meetings(session: Session, *, now: datetime, board_id: int | None = None) -> list[Meeting]:
    """Meetings taking questions at `now`, closing soonest first."""
    statement = (
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(
            Meeting.questions_close.is_not(None),
            Meeting.questions_close > now,
            (Meeting.questions_open.is_(None)) | (Meeting.questions_open <= now),
        )
        .order_by(Meeting.questions_close, Meeting.starts_at)
    )
    if board_id is not None:
        statement = statement.where(Meeting.board_id == board_id)
    return list(session.scalars(statement))


def meeting_for_question(
    session: Session, *, now: datetime, zone: ZoneInfo, board_id: int | None, t: Translator
) -> Meeting:
    """The meeting a question without a named meeting is for: the one window open now
    (in a board's channel, that board's)."""
    meetings = open_meetings(session, now=now, board_id=board_id)
    if len(meetings) == 1:
        return meetings[0]
    if not meetings:
        raise QuestionError(
            t._(
                "No meeting is taking questions now. {cmd} meetings shows when the next "
                "window opens."
            ).format(cmd=t.cmd),
            "meeting",
        )
    names = ", ".join(meeting_spec(m, zone) for m in meetings)
    raise QuestionError(
        t._(
            "Questions are open for {count} meetings ({meetings}); start with the one you mean, "
            "e.g. {cmd} ask {example} your question."
        ).format(
            cmd=t.cmd, count=len(meetings), meetings=names, example=meeting_spec(meetings[0], zone)
        ),
        "meeting",
    )


# -- windows ----------------------------------------------------------------------------------
def default_window(meeting: Meeting, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The board's usual window: opens N days before at 9am, closes M days before at 5pm."""
    day = meeting.starts_at.astimezone(zone).date()
    board = meeting.board
    opens = datetime.combine(
        day - timedelta(days=board.questions_open_days), DEFAULT_OPEN_TIME, tzinfo=zone
    )
    closes = datetime.combine(
        day - timedelta(days=board.questions_close_days), DEFAULT_CLOSE_TIME, tzinfo=zone
    )
    return opens, min(closes, meeting.starts_at)


def parse_until(words: Sequence[str], zone: ZoneInfo, t: Translator) -> datetime | None:
    """`[until] DATE [TIME]` as an aware time in `zone` (5pm when no time is given)."""
    rest = list(words)
    if rest and rest[0].lower() in ("until", "tan", "to"):
        rest = rest[1:]
    if not rest:
        return None
    example = t._("e.g. until 2026-11-30 17:00")
    if numeric_date(rest[0]) is None or len(rest) > 2:
        raise QuestionError(
            t._("“{value}” is not a closing time; give a date and a time, {example}.").format(
                value=" ".join(rest), example=example
            ),
            "until",
        )
    day = _parse_date(rest[0], "until", t)
    clock = DEFAULT_CLOSE_TIME
    if len(rest) == 2:
        try:
            clock = parse_clock(rest[1], "until")
        except FieldRefused as refusal:
            raise QuestionError(refusal.sentence(t._), "until") from None
    return datetime.combine(day, clock, tzinfo=zone)


def _check_close(meeting: Meeting, until: datetime, now: datetime, t: Translator) -> None:
    if until <= now:
        raise QuestionError(
            t._("{when} has passed; give a closing time in the future.").format(
                when=t.datetime(until)
            ),
            "until",
        )
    if until > meeting.starts_at:
        raise QuestionError(
            t._("Questions must close before the meeting starts ({when}).").format(
                when=t.datetime(meeting.starts_at)
            ),
            "until",
        )


def window_state(meeting: Meeting, now: datetime) -> WindowState:
    """none, not-yet, open or closed at `now` (a close time in the past means closed)."""
    return MeetingView.of(meeting, now).window


def _audit_window(
    session: Session,
    meeting: Meeting,
    actor: str,
    verb: str,
    zone: ZoneInfo,
    before: tuple[datetime | None, datetime | None],
) -> None:
    audit.record(
        session,
        actor=actor,
        verb=f"window.{verb}",
        entity="meeting",
        ref=meeting_spec(meeting, zone),
        before={
            "questions_open": audit.plain(before[0]),
            "questions_close": audit.plain(before[1]),
        },
        after=audit.snapshot(meeting, ("questions_open", "questions_close")),
    )


def open_window(
    session: Session,
    meeting: Meeting,
    *,
    now: datetime,
    zone: ZoneInfo,
    actor: str,
    t: Translator,
    until: datetime | None = None,
) -> WindowChange:
    """Open a meeting's window now, until `until` or the board's usual closing time."""
    state = window_state(meeting, now)
    if meeting.starts_at <= now:
        raise QuestionError(
            t._("The meeting started {when}; its questions cannot be reopened.").format(
                when=t.datetime(meeting.starts_at)
            ),
            "meeting",
        )
    if state == "open" and meeting.questions_close is not None:
        raise QuestionError(
            t.grammar(
                t._(
                    "Questions for {meeting} are already open until {when}; use {cmd} window "
                    "extend to change the closing time."
                ).format(
                    cmd=t.cmd,
                    meeting=meeting_spec(meeting, zone),
                    when=t.datetime(meeting.questions_close),
                )
            ),
            "meeting",
        )
    if until is None:
        until = default_window(meeting, zone)[1]
        if until <= now:
            raise QuestionError(
                t._(
                    "The board's usual closing time ({when}) has passed; say when questions "
                    "close, e.g. {cmd} window open {meeting} until 2026-11-30 17:00."
                ).format(cmd=t.cmd, when=t.datetime(until), meeting=meeting_spec(meeting, zone)),
                "until",
            )
    _check_close(meeting, until, now, t)
    before = (meeting.questions_open, meeting.questions_close)
    meeting.questions_open, meeting.questions_close = now, until
    _audit_window(session, meeting, actor, "open", zone, before)
    session.flush()
    return WindowChange("open", MeetingInfo.of(meeting, now, zone), before)


def close_window(
    session: Session, meeting: Meeting, *, now: datetime, zone: ZoneInfo, actor: str, t: Translator
) -> WindowChange:
    """Close an open window now."""
    if window_state(meeting, now) != "open":
        raise QuestionError(
            t._("Questions for {meeting} are not open, so there is nothing to close.").format(
                meeting=meeting_spec(meeting, zone)
            ),
            "meeting",
        )
    before = (meeting.questions_open, meeting.questions_close)
    meeting.questions_close = now
    _audit_window(session, meeting, actor, "close", zone, before)
    session.flush()
    return WindowChange("close", MeetingInfo.of(meeting, now, zone), before)


def extend_window(
    session: Session,
    meeting: Meeting,
    *,
    now: datetime,
    zone: ZoneInfo,
    until: datetime | None,
    actor: str,
    t: Translator,
) -> WindowChange:
    """Move the closing time later (reopening a closed window until then)."""
    if until is None:
        raise QuestionError(
            t._(
                "Say until when, e.g. {cmd} window extend {meeting} until 2026-11-30 17:00."
            ).format(cmd=t.cmd, meeting=meeting_spec(meeting, zone)),
            "until",
        )
    if meeting.questions_close is not None and until <= meeting.questions_close:
        raise QuestionError(
            t._("Questions already close {when}; an extension must be later than that.").format(
                when=t.datetime(meeting.questions_close)
            ),
            "until",
        )
    _check_close(meeting, until, now, t)
    before = (meeting.questions_open, meeting.questions_close)
    if meeting.questions_open is None or meeting.questions_open > now:
        meeting.questions_open = now
    meeting.questions_close = until
    _audit_window(session, meeting, actor, "extend", zone, before)
    session.flush()
    return WindowChange("extend", MeetingInfo.of(meeting, now, zone), before)


def require_open_window(meeting: Meeting, now: datetime, zone: ZoneInfo, t: Translator) -> None:
    """Refuse, saying when, unless the meeting takes questions at `now`."""
    state = window_state(meeting, now)
    spec = meeting_spec(meeting, zone)
    if state == "open":
        return
    if state == "closed" and meeting.questions_close is not None:
        message = t._("Questions for {meeting} closed {when}; it is too late to change them.")
        raise QuestionError(
            message.format(meeting=spec, when=t.datetime(meeting.questions_close)), "meeting"
        )
    if state == "not-yet" and meeting.questions_open is not None:
        message = t._("Questions for {meeting} open {when}; try again then.")
        raise QuestionError(
            message.format(meeting=spec, when=t.datetime(meeting.questions_open)), "meeting"
        )
    raise QuestionError(
        t._("{meeting} is not taking questions; the secretariat opens the window.").format(
            meeting=spec
        ),
        "meeting",
    )
