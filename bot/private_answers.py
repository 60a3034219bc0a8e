"""Answers stored for their asker alone: a command that changes something runs once, and what
it answered is stored here so the platform can show it again to the asker (a Teams channel's
user-specific view is fetched again at every refresh) without running the command again.

Each answer is found by a random token (never a sequence, so one cannot be guessed from
another) and shown only to the asker both its ids name; the platform honours it only where it
was asked (Teams: the channel). It is shown for `PRIVATE_ANSWER_DAYS` days; older ones are
answered as no longer available and pruned by the scheduler
(`bot.scheduler.prune_private_answers`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.domain import Platform
from bot.models import PrivateAnswer

TOKEN_BYTES = 18
"""144 random bits: a token is 24 URL-safe characters."""


@dataclass(frozen=True)
class Asker:
    """Who may see an answer: their platform id and their directory id, both required."""

    user_id: str
    directory_id: str


def new_token() -> str:
    """A fresh random token for an answer about to be stored (the card refers to it)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def store(
    session: Session,
    token: str,
    *,
    platform: Platform,
    conversation: str,
    asker: Asker,
    card: dict[str, Any],
    base: dict[str, Any],
    now: datetime,
) -> PrivateAnswer:
    """Keep `card` for `asker` under `token` (in the caller's transaction); `base` is what
    anyone else is shown."""
    if not (asker.user_id and asker.directory_id):
        raise ValueError("a private answer needs both of the asker's ids")
    row = PrivateAnswer(
        id=token,
        platform=platform.value,
        conversation=conversation,
        user_id=asker.user_id,
        directory_id=asker.directory_id,
        card=card,
        base=base,
        created_at=now,
    )
    session.add(row)
    return row


def find(
    session: Session, token: Any, *, platform: Platform, now: datetime, days: int
) -> PrivateAnswer | None:
    """The answer kept under `token` for `platform`, or None when there is none or it is older
    than `days` (the pruning may not have run yet)."""
    if not isinstance(token, str) or not token or len(token) > 64:
        return None
    row = session.get(PrivateAnswer, token)
    if row is None or row.platform != platform.value or row.created_at < now - timedelta(days=days):
        return None
    return row


def prune(session: Session, *, now: datetime, days: int) -> int:
    """Delete the answers older than `days` (in the caller's transaction); how many."""
    result = session.execute(
        delete(PrivateAnswer).where(PrivateAnswer.created_at < now - timedelta(days=days))
    )
    return int(getattr(result, "rowcount", 0) or 0)
