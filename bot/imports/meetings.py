"""Board meetings from CSV, XLSX or iCalendar: matched by calendar UID, else board and start.

Times without an offset are wall-clock times in the collaboration's zone; a time the clocks
skip or repeat is refused with a hint. A blank question window opens the board's
questions_open_days before the meeting at 09:00 and closes questions_close_days before at 17:00.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any, ClassVar

from bot.fields import board_lookup
from bot.i18n import _
from bot.import_columns import IMPORT_COLUMNS
from bot.imports.base import Existing, Kind, Record, load_existing
from bot.imports.cells import Cells, at_local
from bot.imports.readers import Table, read_ics
from bot.models import Board, Meeting
from bot.text_input import CALENDAR_UID, LOCATION, LOCATION_CY

QUESTIONS_OPEN_AT = time(9, 0)
QUESTIONS_CLOSE_AT = time(17, 0)


def _plain_name(text: str) -> str:
    return " ".join(text.lower().replace("&", " and ").split())


class MeetingsImport(Kind):
    """meetings: board,starts_at,ends_at,location,link,questions_open,questions_close,location_cy
    (or .ics)"""

    name = "meetings"
    entity = "meeting"
    model = Meeting
    columns = IMPORT_COLUMNS["meetings"]
    required = ("board", "starts_at")
    references: ClassVar[dict[str, str]] = {"board_id": "board"}
    fields = (
        "board_id",
        "starts_at",
        "ends_at",
        "location",
        "location_cy",
        "link",
        "questions_open",
        "questions_close",
        "source_uid",
    )

    def read(
        self, path: Path, *, sheet: str | None = None, column_map: Mapping[str, str] | None = None
    ) -> Table:
        if path.suffix.lower() == ".ics":
            return read_ics(path, self.zone)
        return super().read(path, sheet=sheet, column_map=column_map)

    def load(self) -> None:
        self.boards = board_lookup(self.session)
        self.slugs = {"board_id": {b.id: b.slug for b in self.boards.items}}
        stored = load_existing(self.session, Meeting, "id", self.fields).values()
        self.by_slot: dict[tuple[int, datetime], Existing] = {
            (m.values["board_id"], m.values["starts_at"]): m for m in stored
        }
        self.by_uid = {m.values["source_uid"]: m for m in stored if m.values["source_uid"]}

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def _calendar_board(self, cells: Cells) -> Board | None:
        categories = cells.raw("categories")
        for category in categories.split(";"):
            found = self.boards.find(category) if category.strip() else None
            if found is not None:
                return found
        summary = _plain_name(cells.raw("summary"))
        named = [
            board
            for board in self.boards.items
            if _plain_name(board.name) in summary or _plain_name(board.name_cy) in summary
        ]
        if len(named) == 1:
            return named[0]
        slugs = ", ".join(self.boards.slug(b) for b in self.boards.items)
        cells.problem(
            "board",
            _("no board found in the event's categories or title"),
            _(
                "add a category with the board's slug ({slugs}), or put its name in the title"
            ).format(slugs=slugs),
            value=categories or cells.raw("summary"),
        )
        return None

    def _default_window(self, board: Board, starts: datetime) -> tuple[datetime, datetime]:
        """The board's usual question window for a meeting starting at `starts`."""
        day = starts.astimezone(self.zone).date()
        opens = at_local(
            day - timedelta(days=board.questions_open_days), QUESTIONS_OPEN_AT, self.zone
        )
        closes = at_local(
            day - timedelta(days=board.questions_close_days), QUESTIONS_CLOSE_AT, self.zone
        )
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def _set_by_hand(self, board: Board, stored: Existing) -> bool:
        """Whether a stored meeting's question window differs from its board's usual one."""
        usual = self._default_window(board, stored.values["starts_at"])
        return (stored.values["questions_open"], stored.values["questions_close"]) != usual

    def _window(self, cells: Cells, board: Board, starts: datetime) -> tuple[datetime, datetime]:
        usual_opens, usual_closes = self._default_window(board, starts)
        opens = cells.moment("questions_open") or usual_opens
        closes = cells.moment("questions_close") or usual_closes
        if cells.raw("questions_close") and closes > starts:
            cells.problem(
                "questions_close",
                _("questions would close after the meeting starts"),
                _("give a time before {starts}").format(starts=self._local(starts)),
            )
        elif (cells.raw("questions_open") or cells.raw("questions_close")) and opens >= closes:
            cells.problem(
                "questions_open",
                _("questions would open after they close"),
                _("give a time before {closes}").format(closes=self._local(closes)),
            )
        return opens, closes

    def _stored(self, cells: Cells, board: Board, starts: datetime, uid: str) -> Existing | None:
        by_uid = self.by_uid.get(uid) if uid else None
        by_slot = self.by_slot.get((board.id, starts))
        other = by_slot if by_slot is not None and by_slot is not by_uid else None
        if other is not None and (
            by_uid is not None or other.values["source_uid"] not in (None, uid)
        ):
            cells.problem(
                "starts_at",
                _("another {board} meeting already starts at this time").format(board=board.name),
                _("change the time, or remove the other meeting first"),
            )
            return None
        return by_uid or by_slot

    def check(self, cells: Cells) -> Record | None:
        from_calendar = "categories" in cells.row.cells
        board = self._calendar_board(cells) if from_calendar else cells.one("board", self.boards)
        starts = cells.moment("starts_at", required=True)
        values: dict[str, Any] = {}
        if cells.has("ends_at"):
            ends = cells.moment("ends_at")
            if ends is not None and starts is not None and ends <= starts:
                cells.problem(
                    "ends_at",
                    _("the meeting ends before it starts"),
                    _("give an end time after {starts}").format(starts=self._local(starts)),
                )
            values["ends_at"] = ends
        # A calendar event carries no papers link and often no location: what it leaves out
        # keeps what the secretariat typed rather than blanking it.
        if cells.has("location") and (cells.raw("location") or not from_calendar):
            values["location"] = cells.text("location", LOCATION)
        if cells.has("location_cy"):
            values["location_cy"] = cells.text("location_cy", LOCATION_CY)
        if cells.has("link") and (cells.raw("link") or not from_calendar):
            values["link"] = cells.link("link")
        uid = cells.text("source_uid", CALENDAR_UID) if from_calendar else ""
        if board is None or starts is None:
            return None
        stored = self._stored(cells, board, starts, uid)
        window_given = bool(cells.raw("questions_open") or cells.raw("questions_close"))
        if not (from_calendar and stored and not window_given and self._set_by_hand(board, stored)):
            values["questions_open"], values["questions_close"] = self._window(cells, board, starts)
        values["board_id"], values["starts_at"] = board.id, starts
        unique: list[tuple[str, Any]] = [("starts_at", ("slot", board.id, starts))]
        if uid:
            values["source_uid"] = uid
            unique.append(("source_uid", ("uid", uid)))
        label = f"{board.prefix} {self._local(starts)}"
        return Record(cells.line, label, values, unique=unique, current=stored)

    def defaults(self) -> dict[str, Any]:
        return {"ends_at": None, "location": "", "location_cy": "", "link": "", "source_uid": None}

    def stamp(self, created: bool) -> dict[str, Any]:
        return {}
