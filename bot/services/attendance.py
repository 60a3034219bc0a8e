"""Attendance: which partners were represented at each board meeting, recorded by the
secretariat (web form, chat command or import) and reported per partner, board and year."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.i18n import N_, Translator
from bot.models import Attendance, Board, Meeting, Partner
from bot.services import audit
from bot.services.queries import MeetingView, PartnerView

STATUSES = ("present", "apologies", "absent")
"""How a partner can be recorded for a meeting: represented, sent apologies, or neither."""
STATUS_LABELS = {
    "present": N_("present"),
    "apologies": N_("apologies"),
    "absent": N_("absent"),
}
NOT_RECORDED = ""


class AttendanceInvalid(ValueError):
    """Attendance values refused; `errors` maps each partner slug to what is wrong."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{slug}: {text}" for slug, text in self.errors.items()))


def partners_expected(session: Session) -> list[Partner]:
    """The partners whose attendance is recorded (not the central team), in a stable order."""
    return list(
        session.scalars(select(Partner).where(Partner.kind == "partner").order_by(Partner.id))
    )


def attendance_of(session: Session, meeting: Meeting) -> dict[str, str]:
    """Each partner's recorded status at `meeting` by slug ("" when not recorded)."""
    recorded = {
        row.partner.slug: row.status
        for row in session.scalars(
            select(Attendance)
            .options(joinedload(Attendance.partner))
            .where(Attendance.meeting_id == meeting.id)
        )
    }
    return {p.slug: recorded.get(p.slug, NOT_RECORDED) for p in partners_expected(session)}


def check_statuses(session: Session, values: Mapping[str, str], t: Translator) -> dict[str, str]:
    """Statuses by partner slug after checking every one; raises `AttendanceInvalid`."""
    known = {p.slug for p in partners_expected(session)}
    errors: dict[str, str] = {}
    checked: dict[str, str] = {}
    for slug, raw in values.items():
        status = raw.strip().lower()
        if slug not in known:
            errors[slug] = t._("“{value}” is not a partner; use {choices}.").format(
                value=slug, choices=", ".join(sorted(known))
            )
        elif status and status not in STATUSES:
            errors[slug] = t._("“{value}” is not an attendance; use {choices}.").format(
                value=raw, choices=", ".join(STATUSES)
            )
        else:
            checked[slug] = status
    if errors:
        raise AttendanceInvalid(errors)
    return checked


def record_attendance(
    session: Session, meeting: Meeting, statuses: Mapping[str, str], *, actor: str
) -> dict[str, str]:
    """Store each partner's checked status ("" clears it); audited; returns what changed."""
    partners = {p.slug: p for p in partners_expected(session)}
    rows = {
        row.partner_id: row
        for row in session.scalars(select(Attendance).where(Attendance.meeting_id == meeting.id))
    }
    before = attendance_of(session, meeting)
    for slug, status in statuses.items():
        partner = partners[slug]
        row = rows.get(partner.id)
        if not status:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(Attendance(meeting_id=meeting.id, partner_id=partner.id, status=status))
        else:
            row.status = status
    session.flush()
    after = {**before, **statuses}
    changed = audit.changes(before, after)
    if changed:
        audit.record(
            session,
            actor=actor,
            verb="update",
            entity="attendance",
            ref=f"meeting:{meeting.id}",
            before={k: before[k] for k in changed},
            after=changed,
        )
    return changed


@dataclass(frozen=True)
class MeetingAttendance:
    """One meeting and each expected partner's recorded status ("" when not recorded)."""

    meeting: MeetingView
    statuses: tuple[tuple[PartnerView, str], ...]

    def partners_with(self, status: str) -> tuple[PartnerView, ...]:
        """The partners recorded with `status` ("" for those not recorded yet)."""
        return tuple(partner for partner, recorded in self.statuses if recorded == status)


def last_meetings_since(
    session: Session, *, since: datetime, now: datetime, board: str | None = None
) -> list[MeetingAttendance]:
    """For each board (or only `board`), its latest meeting that began in [since, now), with
    its attendance: what a digest after a meeting reports."""
    statement = (
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(Meeting.starts_at >= since, Meeting.starts_at < now)
        .order_by(Meeting.starts_at.desc())
    )
    if board:
        statement = statement.where(
            Meeting.board_id.in_(select(Board.id).where(Board.slug == board))
        )
    latest: dict[int, Meeting] = {}
    for meeting in session.scalars(statement):
        latest.setdefault(meeting.board_id, meeting)
    views = {p.slug: PartnerView.of(p) for p in partners_expected(session)}
    return [
        MeetingAttendance(
            MeetingView.of(meeting, now),
            tuple(
                (views[slug], status) for slug, status in attendance_of(session, meeting).items()
            ),
        )
        for meeting in sorted(latest.values(), key=lambda m: m.starts_at)
    ]


@dataclass(frozen=True)
class AttendanceFigure:
    """One partner's record at one board in one year: meetings attended out of recorded."""

    partner: str
    board: str
    year: int
    present: int
    recorded: int

    @property
    def percent(self) -> int:
        """Share of recorded meetings attended, rounded to a whole percent."""
        return round(100 * self.present / self.recorded) if self.recorded else 0


def attendance_report(
    session: Session, zone: ZoneInfo, *, year: int | None = None, board: str | None = None
) -> list[AttendanceFigure]:
    """Attendance per partner, board and year (Europe/London year of the meeting)."""
    statement = (
        select(Attendance, Meeting.starts_at, Board.slug, Partner.slug)
        .join(Meeting, Meeting.id == Attendance.meeting_id)
        .join(Board, Board.id == Meeting.board_id)
        .join(Partner, Partner.id == Attendance.partner_id)
    )
    if board:
        statement = statement.where(Board.slug == board)
    counts: dict[tuple[str, str, int], list[int]] = {}
    for row, starts_at, board_slug, partner_slug in session.execute(statement):
        local_year = starts_at.astimezone(zone).year
        if year is not None and local_year != year:
            continue
        tally = counts.setdefault((partner_slug, board_slug, local_year), [0, 0])
        tally[0] += row.status == "present"
        tally[1] += 1
    return [
        AttendanceFigure(p, b, y, present, recorded)
        for (p, b, y), (present, recorded) in sorted(counts.items())
    ]
