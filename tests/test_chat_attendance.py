"""The `attendance` chat command: the secretariat records a meeting's attendance, anyone reads
one meeting's record or the report per partner, board and year; bad input changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.models import Attendance, AuditEvent, Delivery
from bot.services.digests import build_digest, run_digest
from tests.factories import Seed
from tests.test_handlers import ask


def _statuses(session: Session) -> dict[str, str]:
    session.expire_all()
    return {row.partner.slug: row.status for row in session.scalars(select(Attendance))}


def test_secretariat_records_and_anyone_reads_the_report(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = ask(
        app,
        "ceri-morgan",
        "attendance strategic 2026-12-03 torfaen=present newport=apologies blaenau-gwent=absent "
        "police=present",
    )
    assert out.startswith("Attendance recorded.")
    assert "Torfaen County Borough Council: present" in out
    assert "Monmouthshire County Council: not recorded" in out
    assert _statuses(session) == {
        "torfaen": "present",
        "newport": "apologies",
        "blaenau-gwent": "absent",
        "gwent-police": "present",
    }
    event = session.scalars(select(AuditEvent).where(AuditEvent.entity == "attendance")).one()
    assert event.actor == "ceri-morgan"
    again = ask(app, "ceri-morgan", "attendance strategic 2026-12-03 torfaen=present")
    assert again.startswith("Nothing changed")

    report = ask(app, "tom-price", "attendance 2026")
    assert "Attendance at board meetings, 2026" in report
    assert "Torfaen County Borough Council · Strategic Board: attended 1 of 1 meeting" in report
    assert "Newport City Council · Strategic Board: attended 0 of 1 meeting recorded (0%)" in report
    only = ask(app, "tom-price", "attendance strategic torfaen 2026")
    assert "Torfaen" in only and "Newport" not in only
    assert "No attendance recorded" in ask(app, "tom-price", "attendance finance 2026")
    one = ask(app, "sian-hughes", "attendance strategic 2026-12-03")
    assert "Newport City Council: apologies" in one and "recorded." not in one


def test_bad_attendance_is_refused_and_changes_nothing(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    out = ask(app, "ceri-morgan", "attendance strategic 2026-12-03 torfaen=present newport=asleep")
    assert "“asleep” is not an attendance; use present, apologies, absent." in out
    assert "Nothing was recorded." in out and _statuses(session) == {}
    wrong_partner = ask(app, "ceri-morgan", "attendance strategic 2026-12-03 cardiff=present")
    assert "“cardiff” is not a partner" in wrong_partner
    no_meeting = ask(app, "ceri-morgan", "attendance strategic 2026-12-04 torfaen=present")
    assert "has no meeting on" in no_meeting
    unnamed = ask(app, "ceri-morgan", "attendance torfaen=present")
    assert "Name the meeting before the attendance" in unnamed
    member = ask(app, "sian-hughes", "attendance strategic 2026-12-03 torfaen=present")
    assert "Only the secretariat records attendance" in member
    assert ask(app, "sian-hughes", "attendance banana").startswith("“banana” is not a board")
    assert _statuses(session) == {}


def test_digest_of_secretariat_and_board_channels_reports_the_last_meetings_attendance(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    ask(app, "ceri-morgan", "attendance strategic 2026-12-03 torfaen=present newport=apologies")
    after = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    board = build_digest(session, seed.channels["srs-strategic-board"], now=after)
    assert [a.meeting.board.slug for a in board.attendance] == ["strategic"]
    secretariat = seed.channels["srs-secretariat"]
    result = run_digest(session, app.renderer, secretariat, now=after)
    session.commit()
    delivery = session.get(Delivery, result.delivery_id)
    assert delivery is not None
    text = delivery.payload["text"]
    assert "Attendance at the Strategic Board, Thursday 3 December 2026, 10:00am" in text
    assert "present: Torfaen County Borough Council · apologies: Newport City Council" in text
    assert "not recorded: Blaenau Gwent County Borough Council" in text
    blocks = json.dumps(delivery.payload["slack"]["blocks"])
    assert "*Attendance*" in blocks and "apologies: Newport City Council" in blocks
    # A partner channel's digest does not carry it, and the next digest does not repeat it.
    assert build_digest(session, seed.channels["srs-torfaen"], now=after).attendance == ()
    later = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)
    assert build_digest(session, secretariat, now=later).attendance == ()
