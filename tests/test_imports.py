"""Imports of actions, decisions, meetings and answers: all rows or none, idempotent, audited."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain import ActionStatus, Marking, QuestionState, Rag
from bot.imports import KINDS, ImportRejected, import_file
from bot.models import Action, Attendance, AuditEvent, Decision, Meeting, Question
from bot.services.attendance import attendance_report
from tests.conftest import NOW
from tests.factories import Seed

EXAMPLES = Path(__file__).resolve().parent.parent / "config" / "example"
ACTION_HEADER = list(KINDS["actions"].columns)
DECISION_HEADER = list(KINDS["decisions"].columns)
MEETING_HEADER = list(KINDS["meetings"].columns)
GOOD_ACTION = {
    "ref": "TP-101",
    "title": "Replace Wi-Fi in Newport libraries",
    "owner_partner": "newport",
    "owner": "T. Price",
    "due_date": "2027-01-29",
    "status": "in-progress",
    "rag": "green",
    "theme": "Network refresh",
    "marking": "official",
    "exempt_paragraph": "",
    "restricted_to": "",
    "last_update": "Survey done.",
}


def write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def action(**changes: str) -> dict[str, str]:
    return {**GOOD_ACTION, **changes}


def count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def rejected(session: Session, kind: str, path: Path) -> list[str]:
    """The problems an import reports, as the user reads them; it must write nothing."""
    before = (
        count(session, Action),
        count(session, Decision),
        count(session, Meeting),
        count(session, AuditEvent),
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(session, kind, path, actor="test", now=NOW)
    after = (
        count(session, Action),
        count(session, Decision),
        count(session, Meeting),
        count(session, AuditEvent),
    )
    assert after == before
    assert not session.new and not session.dirty
    return [str(problem) for problem in caught.value.problems]


# -- the example files ---------------------------------------------------------------------


def test_example_files_import_cleanly_and_again_change_nothing(
    session: Session, seed: Seed
) -> None:
    reports = [
        import_file(session, kind, EXAMPLES / f"{kind}.csv", actor="test", now=NOW)
        for kind in ("meetings", "decisions", "actions")
    ]
    assert [r.problems for r in reports] == [[], [], []]
    assert [r.rows for r in reports] == [24, 30, 40]
    session.commit()
    events = count(session, AuditEvent)
    again = [
        import_file(session, kind, EXAMPLES / f"{kind}.csv", actor="test", now=NOW)
        for kind in ("meetings", "decisions", "actions")
    ]
    assert [(r.created, r.updated, r.unchanged) for r in again] == [
        (0, 0, 24),
        (0, 0, 30),
        (0, 0, 40),
    ]
    assert count(session, AuditEvent) == events

    tp014 = session.scalars(select(Action).where(Action.ref == "TP-014")).one()
    assert (tp014.title, tp014.owner_partner.slug, tp014.due_date, tp014.rag) == (
        "Migrate file shares to SharePoint Online",
        "torfaen",
        date(2026, 9, 30),
        Rag.RED,
    )
    torfaen = session.scalars(
        select(Action).join(Action.owner_partner).where(Action.owner_partner.has(slug="torfaen"))
    ).all()
    today = NOW.date()
    assert len([a for a in torfaen if a.is_overdue(today) and a.exempt_paragraph is None]) >= 3
    police = session.scalars(
        select(Action).where(Action.marking == Marking.OFFICIAL_SENSITIVE)
    ).all()
    assert any(a.restricted_to == ["gwent-police"] for a in police)

    sb031 = session.scalars(select(Decision).where(Decision.ref == "SB-2026-031")).one()
    assert sb031.meeting is not None
    assert sb031.meeting.starts_at == datetime(2026, 11, 19, 14, 0, tzinfo=UTC)
    december = session.scalars(
        select(Meeting).where(Meeting.starts_at == datetime(2026, 12, 3, 10, 0, tzinfo=UTC))
    ).one()
    assert december.board.slug == "strategic"
    assert december.questions_close == datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    upcoming = session.scalar(
        select(func.count()).select_from(Meeting).where(Meeting.starts_at > NOW)
    )
    assert upcoming is not None and upcoming >= 6


@pytest.mark.parametrize("kind", ["actions", "decisions", "meetings"])
def test_example_files_have_exactly_the_documented_columns(kind: str) -> None:
    with (EXAMPLES / f"{kind}.csv").open(encoding="utf-8") as handle:
        header = handle.readline().strip()
    assert header == ",".join(KINDS[kind].columns)


# -- formats ---------------------------------------------------------------------------------


def test_csv_with_byte_order_mark_and_forgiving_spellings(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [
            action(
                owner_partner="Heddlu Gwent",
                status="In Progress",
                rag="R",
                marking="OFFICIAL-SENSITIVE",
                exempt_paragraph="para 14",
                restricted_to="gwent-police; Gwent Police",
            ),
        ],
    )
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    report = import_file(session, "actions", path, actor="test", now=NOW)
    assert (report.created, report.rows) == (1, 1)
    stored = session.scalars(select(Action).where(Action.ref == "TP-101")).one()
    assert stored.owner_partner.slug == "gwent-police"
    assert (stored.status, stored.rag, stored.marking) == (
        ActionStatus.IN_PROGRESS,
        Rag.RED,
        Marking.OFFICIAL_SENSITIVE,
    )
    assert (stored.exempt_paragraph, stored.restricted_to) == (14, ["gwent-police"])


def test_xlsx_with_real_date_cells(session: Session, seed: Seed, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(DECISION_HEADER)
    sheet.append(
        [
            "SB-2026-040",
            "SB",
            datetime(2026, 12, 3),
            date(2026, 12, 3),
            "Agreed the roadmap",
            "",
            "official",
            14,
            None,
            "torfaen;newport",
            None,
        ]
    )
    sheet.append([None] * len(DECISION_HEADER))
    sheet.append(
        [
            "FG-2026-050",
            "Bwrdd Cyllid a Llywodraethu",
            None,
            "2026-11-30",
            "Noted the budget",
            "Summary",
            None,
            None,
            None,
            None,
            "https://democracy.torfaen.gov.uk/documents/s1/Budget.pdf",
        ]
    )
    path = tmp_path / "decisions.xlsx"
    book.save(path)
    report = import_file(session, "decisions", path, actor="test", now=NOW)
    assert (report.rows, report.created) == (2, 2)
    sb = session.scalars(select(Decision).where(Decision.ref == "SB-2026-040")).one()
    assert sb.board.slug == "strategic" and sb.decided_on == date(2026, 12, 3)
    assert sb.meeting is seed.meetings[0]
    assert (sb.exempt_paragraph, sb.partners, sb.recorded_at) == (14, ["torfaen", "newport"], NOW)
    fg = session.scalars(select(Decision).where(Decision.ref == "FG-2026-050")).one()
    assert fg.board.slug == "finance-governance" and fg.meeting_id is None


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//SRS//Boards//EN
BEGIN:VEVENT
UID:sb-2027-06@srs.example
SUMMARY:SRS Strategic Board
CATEGORIES:Board meetings,strategic
DTSTART;TZID=Europe/London:{start}
DTEND;TZID=Europe/London:20270617T120000
LOCATION:Civic Centre\\, Newport
URL:https://democracy.torfaen.gov.uk/ieListDocuments.aspx?CId=512&MId=9200
X-SCRUTINY-QUESTIONS-CLOSE:2027-06-11 17:00
END:VEVENT
BEGIN:VEVENT
UID:fg-2027-07@srs.example
SUMMARY:Finance and Governance Board
DTSTART:20270708T130000Z
END:VEVENT
BEGIN:VEVENT
UID:cancelled@srs.example
SUMMARY:Strategic Board (cancelled)
STATUS:CANCELLED
DTSTART:20270709T130000Z
END:VEVENT
END:VCALENDAR
"""


