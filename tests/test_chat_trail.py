"""The trail in chat: `decision REF` lists its actions (with RAG) and the questions about it,
`action REF` the decisions it comes from; the visibility rule applies to every linked item."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from tests.factories import Seed
from tests.test_handlers import TORFAEN_CHANNEL, blocks, run
from tests.test_register_web import _trail


def test_decision_lists_its_actions_with_rag_and_the_questions(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    _trail(session, seed)
    out = run(app, "rhys-evans", "decision SB-2026-031").text
    lines = [line.strip() for line in out.splitlines()]
    actions = lines.index("Actions from this decision:")
    assert lines[actions + 1].startswith("TP-001  Migrate file shares to SharePoint Online")
    assert "RED" in lines[actions + 1]
    assert any(line.startswith("TP-004  Police-only network segregation") for line in lines)
    assert "Q-SB-2026-12-001  When will phase 2 finish? · accepted" in lines
    assert "linked item" not in out


def test_decision_trail_leaves_out_what_the_reader_may_not_see(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    _trail(session, seed)
    out = run(app, "eleri-jones", "decision SB-2026-031").text
    assert "TP-001" in out and "TP-003" not in out and "TP-004" not in out
    assert "Exempt" not in out and "Police-only" not in out
    assert "2 eitem gysylltiedig" in out or "2 linked items are not shown" in out
    # In a channel, the channel's clearance decides, and the note says so.
    shared = run(app, "sian-hughes", "decision SB-2026-031", channel=TORFAEN_CHANNEL).text
    assert "TP-003" not in shared and "TP-004" not in shared
    assert "this channel is not cleared for them" in shared


def test_action_lists_the_decisions_it_comes_from(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    seed.actions["TP-001"].decision_refs = ["SB-2026-031", "SB-2026-032"]
    session.commit()
    police = run(app, "rhys-evans", "action TP-001").text
    assert "From decisions:" in police and "SB-2026-031  Strategic Board" in police
    assert "SB-2026-032" in police
    member = run(app, "eleri-jones", "action TP-001").text
    assert "SB-2026-031" in member and "SB-2026-032" not in member
    assert "Exempt procurement" not in member


def test_decision_trail_in_slack_blocks(app: ScrutinyApp, session: Session, seed: Seed) -> None:
    _trail(session, seed)
    out = run(app, "sian-hughes", "decision SB-2026-031", channel=TORFAEN_CHANNEL, fmt="slack.json")
    sent = blocks(out)
    assert len(sent) <= 50
    text = json.dumps(sent)
    assert "*Actions from this decision*" in text and "TP-001" in text and "RED" in text
    assert "`Q-SB-2026-12-001`" in text and "TP-003" not in text
