"""Board decisions: upsert by ref; meeting_date links a decision to its board's meeting.

A meeting_date must be the date of a meeting of the decision's board when that board has any
meetings stored. When it has none yet, the decision is stored without a meeting and the report
carries a notice: import the meetings, then this file again, and the links are added.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from sqlalchemy import select

from bot.fields import board_lookup, partner_lookup
from bot.i18n import _
from bot.import_columns import IMPORT_COLUMNS
from bot.imports.base import (
    MARKED_DEFAULTS,
    Kind,
    Record,
    by_ref,
    check_marked,
    load_existing,
)
from bot.imports.cells import Cells
from bot.imports.problems import ImportProblem
from bot.models import Board, Decision, Meeting
from bot.text_input import SUMMARY, SUMMARY_CY, TITLE, TITLE_CY


class DecisionsImport(Kind):
    """decisions: ref,board,meeting_date,decided_on,title,summary,marking,exempt_paragraph,
    restricted_to,partners,link,title_cy,summary_cy"""

    name = "decisions"
    entity = "decision"
    model = Decision
    columns = IMPORT_COLUMNS["decisions"]
    required = ("ref", "board", "decided_on", "title")
    references: ClassVar[dict[str, str]] = {"board_id": "board"}
    fields = (
        "board_id",
        "meeting_id",
        "decided_on",
        "title",
        "summary",
        "marking",
        "exempt_paragraph",
        "restricted_to",
        "partners",
        "link",
        "title_cy",
        "summary_cy",
    )

    def load(self) -> None:
        self.boards = board_lookup(self.session)
        self.partners = partner_lookup(self.session)
        self.slugs = {"board_id": {b.id: b.slug for b in self.boards.items}}
        self.meetings: dict[tuple[int, date], int] = {}
        self.meeting_days: dict[int, list[date]] = {}
        query = select(Meeting.id, Meeting.board_id, Meeting.starts_at).order_by(Meeting.starts_at)
        for meeting_id, board_id, starts_at in self.session.execute(query):
            day = starts_at.astimezone(self.zone).date()
            self.meetings.setdefault((board_id, day), meeting_id)
            self.meeting_days.setdefault(board_id, []).append(day)
        self.unlinked: dict[int, ImportProblem] = {}
        self.existing = load_existing(self.session, Decision, "ref", self.fields)

    def _meeting(self, cells: Cells, board: Board, day: date) -> int | None:
        found = self.meetings.get((board.id, day))
        if found is not None:
            return found
        days = self.meeting_days.get(board.id)
        if days:
            nearest = sorted(days, key=lambda d: abs((d - day).days))[:2]
            cells.problem(
                "meeting_date",
                _("the {board} has no meeting on this date").format(board=board.name),
                _(
                    "use the date of one of its meetings (nearest: {dates}), or leave it blank"
                ).format(dates=", ".join(d.isoformat() for d in sorted(nearest))),
            )
        elif board.id not in self.unlinked:
            self.unlinked[board.id] = ImportProblem(
                cells.table.source,
                cells.line,
                "meeting_date",
                cells.raw("meeting_date"),
                _("not linked to a meeting: no {board} meetings are stored yet").format(
                    board=board.name
                ),
                _("import the meetings, then this file again to link its decisions"),
            )
            self.notices.append(self.unlinked[board.id])
        return None

    def check(self, cells: Cells) -> Record | None:
        ref = cells.ref("ref")
        board = cells.one("board", self.boards)
        # Refs may follow a council's own numbering; only another board's prefix is refused,
        # since that is a decision filed under the wrong board.
        others = [b.prefix for b in self.boards.items if board is not None and b.id != board.id]
        if board is not None and ref and any(ref.startswith(p + "-") for p in others):
            cells.problem(
                "ref",
                _("a {board} reference must not start with another board's prefix").format(
                    board=board.name
                ),
                _("use a reference like {prefix}-2026-014, or correct the board").format(
                    prefix=board.prefix
                ),
            )
        meeting_day = cells.date("meeting_date") if cells.has("meeting_date") else None
        decided_on = cells.date("decided_on")
        if decided_on is None and not cells.raw("decided_on"):
            if meeting_day is not None:
                decided_on = meeting_day
            else:
                cells.problem(
                    "decided_on",
                    _("a value is required"),
                    _("give the date of the decision (YYYY-MM-DD)"),
                )
        values: dict[str, Any] = {
            "board_id": board.id if board else None,
            "decided_on": decided_on,
            "title": cells.text("title", TITLE, required=True),
        }
        if cells.has("meeting_date"):
            meeting_id = None
            if board is not None and meeting_day is not None:
                meeting_id = self._meeting(cells, board, meeting_day)
            values["meeting_id"] = meeting_id
        if cells.has("summary"):
            values["summary"] = cells.text("summary", SUMMARY)
        if cells.has("title_cy"):
            values["title_cy"] = cells.text("title_cy", TITLE_CY)
        if cells.has("summary_cy"):
            values["summary_cy"] = cells.text("summary_cy", SUMMARY_CY)
        check_marked(cells, values, self.partners)
        if cells.has("partners"):
            values["partners"] = cells.many("partners", self.partners)
        if cells.has("link"):
            values["link"] = cells.link("link")
        return by_ref(cells, ref, values, self.existing)

    def defaults(self) -> dict[str, Any]:
        return {
            "meeting_id": None,
            "summary": "",
            "title_cy": "",
            "summary_cy": "",
            "partners": [],
            **MARKED_DEFAULTS,
            "link": "",
        }

    def stamp(self, created: bool) -> dict[str, Any]:
        # recorded_at is when the decision entered the register: digests rely on it not moving.
        if created:
            return {"recorded_at": self.now, "updated_at": self.now}
        return {"updated_at": self.now}