def test_ics_meetings_are_matched_by_uid_on_reimport(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "meetings.ics"
    path.write_text(ICS.format(start="20270617T100000"), encoding="utf-8")
    first = import_file(session, "meetings", path, actor="test", now=NOW)
    assert (first.rows, first.created) == (2, 2)
    sb = session.scalars(
        select(Meeting).where(Meeting.source_uid == "sb-2027-06@srs.example")
    ).one()
    assert sb.board.slug == "strategic"
    assert sb.starts_at == datetime(2027, 6, 17, 9, 0, tzinfo=UTC)  # 10:00 BST
    assert (sb.location, sb.questions_close) == (
        "Civic Centre, Newport",
        datetime(2027, 6, 11, 16, 0, tzinfo=UTC),
    )
    assert sb.questions_open == datetime(2027, 6, 3, 8, 0, tzinfo=UTC)  # 14 days before, 09:00 BST
    fg = session.scalars(
        select(Meeting).where(Meeting.source_uid == "fg-2027-07@srs.example")
    ).one()
    assert fg.board.slug == "finance-governance" and fg.ends_at is None
    session.commit()
    events = count(session, AuditEvent)

    again = import_file(session, "meetings", path, actor="test", now=NOW)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert count(session, AuditEvent) == events

    path.write_text(ICS.format(start="20270617T093000"), encoding="utf-8")
    moved = import_file(session, "meetings", path, actor="test", now=NOW)
    assert (moved.created, moved.updated, moved.unchanged) == (0, 1, 1)
    session.expire_all()
    assert sb.starts_at == datetime(2027, 6, 17, 8, 30, tzinfo=UTC)


def test_ics_event_adopts_a_meeting_loaded_from_csv(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "boards.ics"
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:abc@x\r\n"
        "SUMMARY:Strategic Board\r\nDTSTART:20261203T100000\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        encoding="utf-8",
    )
    report = import_file(session, "meetings", path, actor="test", now=NOW)
    assert (report.created, report.updated) == (0, 1)
    session.expire_all()
    assert seed.meetings[0].source_uid == "abc@x"


# -- every class of problem ------------------------------------------------------------------

ACTION_PROBLEMS = [
    (
        {"due_date": "31/02/2026"},
        'actions.csv line 2, due_date "31/02/2026": not a date; use YYYY-MM-DD (e.g. 2026-02-28).',
    ),
    (
        {"due_date": "2026-13-01"},
        'due_date "2026-13-01": not a date; use YYYY-MM-DD (e.g. 2026-12-01).',
    ),
    (
        {"owner_partner": "torfean"},
        'owner_partner "torfean": unknown partner; use one of blaenau-gwent, '
        "monmouthshire, newport, "
        'torfaen, gwent-police, srs (did you mean "torfaen"?)',
    ),
    ({"owner_partner": ""}, "owner_partner: a value is required; fill in owner_partner."),
    (
        {"status": "finito"},
        'status "finito": not an allowed value; use one of not-started, '
        "in-progress, blocked, done, "
        "cancelled.",
    ),
    ({"rag": "purple"}, 'rag "purple": not an allowed value; use one of red, amber, green.'),
    (
        {"marking": "secret"},
        'marking "secret": not an allowed value; use one of official, official-sensitive.',
    ),
    (
        {"exempt_paragraph": "11"},
        'exempt_paragraph "11": not a Schedule 12A paragraph that applies in '
        "Wales; use a number from 12 "
        "to 18, or leave it blank if the item is open.",
    ),
    (
        {"restricted_to": "gwent-police,torfaen"},
        'restricted_to "gwent-police,torfaen": unknown partner '
        '"gwent-police,torfaen"; separate partners '
        "with ; (semicolons).",
    ),
    ({"title": ""}, "title: a value is required; fill in title."),
    ({"title": "x" * 501}, "too long (501 characters); shorten it to at most 500 characters."),
    ({"title": "two\nlines"}, "contains a line break; put the value on one line."),
    ({"ref": "TP 14"}, 'ref "TP 14": not a valid reference; use letters, digits and hyphens only'),
    ({"due_date": "1926-01-01"}, "the year is out of range; use a year from 2000 to 2099."),
]


@pytest.mark.parametrize(("change", "expected"), ACTION_PROBLEMS)
def test_each_bad_action_cell_is_reported_with_line_column_value_and_fix(
    session: Session, seed: Seed, tmp_path: Path, change: dict[str, str], expected: str
) -> None:
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, [action(**change)])
    problems = rejected(session, "actions", path)
    assert len(problems) == 1
    assert problems[0].startswith("actions.csv line 2, ")
    assert expected in problems[0]


