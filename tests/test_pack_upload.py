"""The question pack reaches the secretariat's Slack channel as files: the outbox posts the
summary message, then uploads the Word and Markdown packs into its thread with
files_upload_v2, through the real slack_sdk client and the fake Slack API."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import docx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState
from bot.models import Delivery
from bot.services.questions import notices as question_notices
from bot.services.questions import posts as question_posts
from tests.factories import Seed
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import fake_slack, reload, sender_for, slack_with_events
from tests.test_questions import NEWPORT, POLICE, SECRETARIAT, TORFAEN, ref_of, say

SB = "strategic 2026-12-03"
AFTER_CLOSE = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
SECRETARIAT_CHANNEL = "C0SEC00001"


def queue_pack(app: ScrutinyApp, session: Session) -> tuple[list[str], Delivery]:
    """Two accepted questions (the second with more partners behind it), the window closed,
    and the pack queued; the refs in pack order and the pack's delivery."""
    first = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    second = ref_of(say(app, POLICE, f"ask {SB} What is the police data retention plan?"))
    say(app, NEWPORT, f"support {second}")
    say(app, SECRETARIAT, f"accept {first} {second}")
    report = question_posts.run_due(
        session, app.renderer, now=AFTER_CLOSE, zone=app.settings.timezone
    )
    session.commit()
    assert report.packs == 2  # the strategic board's and the finance board's windows closed
    delivery = session.scalar(
        select(Delivery)
        .where(Delivery.idempotency_key.like("question-pack:%:srs-secretariat:%"))
        .where(Delivery.payload["files"][0]["filename"].as_string().contains("strategic"))
    )
    assert delivery is not None
    return [second, first], delivery


def docx_refs(content: bytes) -> list[str]:
    document = docx.Document(io.BytesIO(content))
    return [p.text.split()[1] for p in document.paragraphs if p.text[:2] in ("1.", "2.")]


def check_uploaded(fake: LimitedSlackApi, delivery: Delivery, order: list[str]) -> None:
    [message] = [
        m for m in fake.messages_in(SECRETARIAT_CHANNEL) if m.key == delivery.idempotency_key
    ]
    uploads = [u for u in fake.uploads_in(SECRETARIAT_CHANNEL) if u.thread_ts == message.ts]
    assert [u.name for u in uploads] == [
        "questions-strategic-2026-12-03.docx",
        "questions-strategic-2026-12-03.md",
    ]
    assert docx_refs(uploads[0].content) == order
    markdown = uploads[1].content.decode()
    assert markdown.index(order[0]) < markdown.index(order[1])


def test_the_pack_is_uploaded_into_the_thread_of_its_message(
    app: ScrutinyApp, seed: Seed, session: Session, clock: Clock
) -> None:
    order, delivery = queue_pack(app, session)
    with fake_slack() as fake, clock.frozen(AFTER_CLOSE):
        report = sender_for(app, fake).send_due()
        # The two packs, and the direct messages telling askers and supporters of acceptance.
        notices = session.scalars(
            select(Delivery).where(Delivery.kind == question_notices.KIND_NOTICE)
        ).all()
        assert (report.sent, len(notices)) == (2 + 3, 3)
        check_uploaded(fake, delivery, order)
        assert fake.calls_to("upload") and fake.duplicates() == {}
    assert reload(session, delivery.id).state is DeliveryState.SENT


def test_an_upload_failing_after_the_message_adds_only_the_files_on_retry(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    engine: Engine,
    database_url: str,
    clock: Clock,
) -> None:
    order, delivery = queue_pack(app, session)
    with slack_with_events(engine, database_url) as fake, clock.frozen(AFTER_CLOSE):
        fake.fail_next("files.completeUploadExternal", 500, times=2)
        sender = sender_for(app, fake)
        assert sender.send_due().retrying == 2
        assert len(fake.messages_in(SECRETARIAT_CHANNEL)) == 2
        assert fake.uploads_in(SECRETARIAT_CHANNEL) == []
        row = reload(session, delivery.id)
        assert row.state is DeliveryState.PENDING and row.maybe_posted
        fake.wait_for_events()
        assert sender.send_due(AFTER_CLOSE + timedelta(minutes=10)).sent == 2
        check_uploaded(fake, delivery, order)
        assert fake.duplicates() == {}
    assert reload(session, delivery.id).state is DeliveryState.SENT
