"""Attendance: which partners were at which board meeting, one row per meeting and partner.

A row names the meeting by its board and (Europe/London) date, as the secretariat's minutes do.
The checked statuses are written through `attendance.record_attendance`, so an imported
attendance is stored and audited exactly like one recorded on the web or in chat.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.fields import Lookup, board_lookup
from bot.i18n import _
from bot.import_columns import IMPORT_COLUMNS
from bot.imports.base import Existing, Kind, Plan, Record
from bot.imports.cells import Cells
from bot.models import Attendance, Meeting, Partner
from bot.services import attendance


def _meetings_by_day(session: Session, zone: ZoneInfo) -> dict[tuple[int, date], Meeting]:
    found: dict[tuple[int, date], Meeting] = {}
    for meeting in session.scalars(select(Meeting).order_by(Meeting.starts_at)):
        day = meeting.starts_at.astimezone(zone).date()
        found.setdefault((meeting.board_id, day), meeting)
    return found


class AttendanceImport(Kind):
    """attendance: board,meeting_date,partner,status"""

    name = "attendance"
    entity = "attendance"
    model = Attendance
    columns = IMPORT_COLUMNS["attendance"]
    required = ("board", "meeting_date", "partner", "status")
    fields = ("status",)
    limits: ClassVar[dict[str, int | None]] = {}

    def load(self) -> None:
        self.boards = board_lookup(self.session)
        expected = attendance.partners_expected(self.session)
        self.partners: Lookup[Partner] = Lookup(
            "partner", expected, lambda p: p.slug, lambda p: (p.name, p.name_cy)
        )
        self.meetings = _meetings_by_day(self.session, self.zone)
        self.existing = {
            (row.meeting_id, row.partner_id): Existing(0, {"status": row.status})
            for row in self.session.scalars(select(Attendance))
        }

    def check(self, cells: Cells) -> Record | None:
        board = cells.one("board", self.boards)
        day = cells.date("meeting_date", required=True)
        partner = cells.one("partner", self.partners)
        status = cells.raw("status").lower()
        if status and status not in attendance.STATUSES:
            cells.problem(
                "status",
                _("not an attendance"),
                _("use one of {values}").format(values=", ".join(attendance.STATUSES)),
            )
        elif not status:
            cells.problem(
                "status", _("a value is required"), _("fill in {column}").format(column="status")
            )
        meeting = self.meetings.get((board.id, day)) if board and day else None
        if board is not None and day is not None and meeting is None:
            cells.problem(
                "meeting_date",
                _("the {board} has no meeting on this day").format(board=board.name),
                _("check the date, or import the meeting first (scrutiny-bot import meetings)"),
            )
        if meeting is None or partner is None:
            return None
        key = (meeting.id, partner.id)
        return Record(
            cells.line,
            f"{board.slug if board else ''} {day} {partner.slug}",
            {"status": status},
            identity={"meeting": meeting, "partner": partner.slug},
            unique=[("partner", key)],
            current=self.existing.get(key),
        )

    def apply(self, todo: Plan, actor: str) -> None:
        """Each meeting's new or changed statuses through `attendance.record_attendance`."""
        meetings: dict[int, Meeting] = {}
        statuses: dict[int, dict[str, str]] = defaultdict(dict)
        for record in [*todo.creates, *(record for record, _changed in todo.updates)]:
            meeting: Meeting = record.identity["meeting"]
            meetings[meeting.id] = meeting
            statuses[meeting.id][record.identity["partner"]] = record.values["status"]
        for meeting_id, meeting in meetings.items():
            attendance.record_attendance(self.session, meeting, statuses[meeting_id], actor=actor)