def test_duplicate_refs_and_all_problems_in_one_report(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [
            action(),
            action(title="Second"),
            action(ref="TP-102", due_date="soon"),
            action(ref="tp-101"),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(session, "actions", path, actor="test", now=NOW)
    assert [str(p) for p in caught.value.problems] == [
        'actions.csv line 3, ref "TP-101": appears twice in this file (first on line 2); '
        "keep one row for it.",
        'actions.csv line 4, due_date "soon": not a date; use YYYY-MM-DD (e.g. 2026-02-28).',
        'actions.csv line 5, ref "tp-101": appears twice in this file (first on line 2); '
        "keep one row for it.",
    ]
    assert str(caught.value) == "Nothing was imported (3 problems in 4 rows)."


HEADER_PROBLEMS = [
    (
        ["ref", "title", "owner_partner", "owner partnr"],
        'line 1, header "owner partnr": unknown column; rename it to "owner_partner".',
    ),
    (
        ["ref", "title"],
        'actions.csv line 1: the required column "owner_partner" is missing; add it',
    ),
    (
        ["ref", "title", "owner_partner", "title"],
        'line 1, header "title": the column appears twice (columns 2 and 4); keep one of them.',
    ),
    (["ref;title;owner_partner"], "separate the columns with commas, not semicolons or tabs"),
]


@pytest.mark.parametrize(("header", "expected"), HEADER_PROBLEMS)
def test_header_problems_are_reported_against_line_1(
    session: Session, seed: Seed, tmp_path: Path, header: list[str], expected: str
) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(",".join(header) + "\nTP-1,Title,torfaen\n", encoding="utf-8")
    assert any(expected in problem for problem in rejected(session, "actions", path))


def test_a_file_that_is_not_utf8_is_reported_with_line_and_byte_offset(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "actions.csv"
    path.write_bytes(b"ref,title,owner_partner\nTP-1,Cafe,torfaen\nTP-2,Caf\xe9 Wi-Fi,newport\n")
    problems = rejected(session, "actions", path)
    assert problems == [
        "actions.csv line 3: not UTF-8 text (byte 0xE9 at byte offset 50); save the file as "
        '"CSV UTF-8 (Comma delimited)" in Excel, or convert it with: iconv -f '
        "WINDOWS-1252 -t UTF-8."
    ]


def test_a_row_with_more_cells_than_columns(session: Session, seed: Seed, tmp_path: Path) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(
        "ref,title,owner_partner\nTP-1,Move servers, phase 2,torfaen\n", encoding="utf-8"
    )
    assert rejected(session, "actions", path) == [
        "actions.csv line 2: this row has values beyond the named columns (4 cells, 3 columns "
        "named); quote values that contain commas, or name the extra column in the header."
    ]


def test_decision_problems(session: Session, seed: Seed, tmp_path: Path) -> None:
    good = {
        "ref": "SB-2026-050",
        "board": "strategic",
        "decided_on": "2026-12-03",
        "title": "Agreed",
    }
    path = write_csv(
        tmp_path / "decisions.csv",
        DECISION_HEADER,
        [
            {**good, "board": "strategy"},
            {**good, "ref": "FG-2026-051"},
            {**good, "ref": "SB-2026-052", "meeting_date": "2026-12-04"},
            {**good, "ref": "SB-2026-053", "link": "democracy.torfaen.gov.uk/x"},
            {**good, "ref": "SB-2026-054", "decided_on": "", "partners": "torfaen;police"},
        ],
    )
    assert rejected(session, "decisions", path) == [
        'decisions.csv line 2, board "strategy": unknown board; use one of strategic, '
        'finance-governance, business-collaboration (did you mean "strategic"?)',
        'decisions.csv line 3, ref "FG-2026-051": a Strategic Board reference must not start '
        "with another board's prefix; use a reference like SB-2026-014, or correct the board.",
        'decisions.csv line 4, meeting_date "2026-12-04": the Strategic Board '
        "has no meeting on this "
        "date; use the date of one of its meetings (nearest: 2026-12-03), or leave it blank.",
        'decisions.csv line 5, link "democracy.torfaen.gov.uk/x": not a web address; give the full '
        "address, starting https://, without spaces or | < >.",
        "decisions.csv line 6, decided_on: a value is required; give the date of the decision "
        "(YYYY-MM-DD).",
        'decisions.csv line 6, partners "torfaen;police": unknown partner "police"; use one of '
        "blaenau-gwent, monmouthshire, newport, torfaen, gwent-police, srs "
        '(did you mean "gwent-police"?)',
    ]


def test_meeting_time_problems_including_both_clock_changes(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "meetings.csv",
        MEETING_HEADER,
        [
            {"board": "strategic", "starts_at": "2026-03-29 01:30"},
            {"board": "strategic", "starts_at": "2026-10-25 01:30"},
            {"board": "strategic", "starts_at": "2026-06-18"},
            {"board": "FG", "starts_at": "2026-06-25 14:00", "ends_at": "2026-06-25 13:00"},
            {"board": "BC", "starts_at": "2026-06-11 10:00", "questions_close": "2026-06-12 17:00"},
            {
                "board": "BC",
                "starts_at": "2026-07-30 10:00",
                "questions_open": "2026-07-29 09:00",
                "questions_close": "2026-07-20 17:00",
            },
        ],
    )
    assert rejected(session, "meetings", path) == [
        'meetings.csv line 2, starts_at "2026-03-29 01:30": this time does not exist in '
        "Europe/London: the clocks go forward that night; use the time after the change "
        "(e.g. 2026-03-29 02:30) or add an offset.",
        'meetings.csv line 3, starts_at "2026-10-25 01:30": this time happens twice in '
        "Europe/London: the clocks go back that night; add an offset: +01:00 for the first "
        "(summer time), +00:00 for the second.",
        'meetings.csv line 4, starts_at "2026-06-18": a date without a time; use YYYY-MM-DD HH:MM '
        "in Europe/London time, or add an offset (e.g. 2026-12-03 10:00).",
        'meetings.csv line 5, ends_at "2026-06-25 13:00": the meeting ends before it starts; '
        "give an end time after 2026-06-25 14:00.",
        'meetings.csv line 6, questions_close "2026-06-12 17:00": questions would close after the '
        "meeting starts; give a time before 2026-06-11 10:00.",
        'meetings.csv line 7, questions_open "2026-07-29 09:00": questions would open after they '
        "close; give a time before 2026-07-20 17:00.",
    ]


def test_an_offset_settles_an_ambiguous_time(session: Session, seed: Seed, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "meetings.csv",
        MEETING_HEADER,
        [
            {"board": "strategic", "starts_at": "2026-10-25 01:30+01:00"},
            {"board": "strategic", "starts_at": "2026-10-25 01:30+00:00"},
        ],
    )
    assert import_file(session, "meetings", path, actor="test", now=NOW).created == 2
    starts = session.scalars(select(Meeting.starts_at).order_by(Meeting.starts_at)).all()
    assert datetime(2026, 10, 25, 0, 30, tzinfo=UTC) in starts
    assert datetime(2026, 10, 25, 1, 30, tzinfo=UTC) in starts


def test_ics_problems(session: Session, seed: Seed, tmp_path: Path) -> None:
    path = tmp_path / "meetings.ics"
    path.write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n"
        "BEGIN:VEVENT\nUID:a\nSUMMARY:Team lunch\nDTSTART:20261201T120000Z\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:b\nCATEGORIES:strategic\nDTSTART;VALUE=DATE:20261201\nEND:VEVENT\n"
        "BEGIN:VEVENT\nUID:c\nCATEGORIES:SB\n"
        "DTSTART;TZID=Europe/London:20260329T013000\nEND:VEVENT\n"
        "END:VCALENDAR\n",
        encoding="utf-8",
    )
    problems = rejected(session, "meetings", path)
    assert problems[0].startswith(
        'meetings.ics line 4, CATEGORIES/SUMMARY "Team lunch": no board found in the event\'s '
        "categories or title; add a category with the board's slug"
    )
    assert problems[1].startswith(
        'meetings.ics line 9, DTSTART "2026-12-01": a date without a time'
    )
    assert problems[2].startswith(
        'meetings.ics line 14, DTSTART "2026-03-29 01:30": this time does not exist'
    )


def test_meeting_conflicting_with_another_uid(session: Session, seed: Seed, tmp_path: Path) -> None:
    seed.meetings[0].source_uid = "first@x"
    session.commit()
    path = tmp_path / "m.ics"
    path.write_text(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:second@x\nCATEGORIES:strategic\n"
        "DTSTART:20261203T100000Z\nEND:VEVENT\nEND:VCALENDAR\n",
        encoding="utf-8",
    )
    assert rejected(session, "meetings", path) == [
        'm.ics line 4, DTSTART "2026-12-03 10:00+00:00": another Strategic '
        "Board meeting already starts "
        "at this time; change the time, or remove the other meeting first."
    ]


# -- all or nothing, idempotence, audit, dry run -----------------------------------------------


def test_one_bad_row_among_good_ones_writes_nothing(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    rows = [action(ref=f"TP-2{i:02d}") for i in range(50)]
    rows[30]["due_date"] = "31/02/2026"
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, rows)
    with pytest.raises(ImportRejected) as caught:
        import_file(session, "actions", path, actor="test", now=NOW)
    assert caught.value.rows == 50
    assert str(caught.value) == "Nothing was imported (1 problem in 50 rows)."
    session.rollback()
    assert count(session, Action) == len(seed.actions)


def test_changed_row_is_one_update_with_before_and_after(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "actions.csv", ACTION_HEADER, [action(), action(ref="TP-102")])
    created = import_file(session, "actions", path, actor="test", now=NOW)
    assert (created.created, created.updated) == (2, 0)
    session.commit()
    create_events = session.scalars(
        select(AuditEvent).where(AuditEvent.entity_ref == "TP-101")
    ).all()
    assert [(e.verb, e.before) for e in create_events] == [("import.create", None)]
    assert (
        create_events[0].after is not None and create_events[0].after["owner_partner"] == "newport"
    )

    write_csv(
        path,
        ACTION_HEADER,
        [action(status="done", rag="", owner_partner="torfaen"), action(ref="TP-102")],
    )
    report = import_file(session, "actions", path, actor="someone", now=NOW + timedelta(days=1))
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    session.commit()
    update_events = session.scalars(
        select(AuditEvent).where(AuditEvent.verb == "import.update")
    ).all()
    assert len(update_events) == 1
    event = update_events[0]
    assert (event.actor, event.entity, event.entity_ref) == ("someone", "action", "TP-101")
    assert event.before == {"status": "in-progress", "rag": "green", "owner_partner": "newport"}
    assert event.after == {"status": "done", "rag": None, "owner_partner": "torfaen"}


def test_reimport_changes_nothing_and_writes_no_audit(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "actions.csv", ACTION_HEADER, [action(restricted_to="gwent-police;torfaen")]
    )
    import_file(session, "actions", path, actor="test", now=NOW)
    session.commit()
    events = count(session, AuditEvent)
    report = import_file(session, "actions", path, actor="test", now=NOW)
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert count(session, AuditEvent) == events


def test_columns_left_out_of_a_file_are_left_alone(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(
        "ref,title,owner_partner,status\nTP-001,Migrate file shares to SharePoint Online,"
        "torfaen,blocked\n",
        encoding="utf-8",
    )
    report = import_file(session, "actions", path, actor="test", now=NOW)
    assert (report.updated, report.created) == (1, 0)
    tp001 = seed.actions["TP-001"]
    session.expire_all()
    assert (tp001.status, tp001.rag, tp001.owner, tp001.due_date) == (
        ActionStatus.BLOCKED,
        Rag.RED,
        "S. Hughes",
        date(2026, 9, 30),
    )


def test_dry_run_counts_and_writes_nothing(session: Session, seed: Seed, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [
            action(),
            action(ref="TP-001", owner_partner="torfaen", title="Changed"),
        ],
    )
    before = (count(session, Action), count(session, AuditEvent))
    report = import_file(session, "actions", path, actor="test", dry_run=True, now=NOW)
    assert (report.created, report.updated, report.unchanged) == (1, 1, 0)
    assert not session.new and not session.dirty
    assert (count(session, Action), count(session, AuditEvent)) == before
    session.expire_all()
    assert seed.actions["TP-001"].title == "Migrate file shares to SharePoint Online"


def test_recorded_at_is_set_on_create_only(session: Session, seed: Seed, tmp_path: Path) -> None:
    row = {
        "ref": "SB-2026-060",
        "board": "strategic",
        "decided_on": "2026-12-03",
        "title": "Agreed",
    }
    path = write_csv(tmp_path / "decisions.csv", DECISION_HEADER, [row])
    import_file(session, "decisions", path, actor="test", now=NOW)
    session.commit()
    later = NOW + timedelta(days=3)
    write_csv(path, DECISION_HEADER, [{**row, "title": "Agreed, with changes"}])
    assert import_file(session, "decisions", path, actor="test", now=later).updated == 1
    session.commit()
    stored = session.scalars(select(Decision).where(Decision.ref == "SB-2026-060")).one()
    session.refresh(stored)
    assert (stored.recorded_at, stored.updated_at) == (NOW, later)


def test_meeting_date_is_left_unlinked_with_a_notice_when_the_board_has_no_meetings(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    row = {
        "ref": "BC-2026-070",
        "board": "business-collaboration",
        "meeting_date": "2026-11-12",
        "decided_on": "2026-11-12",
        "title": "Agreed",
    }
    path = write_csv(
        tmp_path / "decisions.csv", DECISION_HEADER, [row, {**row, "ref": "BC-2026-071"}]
    )
    report = import_file(session, "decisions", path, actor="test", now=NOW)
    assert report.created == 2
    assert [str(p) for p in report.problems] == [
        'decisions.csv line 2, meeting_date "2026-11-12": not linked to a meeting: no Business & '
        "Collaboration Board meetings are stored yet; import the meetings, then this file again to "
        "link its decisions."
    ]
    assert (
        session.scalars(select(Decision.meeting_id).where(Decision.ref == "BC-2026-070")).one()
        is None
    )


def test_progress_is_reported_every_thousand_rows(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "actions.csv", ACTION_HEADER, [action(ref=f"TP-{i:05d}") for i in range(2500)]
    )
    calls: list[tuple[int, int]] = []
    import_file(session, "actions", path, actor="test", progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1000, 2500), (2000, 2500), (2500, 2500)]


# -- answers -------------------------------------------------------------------------------------


def test_answers_set_the_answer_and_refuse_unknown_or_merged_questions(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    def question(ref: str, **extra: object) -> Question:
        q = Question(
            ref=ref,
            meeting=seed.meetings[0],
            text="Why is TP-014 late?",
            asker=seed.members["sian-hughes"],
            partner=seed.partners["torfaen"],
            **extra,
        )
        session.add(q)
        return q

    target = question("Q-SB-2026-12-001", state=QuestionState.ACCEPTED)
    session.flush()
    question("Q-SB-2026-12-002", state=QuestionState.MERGED, merged_into_id=target.id)
    session.commit()
    path = tmp_path / "answers.csv"
    path.write_text(
        "question_ref,answer,answered_by\n"
        'Q-SB-2026-12-001,"Permissions clean-up first; done by March.",C. Morgan\n',
        encoding="utf-8",
    )
    report = import_file(session, "answers", path, actor="test", now=NOW)
    assert report.updated == 1
    session.commit()
    session.refresh(target)
    assert (target.state, target.answered_by, target.answered_at) == (
        QuestionState.ANSWERED,
        "C. Morgan",
        NOW,
    )
    assert import_file(session, "answers", path, actor="test", now=NOW).unchanged == 1

    path.write_text(
        "question_ref,answer\nQ-SB-2026-12-O01,Yes\nQ-SB-2026-12-002,Yes\n", encoding="utf-8"
    )
    assert rejected(session, "answers", path) == [
        'answers.csv line 2, question_ref "Q-SB-2026-12-O01": no question has this reference; '
        'did you mean "Q-SB-2026-12-001"?',
        'answers.csv line 3, question_ref "Q-SB-2026-12-002": Q-SB-2026-12-002 was merged into '
        "Q-SB-2026-12-001, so it cannot be answered; answer Q-SB-2026-12-001 instead.",
    ]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "actions.csv",
            b"",
            "actions.csv line 1: the file has no header row; make the first line the column",
        ),
        ("actions.xlsx", b"PK not really", "actions.xlsx line 1: not a readable Excel workbook"),
        (
            "actions.csv",
            b'ref,title,owner_partner\nTP-1,"unclosed,torfaen\n',
            "actions.csv line 2: not readable as CSV (unexpected end of data); check the quoting",
        ),
        (
            "meetings.ics",
            b"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:r\nCATEGORIES:SB\nDTSTART:20270107T100000Z\n"
            b"RRULE:FREQ=MONTHLY\nEND:VEVENT\nEND:VCALENDAR\n",
            'meetings.ics line 2, RRULE "FREQ=MONTHLY": a repeating event (RRULE) cannot be '
            "imported as meetings; export the meetings as single events",
        ),
    ],
)
def test_unreadable_files_are_refused_with_a_fix(
    session: Session, seed: Seed, tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    kind = name.split(".")[0]
    problems = rejected(session, kind, path)
    assert problems[0].startswith(expected), problems


# -- attendance ------------------------------------------------------------------------------


def test_attendance_example_imports_through_the_attendance_service(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    import_file(session, "meetings", EXAMPLES / "meetings.csv", actor="test", now=NOW)
    with (EXAMPLES / "attendance.csv").open(encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(KINDS["attendance"].columns)
    report = import_file(session, "attendance", EXAMPLES / "attendance.csv", actor="test", now=NOW)
    assert (report.rows, report.created, report.problems) == (20, 20, [])
    session.commit()
    figures = attendance_report(session, ZoneInfo("Europe/London"), year=2026, board="strategic")
    torfaen = next(f for f in figures if f.partner == "torfaen")
    police = next(f for f in figures if f.partner == "gwent-police")
    assert (torfaen.present, torfaen.recorded, police.present, police.recorded) == (2, 2, 1, 2)
    events = count(session, AuditEvent)
    again = import_file(session, "attendance", EXAMPLES / "attendance.csv", actor="test", now=NOW)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 20)
    assert count(session, AuditEvent) == events

    changed = tmp_path / "attendance.csv"
    changed.write_text(
        "board,meeting_date,partner,status\nStrategic Board,2026-06-18,Gwent Police,apologies\n",
        encoding="utf-8",
    )
    report = import_file(session, "attendance", changed, actor="ceri-morgan", now=NOW)
    assert (report.created, report.updated) == (0, 1)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.entity == "attendance").order_by(AuditEvent.id.desc())
    ).first()
    assert event is not None and event.actor == "ceri-morgan"
    assert event.after == {"gwent-police": "apologies"}


def test_bad_attendance_rows_are_all_listed_and_nothing_is_written(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = tmp_path / "attendance.csv"
    path.write_text(
        "board,meeting_date,partner,status\n"
        "strategic,2026-12-03,torfaen,present\n"
        "strategic,2026-12-04,newport,present\n"
        "strategic,2026-12-03,cardiff,present\n"
        "strategic,2026-12-03,newport,asleep\n"
        "strategic,2026-12-03,torfaen,absent\n",
        encoding="utf-8",
    )
    problems = rejected(session, "attendance", path)
    assert len(problems) == 4, problems
    assert any("line 3" in p and "no meeting on this day" in p for p in problems)
    assert any("line 4" in p and "unknown partner" in p for p in problems)
    assert any("line 5" in p and "not an attendance" in p for p in problems)
    assert any("line 6" in p and "appears twice" in p for p in problems)
    assert count(session, Attendance) == 0
