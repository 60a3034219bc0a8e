"""One scheduled item that cannot be prepared holds nothing else back: every other window
announcement, closing reminder, pack, answer post, reminder and digest still reaches Slack
through `scrutiny-bot worker --once`, the failure is reported once to the secretariat with
the item's ref, and the command exits non-zero only after sending the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.cli import cli
from bot.clock import Clock
from bot.domain import DeliveryState, QuestionState
from bot.models import Delivery, Meeting, Question, Reminder
from tests.factories import Seed
from tests.fakes.slack_api import BOT_TOKEN
from tests.outbox_support import fake_slack

AFTER_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
SECRETARIAT_CHANNEL = "C0SEC00001"


def question(
    session: Session, seed: Seed, meeting: Meeting, ref: str, text: str, **extra: object
) -> None:
    session.add(
        Question(
            ref=ref,
            meeting=meeting,
            text=text,
            theme="value",
            asker=seed.members["sian-hughes"],
            partner=seed.partners["torfaen"],
            **extra,
        )
    )


def arrange(session: Session, seed: Seed) -> None:
    """Due at AFTER_CLOSE: two packs (one poisoned), a third board's window announcements and
    closing reminders, an imported answer, a one-off reminder and a digest."""
    strategic, finance = seed.meetings
    # A row an older version or a hand edit left malformed: its links are not a list, so
    # building its pack fails (text can no longer poison a pack: the builder cleans it).
    question(
        session,
        seed,
        strategic,
        "Q-SB-2026-12-001",
        "Is the move on budget?",
        state=QuestionState.ACCEPTED,
        linked_refs=7,
    )
    question(
        session,
        seed,
        finance,
        "Q-FG-2026-12-001",
        "Are the 2027/28 contributions agreed?",
        state=QuestionState.ACCEPTED,
    )
    business = Meeting(
        board=seed.boards["business-collaboration"],
        starts_at=datetime(2026, 12, 8, 10, 0, tzinfo=UTC),
        location="Blaenavon data centre",
        questions_open=datetime(2026, 11, 26, 9, 0, tzinfo=UTC),
        questions_close=datetime(2026, 11, 28, 12, 0, tzinfo=UTC),
    )
    session.add(business)
    question(
        session,
        seed,
        business,
        "Q-BC-2026-12-001",
        "When do the records move?",
        state=QuestionState.ANSWERED,
        answer="In March.",
        answered_by="SRS",
        answered_at=AFTER_CLOSE - timedelta(hours=1),
    )
    session.add(
        Reminder(
            text="Papers for the finance board are due",
            channel=seed.channels["srs-torfaen"],
            run_at=AFTER_CLOSE - timedelta(minutes=1),
            created_at=AFTER_CLOSE - timedelta(days=1),
        )
    )
    seed.channels["srs-torfaen"].digest_cron = "0 18 * * *"
    session.commit()


def test_one_poisoned_pack_holds_nothing_else_back(
    session: Session, seed: Seed, database_url: str, tmp_path: Path, clock: Clock
) -> None:
    arrange(session, seed)
    runner = CliRunner()
    with fake_slack() as fake, clock.frozen(AFTER_CLOSE) as traveller:
        env = {
            "DATABASE_URL": database_url,
            "SCRUTINY_CONFIG": str(tmp_path / "none.yaml"),
            "SCRUTINY_LANGUAGE": "en",
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": fake.url,
        }
        first = runner.invoke(cli, ["worker", "--once"], env=env)
        assert first.exit_code == 1, first.output
        assert "question-pack:" in first.output

        keys = fake.keys()
        posted = {key for key in keys if key is not None}
        kinds = {key.split(":")[0] for key in posted}
        assert {
            "window-open",
            "window-closing",
            "question-pack",
            "answer",
            "reminder",
            "digest",
            "unit-failed",
        } <= kinds, sorted(posted)
        assert fake.duplicates() == {}
        strategic, finance = seed.meetings
        packs = sorted(k for k in posted if k.startswith("question-pack:"))
        assert [k.split(":")[1] for k in packs] == [str(finance.id)]
        # The poisoned question's direct messages to its asker are a unit of their own.
        failed = sorted(k for k in posted if k.startswith("unit-failed:"))
        assert [k.split(":")[1] for k in failed] == ["notify", "question-pack"]
        assert failed[0].startswith("unit-failed:notify:Q-SB-2026-12-001")
        notice = failed[1]
        assert notice.startswith(f"unit-failed:question-pack:{strategic.id}:srs-secretariat:")
        [message] = [m for m in fake.messages_in(SECRETARIAT_CHANNEL) if m.key == notice]
        assert f"question-pack:{strategic.id}" in message.text
        assert "TypeError" in message.text

        # A minute later it fails again: still reported once, nothing posted twice.
        traveller.advance(timedelta(minutes=1))
        again = runner.invoke(cli, ["worker", "--once"], env=env)
        assert again.exit_code == 1, again.output
        assert fake.duplicates() == {}
        assert set(fake.keys()) - {None} == posted

    states = dict(session.execute(select(Delivery.idempotency_key, Delivery.state)).all())
    assert set(states.values()) == {DeliveryState.SENT}
    assert set(states) == posted
