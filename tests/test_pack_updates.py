"""A pack post whose questions change after it went out is updated in place (chat.update on
Slack, through the real slack_sdk client and the fake Slack API), once per change."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.domain import DeliveryState
from bot.models import Delivery
from bot.outbox import UPDATE_OF
from bot.services.questions import posts as question_posts
from tests.factories import Seed
from tests.outbox_support import fake_slack, sender_for
from tests.test_pack_upload import AFTER_CLOSE, SECRETARIAT_CHANNEL, queue_pack
from tests.test_questions import SECRETARIAT, say


def test_a_rejection_after_the_pack_went_out_updates_its_message_in_place(
    app: ScrutinyApp, seed: Seed, session: Session, clock: Clock
) -> None:
    order, pack = queue_pack(app, session)
    with fake_slack() as fake, clock.frozen(AFTER_CLOSE):
        sender_for(app, fake).send_due()
        session.refresh(pack)
        assert pack.state is DeliveryState.SENT
        posted = [
            c
            for c in fake.calls_to("chat.postMessage")
            if c.body["channel"] == pack.channel.external_id
        ]
        assert posted and fake.calls_to("chat.update") == []

        clock.advance(timedelta(minutes=5))
        say(app, SECRETARIAT, f"reject {order[0]} Answered in the budget paper.")
        later = AFTER_CLOSE + timedelta(minutes=6)
        report = question_posts.run_due(
            session, app.renderer, now=later, zone=app.settings.timezone
        )
        again = question_posts.run_due(session, app.renderer, now=later, zone=app.settings.timezone)
        session.commit()
        assert report.packs_updated == 1 and again.packs_updated == 0  # the strategic board's

        [update] = session.scalars(
            select(Delivery).where(
                Delivery.idempotency_key.like(f"update:{pack.idempotency_key}:%")
            )
        ).all()
        assert update.payload[UPDATE_OF] == pack.idempotency_key and "files" not in update.payload
        clock.set(later)
        sender_for(app, fake).send_due()
        [updated] = [
            c
            for c in fake.calls_to("chat.update")
            if c.body["channel"] == SECRETARIAT_CHANNEL and c.body["ts"] == pack.platform_message_id
        ]
        before = str(posted[0].body["blocks"])
        after = str(updated.body["blocks"])
        assert "2 accepted questions are in the pack" in before
        assert "1 accepted question is in the pack" in after
        # Nothing was posted twice: the update replaced the message, no new one was sent.
        assert fake.duplicates() == {}
        session.refresh(update)
        assert update.state is DeliveryState.SENT
