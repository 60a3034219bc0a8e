"""The bot's own posts as the platform reports them, so the outbox can find a post before
posting it again without reading whole channel histories.

Slack tells us of every message carrying our metadata with a `message_metadata_posted` event
(scope `metadata.message:read`); the events endpoint records it here as it arrives, and the
Slack messenger looks a delivery's key up here after an uncertain attempt. An event can reach
us a little after the post itself, which is why the outbox waits a settle delay before it
looks (`RetryPolicy.settle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.clock import CLOCK
from bot.db import unit_of_work
from bot.domain import Platform
from bot.models import PostedMessage


@dataclass(frozen=True)
class Found:
    """A post of ours carrying a delivery's key: its message id and the files it announced."""

    message_id: str
    files: tuple[str, ...]


def record(
    session: Session,
    *,
    platform: Platform,
    channel: str,
    message_id: str,
    key: str,
    files: Sequence[str],
    at: datetime,
    thread_id: str | None = None,
) -> bool:
    """Remember a post of ours; False when it was already known (events can arrive twice)."""
    table = PostedMessage.__table__
    assert isinstance(table, Table)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(
            platform=platform.value,
            channel=channel,
            message_id=message_id,
            key=key,
            files=list(files),
            received_at=at,
            thread_id=thread_id,
        )
        .on_conflict_do_nothing(index_elements=["platform", "channel", "message_id"])
        .returning(table.c.id)
    )
    return session.execute(statement).scalar_one_or_none() is not None


@dataclass(frozen=True)
class PostedRegister:
    """Looks up the posts recorded from the platform's events (what messengers are given)."""

    sessions: sessionmaker[Session]

    def remember(
        self,
        platform: Platform,
        channel: str,
        message_id: str,
        key: str,
        *,
        thread_id: str | None = None,
    ) -> None:
        """Record a post of ours as it succeeds (for a platform that reports no events of
        its posts and cannot be searched: Teams' Bot Connector), with the first post of the
        thread it replied in, which a link to it names."""
        with unit_of_work(self.sessions) as session:
            record(
                session,
                platform=platform,
                channel=channel,
                message_id=message_id,
                key=key,
                files=(),
                at=CLOCK.now(),
                thread_id=thread_id,
            )

    def find(self, platform: Platform, channel: str, key: str) -> Found | None:
        """The earliest recorded post carrying `key` in `channel`, if any.

        A Slack post to a user id lands in the app's direct conversation with them, whose id
        (`D...`) the event reports: for a user id, look among direct conversations.
        """
        where_channel = (
            PostedMessage.channel.like("D%")
            if platform is Platform.SLACK and channel[:1] in ("U", "W")
            else PostedMessage.channel == channel
        )
        with self.sessions() as session:
            row = session.scalars(
                select(PostedMessage)
                .where(
                    PostedMessage.platform == platform.value,
                    where_channel,
                    PostedMessage.key == key,
                )
                .order_by(PostedMessage.message_id)
                .limit(1)
            ).first()
            return Found(row.message_id, tuple(row.files or ())) if row is not None else None
