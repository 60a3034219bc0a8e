"""Anonymous questions where a board allows them (`anonymous_questions: partner|hidden|no` in
the collaboration file): the asker chooses with `ask anon ...`; others see the partner only,
or nothing; the secretariat still sees who asked; the audit log keeps the asker."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.collaboration import apply_collaboration, load_collaboration
from bot.models import AuditEvent, Board, Question
from tests.factories import Seed
from tests.fakes.slack_api import SlackSender
from tests.test_collaboration import BASE, line_of, mutate, problems_in
from tests.test_questions import add_meeting, add_partner_channels
from tests.test_slack_http import texts
from tests.test_slack_questions import (
    BUSINESS,
    NEWPORT,
    NEWPORT_CHANNEL,
    SECRETARIAT_CHANNEL,
    SECRETARY,
    SPEC,
    TORFAEN,
    chosen,
    command,
    db,
    fake,
    opened,
    platform,
    ref_in,
    slack,
    slack_app,
    submitted,
    typed,
)

__all__ = ["db", "fake", "platform", "slack", "slack_app"]  # fixtures used by name

TORFAEN_NAME = "Torfaen"


def open_window(slack: SlackSender, session: Session, seed: Seed, mode: str) -> None:
    board = seed.boards["business-collaboration"]
    board.anonymous_questions = mode
    session.commit()
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)


def test_hidden_askers_are_seen_only_by_the_secretariat_and_kept_in_the_audit_log(
    slack: SlackSender,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    open_window(slack, session, seed, "hidden")
    submitted = command(slack, TORFAEN, f"ask anon {SPEC} Who signs off the backup tests?")
    ref = ref_in(submitted)
    question = db.scalar(select(Question).where(Question.ref == ref))
    assert question is not None and question.anonymous
    assert question.text == "Who signs off the backup tests?"

    others = texts(command(slack, NEWPORT, f"questions {SPEC}", channel=NEWPORT_CHANNEL).body)
    assert ref in others and "asked anonymously" in others
    assert TORFAEN_NAME not in others
    secretariat = texts(
        command(slack, SECRETARY, f"questions {SPEC}", channel=SECRETARIAT_CHANNEL).body
    )
    assert TORFAEN_NAME in secretariat and "(anonymously)" in secretariat

    [event] = db.scalars(
        select(AuditEvent).where(AuditEvent.entity_ref == ref, AuditEvent.verb == "question.submit")
    )
    assert event.actor == "sian-hughes"
    assert event.after is not None and event.after["anonymous"] is True

    # The pack the board reads says "asked anonymously" and names no partner for it.
    command(slack, SECRETARY, f"accept {ref}", channel=SECRETARIAT_CHANNEL)
    monkeypatch.setenv("DATABASE_URL", slack_app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    result = CliRunner().invoke(cli, ["questions", "pack", "--meeting", SPEC, "--format", "md"])
    assert result.exit_code == 0, result.output
    assert "Who signs off the backup tests?" in result.output
    assert "Asked anonymously" in result.output
    assert TORFAEN_NAME not in result.output


def test_partner_mode_shows_the_partner_and_says_it_was_asked_anonymously(
    slack: SlackSender, seed: Seed, session: Session
) -> None:
    open_window(slack, session, seed, "partner")
    ref = ref_in(command(slack, TORFAEN, f"gofyn dienw {SPEC} Who owns the network diagram?"))
    others = texts(command(slack, NEWPORT, f"questions {SPEC}", channel=NEWPORT_CHANNEL).body)
    assert ref in others
    assert TORFAEN_NAME in others and "(anonymously)" in others


def test_a_board_that_takes_no_anonymous_questions_refuses_one_and_stores_nothing(
    slack: SlackSender, seed: Seed, session: Session, db: Session
) -> None:
    open_window(slack, session, seed, "no")
    refused = texts(command(slack, TORFAEN, f"ask anon {SPEC} Who owns the network diagram?").body)
    assert "does not take anonymous questions" in refused
    assert db.scalars(select(Question)).all() == []


def test_the_board_setting_is_read_and_checked_in_the_collaboration_file(
    tmp_path: Path, session: Session
) -> None:
    prefix = "  - slug: strategic\n"
    assert prefix in BASE
    text = mutate(BASE, prefix, prefix + "    anonymous_questions: sometimes\n")
    [problem] = problems_in(tmp_path, text)
    assert problem.line == line_of(text, "anonymous_questions: sometimes")
    assert "use one of: no, partner, hidden" in problem.hint
    good = mutate(BASE, prefix, prefix + "    anonymous_questions: hidden\n")
    assert problems_in(tmp_path, good) == []
    apply_collaboration(session, load_collaboration(tmp_path / "collaboration.yaml"))
    board = session.scalar(select(Board).where(Board.slug == "strategic"))
    assert board is not None and board.anonymous_questions == "hidden"


def test_the_ask_form_offers_anonymity_where_a_board_allows_it(
    slack: SlackSender, seed: Seed, session: Session, db: Session
) -> None:
    open_window(slack, session, seed, "hidden")
    slack.command(TORFAEN, "ask", channel_id="C0TOR00001", channel_name="srs-torfaen")
    form = opened(slack, 1)
    [box] = [b for b in form["blocks"] if b.get("block_id") == "anonymous"]
    assert box["element"]["type"] == "checkboxes"
    assert "Business" in box["hint"]["text"]
    [business] = [
        o["value"]
        for o in form["blocks"][0]["element"]["options"]
        if "Business" in o["text"]["text"]
    ]
    ticked = {
        "type": "checkboxes",
        "selected_options": [
            {"value": "anonymous", "text": {"type": "plain_text", "text": "Ask anonymously"}}
        ],
    }
    values = {
        "meeting": chosen(business),
        "question": typed("Who checks the firewall rules?"),
        "anonymous": ticked,
    }
    # A board that takes none refuses it on the form's own field.
    options = form["blocks"][0]["element"]["options"]
    strategic = next(o["value"] for o in options if o["value"] != business)
    refused = submitted(slack, TORFAEN, form, **{**values, "meeting": chosen(strategic)})
    assert "does not take anonymous questions" in refused["errors"]["anonymous"]
    assert submitted(slack, TORFAEN, form, **values) is None
    question = db.scalar(select(Question).where(Question.text == "Who checks the firewall rules?"))
    assert question is not None and question.anonymous


def test_the_ask_form_says_nothing_of_anonymity_where_no_board_allows_it(
    slack: SlackSender, seed: Seed, session: Session
) -> None:
    open_window(slack, session, seed, "no")
    slack.command(TORFAEN, "ask", channel_id="C0TOR00001", channel_name="srs-torfaen")
    assert "anonymous" not in [b.get("block_id") for b in opened(slack, 1)["blocks"]]
