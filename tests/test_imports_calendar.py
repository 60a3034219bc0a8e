"""Calendar re-imports never wipe what the secretariat typed, and times the clocks skip or repeat
are refused from .ics as from CSV: with files as Outlook/Exchange (Windows zone names and their
own VTIMEZONE) and Google Calendar (IANA zone names) export them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.imports import ImportRejected, import_file
from bot.models import AuditEvent, Meeting
from tests.conftest import NOW
from tests.factories import Seed

OUTLOOK_ZONE = """BEGIN:VTIMEZONE
TZID:GMT Standard Time
BEGIN:STANDARD
DTSTART:16011028T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0100
TZOFFSETTO:-0000
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T010000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:-0000
TZOFFSETTO:+0100
END:DAYLIGHT
END:VTIMEZONE"""


def outlook(path: Path, *events: tuple[str, str, str]) -> Path:
    """An Outlook/Exchange export: (UID, local start, local end) per event, Windows zone name."""
    body = "\n".join(
        "BEGIN:VEVENT\nCLASS:PUBLIC\n"
        f'DTSTART;TZID="GMT Standard Time":{start}\nDTEND;TZID="GMT Standard Time":{end}\n'
        f"SUMMARY:Strategic Board\nUID:{uid}\nEND:VEVENT"
        for uid, start, end in events
    )
    path.write_text(
        "BEGIN:VCALENDAR\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\n"
        f"VERSION:2.0\nMETHOD:PUBLISH\n{OUTLOOK_ZONE}\n{body}\nEND:VCALENDAR\n",
        encoding="utf-8",
    )
    return path


def google(path: Path, start: str) -> Path:
    path.write_text(
        "BEGIN:VCALENDAR\nPRODID:-//Google Inc//Google Calendar 70.9054//EN\nVERSION:2.0\n"
        "BEGIN:VEVENT\n"
        f"DTSTART;TZID=Europe/London:{start}\nDTEND;TZID=Europe/London:{start[:9]}230000\n"
        "SUMMARY:Finance & Governance Board\nUID:abc123@google.com\nLOCATION:Newport\n"
        "END:VEVENT\nEND:VCALENDAR\n",
        encoding="utf-8",
    )
    return path


def test_a_calendar_re_import_keeps_location_link_and_a_hand_set_deadline(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    csv = tmp_path / "meetings.csv"
    csv.write_text(
        "board,starts_at,ends_at,location,link,questions_open,questions_close\n"
        "strategic,2027-02-04 10:00,2027-02-04 12:00,Blaenavon data centre,"
        "https://democracy.example.gov.uk/sb-2027-02,2027-01-20 09:00,2027-01-29 12:00\n",
        encoding="utf-8",
    )
    import_file(session, "meetings", csv, actor="test", now=NOW)
    session.commit()
    events_before = session.scalar(select(func.count()).select_from(AuditEvent)) or 0

    ics = outlook(tmp_path / "outlook.ics", ("UID-1", "20270204T100000", "20270204T120000"))
    report = import_file(session, "meetings", ics, actor="test", now=NOW)
    session.commit()
    meeting = session.scalar(select(Meeting).where(Meeting.source_uid == "UID-1"))
    assert meeting is not None and report.updated == 1 and report.created == 0
    assert meeting.location == "Blaenavon data centre"
    assert meeting.link == "https://democracy.example.gov.uk/sb-2027-02"
    assert meeting.questions_close == datetime(2027, 1, 29, 12, 0, tzinfo=UTC)
    # The one change (the calendar's UID now recorded) is an update in the audit log.
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()[events_before:]
    assert [(e.verb, sorted((e.after or {}).keys())) for e in events] == [
        ("import.update", ["source_uid"])
    ]

    again = import_file(session, "meetings", ics, actor="test", now=NOW)
    assert (again.updated, again.unchanged) == (0, 1)


def test_a_moved_meeting_with_the_usual_window_gets_the_usual_window_for_its_new_date(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    first = outlook(tmp_path / "a.ics", ("UID-2", "20270304T100000", "20270304T120000"))
    import_file(session, "meetings", first, actor="test", now=NOW)
    session.commit()
    meeting = session.scalar(select(Meeting).where(Meeting.source_uid == "UID-2"))
    assert meeting is not None
    usual_gap = meeting.starts_at - meeting.questions_close
    moved = outlook(tmp_path / "b.ics", ("UID-2", "20270311T100000", "20270311T120000"))
    import_file(session, "meetings", moved, actor="test", now=NOW)
    session.commit()
    session.refresh(meeting)
    assert meeting.starts_at == datetime(2027, 3, 11, 10, 0, tzinfo=UTC)
    assert meeting.starts_at - meeting.questions_close == usual_gap


@pytest.mark.parametrize(
    ("start", "message"),
    [
        ("20261025T013000", "this time happens twice in Europe/London: the clocks go back"),
        ("20260329T013000", "this time does not exist in Europe/London: the clocks go forward"),
    ],
)
def test_times_the_clocks_skip_or_repeat_are_refused_from_outlook_and_google(
    session: Session, seed: Seed, tmp_path: Path, start: str, message: str
) -> None:
    end = start[:9] + "040000"
    for path in (
        outlook(tmp_path / "outlook.ics", ("UID-3", start, end)),
        google(tmp_path / "google.ics", start),
    ):
        with pytest.raises(ImportRejected) as caught:
            import_file(session, "meetings", path, actor="test", now=NOW)
        session.rollback()
        shown = [str(p) for p in caught.value.problems]
        assert any(message in line and "DTSTART" in line for line in shown), shown
    assert (
        session.scalar(
            select(func.count()).select_from(Meeting).where(Meeting.source_uid.isnot(None))
        )
        == 0
    )
