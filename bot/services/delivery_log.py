"""The delivery log: what the outbox posted where, what waits, what failed, and why.

Read by `scrutiny-bot deliveries` and the secretariat's `/scrutiny deliveries`. Posts are
written by `bot.outbox`; this module only reads them (and names the platforms whose posts
cannot go anywhere because this process has no credentials for them).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from difflib import get_close_matches
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from bot.domain import DeliveryState, Platform
from bot.models import DIRECT_CHANNELS, Channel, Delivery

WAITING = (DeliveryState.PENDING, DeliveryState.SENDING)


@dataclass(frozen=True)
class DeliveryFilter:
    """Which posts to list, newest first: by channel slug, state and creation time."""

    channel: str | None = None
    state: DeliveryState | None = None
    since: datetime | None = None
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True)
class DeliveryRow:
    """One outbox row as the log shows it (no payload)."""

    id: int
    key: str
    kind: str
    channel: str
    """The channel's slug."""
    channel_name: str
    platform: Platform
    state: DeliveryState
    attempts: int
    created_at: datetime
    next_try_at: datetime
    sent_at: datetime | None
    last_error: str
    platform_message_id: str | None

    @property
    def when(self) -> datetime:
        """When it was sent, or when it is next due."""
        return self.sent_at or self.next_try_at


@dataclass(frozen=True)
class DeliveryDetail:
    """One row with what it says: the text as posted (or as it will be posted)."""

    row: DeliveryRow
    text: str
    languages: tuple[str, ...]
    items: Mapping[str, list[str]]
    """The classified items the post shows, by kind, for a visibility check before showing it."""


class UnknownChannel(LookupError):
    """The filter names a channel slug that does not exist; `suggestions` are close slugs."""

    def __init__(self, slug: str, suggestions: list[str]) -> None:
        super().__init__(slug)
        self.slug = slug
        self.suggestions = suggestions


def _filtered(session: Session, query: DeliveryFilter) -> Select[Delivery, Channel]:
    # Members' direct messages are posts too: the log shows them (see `DIRECT_CHANNELS`).
    statement = (
        select(Delivery, Channel)
        .join(Channel, Delivery.channel_id == Channel.id)
        .execution_options(**{DIRECT_CHANNELS: True})
    )
    if query.channel:
        slug = query.channel.strip().lstrip("#").lower()
        known = select(Channel.id).where(Channel.slug == slug)
        if session.scalar(known.execution_options(**{DIRECT_CHANNELS: True})) is None:
            raise UnknownChannel(slug, _close_slugs(session, slug))
        statement = statement.where(Channel.slug == slug)
    if query.state is not None:
        statement = statement.where(Delivery.state == query.state)
    if query.since is not None:
        statement = statement.where(Delivery.created_at >= query.since)
    return statement


def _close_slugs(session: Session, slug: str) -> list[str]:
    return get_close_matches(slug, list(session.scalars(select(Channel.slug))), n=3, cutoff=0.6)


def _row(delivery: Delivery, channel: Channel) -> DeliveryRow:
    return DeliveryRow(
        id=delivery.id,
        key=delivery.idempotency_key,
        kind=delivery.kind,
        channel=channel.slug,
        channel_name=channel.name,
        platform=channel.platform,
        state=delivery.state,
        attempts=delivery.attempts,
        created_at=delivery.created_at,
        next_try_at=delivery.next_try_at,
        sent_at=delivery.sent_at,
        last_error=delivery.last_error,
        platform_message_id=delivery.platform_message_id,
    )


def list_deliveries(session: Session, query: DeliveryFilter) -> list[DeliveryRow]:
    """Posts matching `query`, newest first; raises `UnknownChannel` for a mistyped slug."""
    statement = (
        _filtered(session, query)
        .order_by(Delivery.id.desc())
        .offset(max(0, query.offset))
        .limit(max(1, query.limit))
    )
    return [_row(delivery, channel) for delivery, channel in session.execute(statement)]


def count_deliveries(session: Session, query: DeliveryFilter) -> int:
    """How many posts match `query`, ignoring offset and limit."""
    counted = _filtered(session, query).with_only_columns(func.count())
    return int(session.scalar(counted) or 0)


def get_delivery(session: Session, delivery_id: int) -> DeliveryDetail | None:
    """One post with its text, or None when there is no such id."""
    found = session.execute(
        select(Delivery, Channel)
        .join(Channel, Delivery.channel_id == Channel.id)
        .where(Delivery.id == delivery_id)
        .execution_options(**{DIRECT_CHANNELS: True})
    ).first()
    if found is None:
        return None
    delivery, channel = found
    payload: Mapping[str, Any] = delivery.payload or {}
    items = payload.get("items")
    return DeliveryDetail(
        row=_row(delivery, channel),
        text=str(payload.get("text", "")),
        languages=tuple(str(lang) for lang in payload.get("languages", ())),
        items={str(kind): [str(ref) for ref in refs] for kind, refs in items.items()}
        if isinstance(items, Mapping)
        else {},
    )


def waiting_without_credentials(
    session: Session, ready: Collection[Platform]
) -> dict[Platform, int]:
    """Posts waiting for a platform this process cannot post to, counted by platform.

    `ready` is what `Settings.posting_platforms` says; posts for any other platform will sit
    in the outbox until its credentials are set, so operators are warned rather than left
    wondering why nothing arrives.
    """
    rows = session.execute(
        select(Channel.platform, func.count())
        .select_from(Delivery)
        .join(Channel, Delivery.channel_id == Channel.id)
        .where(Delivery.state.in_(WAITING), Channel.platform.not_in(list(ready)))
        .group_by(Channel.platform)
        .execution_options(**{DIRECT_CHANNELS: True})
    )
    return {platform: int(count) for platform, count in rows}
