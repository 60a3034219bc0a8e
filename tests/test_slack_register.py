"""The secretariat's register writes through the console (inline `key=value` words): the same
service the Slack forms use, with field errors, audit, roles and visibility."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import ActionStatus, Marking, Platform, Rag
from bot.i18n import Translator
from bot.messages import Request
from bot.models import Action, AuditEvent, Decision
from bot.services import register
from bot.visibility import audience_of_member
from tests.conftest import NOW
from tests.factories import Seed, add_decision

T = Translator("en")


def run(app: ScrutinyApp, user: str, text: str, channel: str | None = None) -> str:
    request = Request(Platform.CONSOLE, user, text, channel_id=channel, now=NOW)
    return app.dispatch(request).text


def audits(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_record_decision_inline_with_next_free_ref_and_audit(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    out = run(
        app,
        "ceri-morgan",
        'record-decision board=strategic decided_on=2026-12-03 title="Agreed the cloud strategy" '
        'summary="Phase one & two" marking=official-sensitive exempt_paragraph=14 '
        "restricted_to=torfaen,newport link=https://example.org/p",
    )
    assert "future" in out  # 3 December is after NOW (23 November)
    out = run(
        app,
        "ceri-morgan",
        'record-decision board=SB decided_on=2026-11-19 title="Agreed the cloud strategy" '
        'summary="Phase one & two" marking=official-sensitive exempt_paragraph=14 '
        "restricted_to=torfaen,newport link=https://example.org/p",
    )
    assert "Recorded SB-2026-033" in out
    session.expire_all()
    decision = session.scalar(select(Decision).where(Decision.ref == "SB-2026-033"))
    assert decision is not None
    assert decision.marking is Marking.OFFICIAL_SENSITIVE
    assert decision.exempt_paragraph == 14
    assert decision.restricted_to == ["torfaen", "newport"]
    assert decision.recorded_at == NOW
    (event,) = audits(session)
    assert (event.actor, event.verb, event.entity, event.entity_ref) == (
        "ceri-morgan",
        "create",
        "decision",
        "SB-2026-033",
    )
    assert event.after is not None and event.after["summary"] == "Phase one & two"


def test_decision_is_linked_to_its_boards_meeting_that_day(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    meeting = seed.meetings[0]  # the Strategic Board, 3 December 2026 at 10:00
    app_now = NOW.replace(month=12, day=4)
    request = Request(
        Platform.CONSOLE,
        "ceri-morgan",
        'record-decision board=strategic decided_on=2026-12-03 title="At the meeting"',
        now=app_now,
    )
    assert "Recorded SB-2026-033" in app.dispatch(request).text
    session.expire_all()
    decision = session.scalar(select(Decision).where(Decision.ref == "SB-2026-033"))
    assert decision is not None and decision.meeting_id == meeting.id


def test_every_bad_field_is_named_and_nothing_is_written(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    out = run(
        app,
        "ceri-morgan",
        "record-decision board=nowhere decided_on=31/02/2026 marking=secret "
        "exempt_paragraph=9 restricted_to=atlantis link=ftp://x colour=blue",
    )
    for field in (
        "board",
        "decided_on",
        "title",
        "marking",
        "exempt_paragraph",
        "restricted_to",
        "link",
        "colour",
    ):
        assert f"  {field}: " in out, field
    assert "Nothing was saved; fix these 8 fields" in out
    assert "use YYYY-MM-DD" in out
    assert "strategic, finance-governance, business-collaboration" in out
    assert audits(session) == []
    assert session.scalar(select(func.count()).select_from(Decision)) == 4


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("SB-2026-031", "already in the register; leave it empty to use SB-2026-033"),
        ("FG-2026-050", "not a Strategic Board reference"),
        ("SB2026", "not a decision reference"),
    ],
)
def test_bad_refs_are_refused(app: ScrutinyApp, seed: Seed, ref: str, problem: str) -> None:
    out = run(
        app,
        "ceri-morgan",
        f"record-decision board=strategic decided_on=2026-11-19 title=x ref={ref}",
    )
    assert problem in out


def test_next_ref_counts_past_gaps_and_years(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    add_decision(session, seed, "BC-2025-099", "business-collaboration", date(2025, 6, 1))
    add_decision(session, seed, "BC-2026-040", "business-collaboration", date(2026, 6, 1))
    session.commit()
    assert register.next_decision_refs(session, 2026) == {
        "strategic": "SB-2026-033",
        "finance-governance": "FG-2026-045",
        "business-collaboration": "BC-2026-041",
    }
    assert register.next_decision_refs(session, 2027)["strategic"] == "SB-2027-001"


def test_update_action_inline_audits_only_what_changed(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    out = run(app, "ceri-morgan", 'update tp-1 status=done rag=green note="Finished & signed off"')
    assert "Updated TP-001" in out
    session.expire_all()
    action = session.scalar(select(Action).where(Action.ref == "TP-001"))
    assert action is not None
    assert (action.status, action.rag, action.last_update) == (
        ActionStatus.DONE,
        Rag.GREEN,
        "Finished & signed off",
    )
    out = run(app, "ceri-morgan", "update TP-001 status=done rag=none")
    assert "Updated TP-001: RAG rating." in out
    first, second = audits(session)
    assert first.before == {"status": "in-progress", "rag": "red", "last_update": ""}
    assert second.before == {"rag": "green"} and second.after == {"rag": None}


def test_update_refusals(app: ScrutinyApp, seed: Seed, session: Session) -> None:
    assert "is not a status" in run(app, "ceri-morgan", "update TP-001 status=finished")
    assert "nothing would change" in run(app, "ceri-morgan", "update TP-001 status=in-progress")
    assert "there is no field “owner”" in run(app, "ceri-morgan", "update TP-001 owner=me")
    assert "A quote is not closed" in run(app, "ceri-morgan", 'update TP-001 note="open')
    assert "Name one action" in run(app, "ceri-morgan", "update status=done")
    assert "There is no action TP-999" in run(app, "ceri-morgan", "update TP-999 status=done")
    assert "Only members with the role secretariat" in run(
        app, "sian-hughes", "update TP-001 status=done"
    )
    assert "Only members with the role secretariat" in run(app, "sian-hughes", "record-decision")
    assert audits(session) == []


def test_action_the_audience_may_not_see_is_not_found(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    # TP-003 is exempt: in #srs-torfaen (not cleared) the secretariat cannot touch or see it.
    out = run(app, "ceri-morgan", "update TP-003 status=done", channel="C0TOR00001")
    assert "There is no action TP-003 that you can see here" in out
    assert "Exempt contract renewal" not in out
    ceri = seed.members["ceri-morgan"]
    assert register.find_action(session, "TP-003", audience_of_member(ceri), NOW.date())


def test_decision_recorded_in_a_channel_not_cleared_for_it_shows_only_its_ref(
    app: ScrutinyApp, seed: Seed
) -> None:
    # Ceri's Slack id with the Torfaen channel: the console has no channels, Slack does.
    request = Request(
        Platform.SLACK,
        "U0SEC00001",
        "record-decision board=strategic decided_on=2026-11-19 title=Secret exempt_paragraph=14",
        channel_id="C0TOR00001",
        now=NOW,
    )
    out = app.dispatch(request).text
    assert "Recorded SB-2026-033" in out
    assert "Secret" not in out
    assert "not cleared" in out


def test_forms_without_values_explain_the_inline_words(app: ScrutinyApp, seed: Seed) -> None:
    form = run(app, "ceri-morgan", "record-decision")
    assert "record-decision board=" in form and "SB-2026-033" in form
    assert "update TP-002 status=done" in run(app, "ceri-morgan", "update TP-002")
    outcome = app.dispatch(Request(Platform.CONSOLE, "ceri-morgan", "update TP-002", now=NOW))
    assert outcome.reply.surface == "modal"


def test_invalid_input_message_lists_the_fields() -> None:
    problem = register.InvalidInput({"title": "give the decision a title."}, T)
    assert str(problem) == "Nothing was saved; fix this field:\ntitle: give the decision a title."
