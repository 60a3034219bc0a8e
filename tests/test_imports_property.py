"""Property: whatever is done to a valid file, an import either succeeds or raises ImportRejected
with located problems, and a rejected import has written nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.imports import ImportRejected, import_file
from bot.models import Action, AuditEvent, Decision, Meeting
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_imports import EXAMPLES, ICS

TRICKY = [
    "",
    " ",
    "31/02/2026",
    "2026-02-30",
    "2026-03-29 01:30",
    "2026-10-25 01:30",
    "2026-12-03",
    "torfean",
    "gwent-police,torfaen",
    ";",
    "Heddlu Gwent",
    "SB",
    "para 14",
    "11",
    "19",
    "14.5",
    "RED",
    "Done",
    "secret",
    "x" * 600,
    "a\nb",
    "\x00",
    "\u200b",
    "=SUM(A1)",
    '"',
    "9999-12-31",
    "2026-12-03 10:00+14:00",
    "TP-001",
    "SB-2026-031",
    "https://",
    "0000-01-01 00:00",
]
ICS_LINES = [
    "\nDTSTART:2026",
    "\nDTSTART;TZID=Nowhere/Land:20270617T100000",
    "\nDTEND:20200101T000000Z",
    "\nCATEGORIES:",
    "\nRRULE:FREQ=WEEKLY",
    "\nBEGIN:VEVENT",
    "\nEND:VEVENT",
    "\nX-SCRUTINY-QUESTIONS-OPEN:soon",
    "\nUID:sb-2027-06@srs.example",
    "\n ",
    ";",
    ":",
]
cells = st.one_of(
    st.sampled_from(TRICKY),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=40),
)


def example_rows(kind: str) -> tuple[list[str], list[list[str]]]:
    with (EXAMPLES / f"{kind}.csv").open(encoding="utf-8", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    return header, rows[:8]


def snapshot(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Action, Decision, Meeting, AuditEvent)
    )


@pytest.mark.parametrize("kind", ["actions", "decisions", "meetings"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_a_corrupted_file_is_imported_or_rejected_whole(
    session: Session, seed: Seed, tmp_path: Path, kind: str, data: st.DataObject
) -> None:
    if kind == "decisions" and snapshot(session)[2] < 24:  # decisions name the example meetings
        import_file(session, "meetings", EXAMPLES / "meetings.csv", actor="setup", now=NOW)
        session.commit()
    header, rows = example_rows(kind)
    edits = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(rows) - 1), st.integers(0, len(header) - 1), cells),
            max_size=4,
        )
    )
    for row, column, value in edits:
        rows[row][column] = value
    if data.draw(st.booleans()):
        rows[data.draw(st.integers(0, len(rows) - 1))].append(data.draw(cells))
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    content = buffer.getvalue().encode("utf-8")
    if data.draw(st.booleans()):
        at = data.draw(st.integers(0, len(content)))
        content = content[:at] + data.draw(st.binary(min_size=1, max_size=4)) + content[at:]
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(content)

    before = snapshot(session)
    try:
        import_file(session, kind, path, actor="property", now=NOW)
        event("imported")
    except ImportRejected as rejection:
        event("rejected")
        assert rejection.problems
        assert all(str(problem).startswith(f"{kind}.csv line ") for problem in rejection.problems)
        assert not session.new and not session.dirty
        assert snapshot(session) == before
    finally:
        session.rollback()


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 2000), st.one_of(cells, st.sampled_from(ICS_LINES))), max_size=4
    ),
    cut=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_a_corrupted_calendar_is_imported_or_rejected_whole(
    session: Session, seed: Seed, tmp_path: Path, edits: list[tuple[int, str]], cut: int | None
) -> None:
    text = ICS.format(start="20270617T100000")
    for at, insertion in edits:
        at = min(at, len(text))
        text = text[:at] + insertion + text[at:]
    if cut is not None:
        text = text[:cut]
    path = tmp_path / "meetings.ics"
    path.write_text(text, encoding="utf-8")
    before = snapshot(session)
    try:
        import_file(session, "meetings", path, actor="property", now=NOW)
        event("imported")
    except ImportRejected as rejection:
        event("rejected")
        assert all(str(problem).startswith("meetings.ics line ") for problem in rejection.problems)
        assert snapshot(session) == before
    finally:
        session.rollback()
