"""`scrutiny-bot import template KIND`: an .xlsx to fill in, with the columns, an example row and
drop-down lists of the values each constrained column accepts.

The columns come from the import kind itself, so the template never drifts from what the
importer reads; the lists of partners and boards come from the collaboration in the database.
Importing an untouched template imports its example row, which the tests check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

from bot.domain import EXEMPT_PARAGRAPHS, ActionStatus, Marking, Rag
from bot.i18n import _
from bot.imports.base import Kind
from bot.services.attendance import STATUSES as ATTENDANCE

LISTS_SHEET = "Lists"

EXAMPLES: dict[str, dict[str, object]] = {
    "actions": {
        "ref": "TP-101",
        "title": "Replace the core network switches",
        "owner": "A. N. Officer",
        "due_date": date(2027, 3, 31),
        "status": ActionStatus.IN_PROGRESS.value,
        "rag": Rag.AMBER.value,
        "theme": "Shared systems",
        "marking": Marking.OFFICIAL.value,
        "last_update": "Order placed; installation booked for February.",
    },
    "decisions": {
        "ref": "2027-001",
        "decided_on": date(2027, 1, 14),
        "title": "Approved the tactical plan for 2027/28",
        "summary": "The board approved the plan and asked for a review in six months.",
        "marking": Marking.OFFICIAL.value,
    },
    "meetings": {
        "starts_at": datetime(2027, 1, 14, 10, 0),
        "ends_at": datetime(2027, 1, 14, 12, 0),
        "location": "Online (Microsoft Teams)",
    },
    "answers": {
        "question_ref": "Q-SB-2026-12-001",
        "answer": "The revised completion date is 31 March 2027.",
        "answered_by": "Head of the SRS",
    },
    "attendance": {
        "meeting_date": date(2027, 1, 14),
        "status": "present",
    },
}
"""An example row per kind: values a reader recognises, in the formats the importer accepts."""


def _lists(kind: str, partners: Sequence[str], boards: Sequence[str]) -> dict[str, list[str]]:
    """Column -> the values its drop-down offers."""
    statuses = ATTENDANCE if kind == "attendance" else tuple(s.value for s in ActionStatus)
    return {
        "status": list(statuses),
        "partner": list(partners),
        "rag": [rag.value for rag in Rag],
        "marking": [marking.value for marking in Marking],
        "exempt_paragraph": [str(number) for number in EXEMPT_PARAGRAPHS],
        "owner_partner": list(partners),
        "board": list(boards),
    }


def write_template(
    kind: type[Kind], path: Path, *, partners: Sequence[str], boards: Sequence[str]
) -> Path:
    """Write the template for `kind` to `path` (.xlsx) and return the path."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter, quote_sheetname
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook always has one sheet
    sheet.title = kind.name.capitalize()
    sheet.append(list(kind.columns))
    sheet.append([_example(kind.name, column, partners, boards) for column in kind.columns])
    sheet.freeze_panes = "A2"
    lists = book.create_sheet(LISTS_SHEET)
    lists_of = _lists(kind.name, partners, boards)
    offered = {c: v for c, v in lists_of.items() if c in kind.columns and v}
    for index, (column, values) in enumerate(offered.items(), 1):
        letter = get_column_letter(index)
        lists.cell(row=1, column=index, value=column)
        for row, value in enumerate(values, 2):
            lists.cell(row=row, column=index, value=value)
        source = f"{quote_sheetname(LISTS_SHEET)}!${letter}$2:${letter}${len(values) + 1}"
        target = get_column_letter(kind.columns.index(column) + 1)
        validation = DataValidation(type="list", formula1=source, allow_blank=True)
        validation.error = _("Choose one of the values in the {sheet} sheet.").format(
            sheet=LISTS_SHEET
        )
        validation.errorTitle = column
        validation.add(f"{target}2:{target}5000")
        sheet.add_data_validation(validation)
    for index, column in enumerate(kind.columns, 1):
        sheet.column_dimensions[get_column_letter(index)].width = max(14, len(column) + 4)
    book.save(path)
    return path


def _example(kind: str, column: str, partners: Sequence[str], boards: Sequence[str]) -> object:
    given: Mapping[str, object] = EXAMPLES.get(kind, {})
    if column in given:
        return given[column]
    if column in ("owner_partner", "partner") and partners:
        return partners[0]
    if column == "board" and boards:
        return boards[0]
    return None
