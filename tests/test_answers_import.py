"""`scrutiny-bot import answers FILE`: answers go through the same service as `/scrutiny answer`
and their posts are queued in the import's transaction, once per partner channel."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.domain import QuestionState
from bot.models import AuditEvent, Delivery, Question
from bot.services.questions import posts as question_posts
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_questions import (
    MONMOUTHSHIRE,
    NEWPORT,
    POLICE,
    SECRETARIAT,
    TORFAEN,
    add_meeting,
    add_partner_channels,
    ref_of,
    say,
)

runner = CliRunner()
BUSINESS = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)
SPEC = "business 2026-12-17"


@pytest.fixture(autouse=True)
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")


def answer_keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Delivery.idempotency_key).where(Delivery.kind == question_posts.KIND_ANSWER)
            )
        )


def answers_csv(tmp_path: Path, rows: str) -> Path:
    path = tmp_path / "answers.csv"
    path.write_text(f"question_ref,answer,answered_by\n{rows}", encoding="utf-8")
    return path


def test_imported_answers_are_queued_once_per_partner_channel_and_not_again(
    app: ScrutinyApp, seed: Seed, session: Session, engine: Engine, tmp_path: Path
) -> None:
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    say(app, SECRETARIAT, f"window open {SPEC}")
    asked = ref_of(say(app, TORFAEN, f"ask {SPEC} When will the file shares move (TP-001)?"))
    other = ref_of(say(app, POLICE, f"ask {SPEC} Who signs off the police network design?"))
    say(app, MONMOUTHSHIRE, f"support {asked}")
    say(app, NEWPORT, f"support {asked}")
    say(app, SECRETARIAT, f"accept {asked} {other}")

    path = answers_csv(tmp_path, f"{asked},The move finishes in March 2027.,Head of SRS\n")
    result = runner.invoke(cli, ["import", "answers", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 answer posts queued" in result.stdout
    assert "Imported answers.csv: 0 created, 1 updated, 0 unchanged." in result.stdout
    queued = answer_keys(engine)
    assert Counter(queued) == Counter(
        f"answer:{asked}:{channel}"
        for channel in ("srs-monmouthshire", "srs-newport", "srs-torfaen")
    )

    # The same file again changes nothing and queues nothing.
    again = runner.invoke(cli, ["import", "answers", str(path)])
    assert again.exit_code == 0, again.output
    assert "0 answer posts queued" in again.stdout
    assert "0 updated, 1 unchanged" in again.stdout
    assert answer_keys(engine) == queued
    # Nor does the scheduler's sweep: the answer is posted already.
    report = question_posts.run_due(session, app.renderer, now=NOW, zone=app.settings.timezone)
    assert report.answers == 0
    session.rollback()

    # Stored and audited exactly as an answer given in chat.
    session.expire_all()
    question = session.scalar(select(Question).where(Question.ref == asked))
    assert question is not None
    assert (question.state, question.answered_by) == (QuestionState.ANSWERED, "Head of SRS")
    verbs = list(
        session.scalars(
            select(AuditEvent.verb).where(
                AuditEvent.entity_ref == asked, AuditEvent.actor.startswith("cli")
            )
        )
    )
    assert verbs == ["question.answer"]


def test_a_dry_run_neither_answers_nor_queues(
    app: ScrutinyApp, seed: Seed, session: Session, engine: Engine, tmp_path: Path
) -> None:
    say(app, SECRETARIAT, "window open strategic 2026-12-03")
    asked = ref_of(say(app, TORFAEN, "ask strategic 2026-12-03 Is the move on budget?"))
    say(app, SECRETARIAT, f"accept {asked}")
    path = answers_csv(tmp_path, f"{asked},Yes.,\n")
    result = runner.invoke(cli, ["import", "answers", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "answer post" not in result.stdout
    assert answer_keys(engine) == []


def test_an_answer_to_a_carried_forward_question_names_its_copy(
    app: ScrutinyApp, seed: Seed, session: Session, engine: Engine, tmp_path: Path
) -> None:
    asked = ref_of(say(app, TORFAEN, "ask strategic 2026-12-03 Is the move on budget?"))
    say(app, SECRETARIAT, f"accept {asked}")
    add_meeting(session, seed, "strategic", datetime(2027, 3, 4, 10, 0, tzinfo=UTC))
    after = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    report = question_posts.run_due(session, app.renderer, now=after, zone=app.settings.timezone)
    assert report.carried == 1
    session.commit()
    path = answers_csv(tmp_path, f"{asked},Yes.,\n")
    result = runner.invoke(cli, ["import", "answers", str(path)])
    assert result.exit_code == 1
    assert (
        f'answers.csv line 2, question_ref "{asked}": {asked} was carried forward to the next '
        "meeting as Q-SB-2027-03-001; answer Q-SB-2027-03-001 instead." in result.stderr
    )
    assert answer_keys(engine) == []
