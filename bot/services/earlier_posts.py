"""The bot's own earlier posts a new post follows up, found by their outbox key, so the new
post can link to them (an answer to the call for questions it answers, a closing reminder
to the announcement it closes)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.domain import DeliveryState, Platform
from bot.models import Delivery, PostedMessage
from bot.permalinks import PostRef


def sent_post(session: Session, key: str) -> PostRef | None:
    """Where the post queued under `key` landed, once sent; None before (or never)."""
    delivery = session.scalar(
        select(Delivery)
        .options(joinedload(Delivery.channel))
        .where(
            Delivery.idempotency_key == key,
            Delivery.state == DeliveryState.SENT,
            Delivery.platform_message_id.is_not(None),
        )
    )
    if delivery is None or not delivery.platform_message_id:
        return None
    channel = delivery.channel
    # The sender records the thread a reply went into (Teams' links name it).
    thread = session.scalar(
        select(PostedMessage.thread_id).where(
            PostedMessage.platform == channel.platform.value,
            PostedMessage.channel == channel.external_id,
            PostedMessage.message_id == delivery.platform_message_id,
        )
    )
    return PostRef(
        Platform(channel.platform).value,
        channel.external_id,
        delivery.platform_message_id,
        thread=thread,
    )


def window_call_key(meeting_id: int, channel_slug: str) -> str:
    """The key of a channel's announcement that a meeting's questions are open."""
    return f"window-open:{meeting_id}:{channel_slug}"
