"""The register as a spreadsheet (CSV or XLSX): every decision and action the reader may see.

Cells are made safe against formula injection: a value starting with = + - @, a tab or a
carriage return gets a leading apostrophe, so no spreadsheet runs it as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date

from openpyxl import Workbook
from sqlalchemy.orm import Session

from bot.services.queries import find_actions, find_decisions
from bot.visibility import Audience

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EVERYTHING = 1_000_000
DECISION_COLUMNS = ("ref", "board", "decided_on", "title", "summary", "marking", "link")
ACTION_COLUMNS = (
    "ref",
    "title",
    "owner_partner",
    "owner",
    "due_date",
    "status",
    "rag",
    "theme",
    "decisions",
    "last_update",
)


def safe_cell(value: object) -> str:
    """Text a spreadsheet shows as it is, never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def register_rows(
    session: Session, audience: Audience, *, today: date
) -> dict[str, list[Sequence[str]]]:
    """Sheets by name, each a header row then one row per visible item."""
    decisions = find_decisions(session, audience, per_page=EVERYTHING).items
    actions = find_actions(session, audience, today=today, per_page=EVERYTHING).items
    return {
        "decisions": [
            DECISION_COLUMNS,
            *(
                [
                    safe_cell(v)
                    for v in (
                        d.ref,
                        d.board.slug,
                        d.decided_on.isoformat(),
                        d.title,
                        d.summary,
                        d.marking.value,
                        d.link,
                    )
                ]
                for d in decisions
            ),
        ],
        "actions": [
            ACTION_COLUMNS,
            *(
                [
                    safe_cell(v)
                    for v in (
                        a.ref,
                        a.title,
                        a.owner_partner.slug,
                        a.owner,
                        a.due_date.isoformat() if a.due_date else "",
                        a.status.value,
                        a.rag.value if a.rag else "",
                        a.theme,
                        " ".join(a.decision_refs),
                        a.last_update,
                    )
                ]
                for a in actions
            ),
        ],
    }


def as_csv(rows: Iterable[Sequence[str]]) -> bytes:
    """One sheet as UTF-8 CSV (with a byte-order mark so spreadsheet programs read it as UTF-8)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def as_xlsx(sheets: dict[str, list[Sequence[str]]]) -> bytes:
    """Every sheet in one workbook, all cells as text."""
    book = Workbook()
    first = True
    for name, rows in sheets.items():
        sheet = book.active if first else book.create_sheet()
        first = False
        sheet.title = name
        for row in rows:
            sheet.append(list(row))
        for row_cells in sheet.iter_rows():
            for cell in row_cells:
                cell.data_type = "s"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
