"""Imports that take real spreadsheets: forgiving and Welsh headers below title rows, the first
visible sheet (or --sheet), formula cells read from their saved results or refused by cell
address, UK dates, status synonyms, "row" and cell addresses in messages, a warning for letters
lost to a legacy encoding, and decision refs in a council's own numbering.

Workbooks are written with openpyxl as Excel writes them; a formula's saved result is put into
the sheet XML the way Excel stores it (`<f>` with a cached `<v>`), which openpyxl cannot do.
"""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli import cli
from bot.domain import ActionStatus, Rag
from bot.imports import ImportRejected, import_file
from bot.models import Action, AuditEvent, Decision
from tests.conftest import NOW
from tests.factories import Seed

runner = CliRunner()


def workbook(
    path: Path,
    rows: list[list[Any]],
    *,
    title: str = "Tactical plan",
    hidden_first: bool = True,
    titles_above: int = 2,
) -> Path:
    """A workbook as a council keeps it: an old hidden sheet first, title rows above the table."""
    book = openpyxl.Workbook()
    old = book.active
    assert old is not None
    old.title = "Old plan"
    old.append(["ref", "title", "owner_partner"])
    old.append(["TP-900", "An old action from last year's plan", "torfaen"])
    if hidden_first:
        old.sheet_state = "hidden"
    sheet = book.create_sheet(title)
    for number in range(titles_above):
        sheet.append([f"SRS tactical plan 2026/27 (title row {number + 1})"])
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def save_results(path: Path, results: dict[str, str]) -> None:
    """Store each formula cell's result (by address) in the sheet XML, as Excel does on save."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    name = "xl/worksheets/sheet2.xml"
    xml = parts[name].decode("utf-8")
    for address, value in results.items():
        xml, count = re.subn(
            rf'(<c r="{address}"[^>]*>)(<f>[^<]*</f>)<v\s*/?>(</v>)?',
            rf"\g<1>\g<2><v>{value}</v>",
            xml,
        )
        assert count == 1, (address, xml)
    parts[name] = xml.encode("utf-8")
    with zipfile.ZipFile(path, "w") as target:
        for part, data in parts.items():
            target.writestr(part, data)


HEADER = ["Ref", "Action", "Owner (partner)", "Due date", "Status", "RAG", "Latest update"]


def problems(session: Session, path: Path, kind: str = "actions") -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        import_file(session, kind, path, actor="test", now=NOW)
    session.rollback()
    return [str(p) for p in caught.value.problems]


def test_a_real_plan_imports_from_the_visible_sheet_below_its_title_rows(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = workbook(
        tmp_path / "plan.xlsx",
        [
            HEADER,
            [
                "TP-101",
                "Replace the Torfaen core switches",
                "Torfaen",
                "31/01/2027",
                "On track",
                "G",
                "Order placed",
            ],
            [
                "TP-102",
                "Close the old data centre",
                "newport",
                date(2027, 3, 31),
                "Complete",
                "Green",
                "",
            ],
            [
                "TP-103",
                "Agree the cyber plan",
                "Cyngor Sir Fynwy",
                "2027-02-15",
                "On hold",
                "coch",
                "Waiting for the board",
            ],
        ],
    )
    report = import_file(session, "actions", path, actor="test", now=NOW)
    session.commit()
    assert (report.created, report.problems) == (3, [])
    rows = {a.ref: a for a in session.scalars(select(Action).where(Action.ref.like("TP-10%")))}
    assert rows["TP-101"].due_date == date(2027, 1, 31)
    assert rows["TP-101"].status is ActionStatus.IN_PROGRESS
    assert rows["TP-102"].status is ActionStatus.DONE and rows["TP-102"].rag is Rag.GREEN
    assert rows["TP-103"].status is ActionStatus.BLOCKED and rows["TP-103"].rag is Rag.RED
    assert rows["TP-103"].owner_partner.slug == "monmouthshire"
    # The hidden sheet was not read.
    assert session.scalar(select(Action).where(Action.ref == "TP-900")) is None


def test_welsh_headers_and_a_named_sheet(session: Session, seed: Seed, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "cynllun.xlsx",
        [
            ["Cyfeirnod", "Teitl", "Partner perchennog", "Dyddiad targed", "Statws"],
            ["TP-201", "Symud i'r ganolfan ddata", "Torfaen", "28/02/2027", "Wedi'i gwblhau"],
        ],
        title="Cynllun tactegol",
        titles_above=1,
    )
    report = import_file(session, "actions", path, actor="test", now=NOW)
    assert report.created == 1
    action = session.scalar(select(Action).where(Action.ref == "TP-201"))
    assert action is not None and action.status is ActionStatus.DONE
    session.rollback()
    # --sheet reads the hidden old plan by name (any case).
    old = import_file(session, "actions", path, actor="test", now=NOW, sheet="OLD PLAN")
    assert old.created == 1
    assert session.scalar(select(Action).where(Action.ref == "TP-900")) is not None
    session.rollback()
    missing = problems_for_sheet(session, path, "Plan 2025")
    assert missing == [
        'cynllun.xlsx line 1: there is no sheet "Plan 2025"; use --sheet with one of: '
        "Old plan, Cynllun tactegol."
    ]


def problems_for_sheet(session: Session, path: Path, sheet: str) -> list[str]:
    with pytest.raises(ImportRejected) as caught:
        import_file(session, "actions", path, actor="test", now=NOW, sheet=sheet)
    return [str(p) for p in caught.value.problems]


def test_formulas_are_read_from_their_saved_results_or_refused_by_cell(
    session: Session, seed: Seed, engine: Engine, tmp_path: Path
) -> None:
    rows = [
        HEADER,
        ["TP-301", "Saved formula", "torfaen", "=DATE(2027,1,31)", "in-progress", "A", ""],
        ["TP-302", "Unsaved formula", "torfaen", "=EDATE(D4,1)", "in-progress", "A", ""],
    ]
    path = workbook(tmp_path / "formulas.xlsx", rows)
    save_results(path, {"D4": "46418"})  # Excel's serial number for 31 January 2027
    before = session.scalar(select(func.count()).select_from(AuditEvent))
    assert problems(session, path) == [
        "formulas.xlsx cell 'Tactical plan'!D5, due_date \"=EDATE(D4,1)\": a formula whose "
        "result was never saved; open the file in Excel and save it again (Excel then stores "
        "the results), or paste the values in place of the formula."
    ]
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == before

    save_results(path, {"D5": "46449"})
    report = import_file(session, "actions", path, actor="test", now=NOW)
    assert report.created == 2
    found = session.execute(select(Action.ref, Action.due_date).where(Action.ref > "TP-3"))
    due = {ref: day for ref, day in found}
    assert due == {"TP-301": date(2027, 1, 31), "TP-302": date(2027, 3, 3)}


def test_spreadsheet_messages_say_row_and_give_the_cell(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = workbook(
        tmp_path / "plan.xlsx",
        [
            HEADER,
            ["TP-401", "Good", "torfaen", "31/01/2027", "done", "", ""],
            ["TP-402", "Bad date", "torfaen", "31/02/2027", "done", "", ""],
            ["TP-403", "Odd status", "torfaen", "", "finished-ish", "", ""],
            ["TP-401", "Twice", "torfaen", "", "", "", ""],
        ],
    )
    assert problems(session, path) == [
        "plan.xlsx cell 'Tactical plan'!D5, due_date \"31/02/2027\": not a date; "
        "use YYYY-MM-DD (e.g. 2027-02-28).",
        "plan.xlsx cell 'Tactical plan'!E6, status \"finished-ish\": not an allowed value; "
        "use one of not-started, in-progress, blocked, done, cancelled.",
        "plan.xlsx cell 'Tactical plan'!A7, ref \"TP-401\": appears twice in this file "
        "(first on row 4); keep one row for it.",
    ]
    header_only = workbook(tmp_path / "nothing.xlsx", [["Ref", "Action"]], titles_above=0)
    assert problems(session, header_only) == [
        'nothing.xlsx row 1: the required column "owner_partner" is missing; add it to the '
        "header row (the columns are ref, title, owner_partner, owner, due_date, status, rag, "
        "theme, marking, exempt_paragraph, restricted_to, last_update, title_cy, decisions)."
    ]


def test_letters_lost_to_a_legacy_encoding_are_flagged_and_shown_by_the_cli(
    session: Session, seed: Seed, database_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(
        "ref,title,owner_partner\n"
        "TP-501,Nh? Gwent partnership review,torfaen\n"
        "TP-502,See https://example.gov.uk/page?id=4,torfaen\n",
        encoding="utf-8",
    )
    report = import_file(session, "actions", path, actor="test", now=NOW)
    session.rollback()
    assert [str(p) for p in report.problems] == [
        'actions.csv line 2, title "Nh? Gwent partnership review": a ? stands inside a word: '
        "letters such as ŵ or ŷ may have been lost when the file was saved in an older "
        "encoding; check the original and, if so, save it again as CSV UTF-8 or .xlsx."
    ]
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 0, result.output
    assert 'Note: actions.csv line 2, title "Nh? Gwent partnership review": a ? stands' in (
        result.stdout
    )


def test_decision_refs_may_follow_a_councils_own_numbering(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "decisions.csv"
    path.write_text(
        "ref,board,decided_on,title\n"
        "TCBC/2026/14,strategic,2026-11-19,Adopted the joint cyber policy\n"
        "2026-77,finance-governance,19/11/2026,Agreed the contributions\n",
        encoding="utf-8",
    )
    report = import_file(session, "decisions", path, actor="test", now=NOW)
    assert report.created == 2
    refs = set(session.scalars(select(Decision.ref).where(Decision.title.like("A%"))))
    assert {"TCBC/2026/14", "2026-77"} <= refs


@pytest.mark.parametrize("kind", ["actions", "decisions", "meetings"])
def test_the_template_has_columns_lists_and_an_example_that_imports(
    kind: str, session: Session, seed: Seed, database_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    path = tmp_path / f"{kind}.xlsx"
    written = runner.invoke(cli, ["import", "template", kind, "--out", str(path)])
    assert written.exit_code == 0, written.output
    assert f"Wrote {path}: fill in a row per {kind}" in written.stdout
    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    from bot.imports import KINDS

    assert [cell.value for cell in sheet[1]] == list(KINDS[kind].columns)
    lists = {v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists, "the template offers no drop-down lists"
    listed = {book["Lists"].cell(row=1, column=c).value for c in range(1, 10)} - {None}
    if kind == "actions":
        assert {"status", "rag", "marking", "owner_partner"} <= listed
        column = [book["Lists"].cell(row=r, column=1).value for r in range(2, 7)]
        assert column == [status.value for status in ActionStatus]
    # The untouched template imports its example row.
    dry = runner.invoke(cli, ["import", kind, str(path), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "1 created" in dry.stdout


def test_template_refuses_an_unknown_kind(database_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(cli, ["import", "template", "minutes"])
    assert result.exit_code == 2
    assert (
        'Unknown kind "minutes": use one of actions, decisions, meetings, answers, attendance.'
        in (result.stderr)
    )


def _collaboration_with(tmp_path: Path, imports: str) -> Path:
    example = Path(__file__).resolve().parent.parent / "config" / "collaboration.example.yaml"
    path = tmp_path / "collaboration.yaml"
    path.write_text(example.read_text(encoding="utf-8") + "\n" + imports, encoding="utf-8")
    return path


def test_the_collaboration_file_can_name_a_councils_own_headers(
    session: Session, seed: Seed, database_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    config = _collaboration_with(
        tmp_path,
        'imports:\n  actions:\n    "Action No": ref\n    "Lead body": owner_partner\n',
    )
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_CONFIG", str(config))
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    path = workbook(
        tmp_path / "own.xlsx",
        [["Action No", "Action", "Lead body"], ["TP-601", "Own headers", "torfaen"]],
        titles_above=0,
    )
    result = runner.invoke(cli, ["import", "actions", str(path)])
    assert result.exit_code == 0, result.output
    assert session.scalar(select(Action).where(Action.ref == "TP-601")) is not None
    # Without the map the same header is unknown.
    monkeypatch.delenv("SCRUTINY_CONFIG")
    again = runner.invoke(cli, ["import", "actions", str(path), "--dry-run"])
    assert again.exit_code == 1 and 'header "Action No": unknown column' in again.stderr


def test_a_bad_column_map_is_refused_with_its_line(tmp_path: Path) -> None:
    config = _collaboration_with(
        tmp_path, 'imports:\n  actions:\n    "Action No": reference\n  minutes:\n    A: b\n'
    )
    result = runner.invoke(cli, ["config", "check", str(config)])
    assert result.exit_code == 1
    lines = config.read_text(encoding="utf-8").splitlines()
    reference_line = lines.index('    "Action No": reference') + 1
    assert f"line {reference_line}" in result.stdout or f":{reference_line}:" in result.stdout
    assert 'unknown actions column "reference"' in result.stdout
    assert 'unknown import kind "minutes"' in result.stdout
