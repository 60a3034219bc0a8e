"""Scheduled work in isolated units: one failing item never holds the others back.

Every scheduled unit (one window announcement to one channel, one pack, one answer post, one
digest, one reminder run) runs in its own savepoint through `UnitGuard.unit`. A unit that
raises is rolled back alone, logged with its ref, and remembered; everything else in the same
transaction still commits. `report_failures` then queues one notice per failed unit to the
secretariat channel(s) under the key `unit-failed:{ref}:{channel}`, so a unit that fails every
minute until someone fixes its data is reported once, not every minute.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.domain import Platform
from bot.messages import Reply
from bot.models import Channel
from bot.outbox import NOTICE_KIND, enqueue_id
from bot.rendering import Renderer, render_payload

log = logging.getLogger(__name__)

UNIT_FAILED_KEY = "unit-failed"
"""Key prefix of the secretariat notice about a scheduled unit that could not be prepared."""


@dataclass(frozen=True)
class UnitFailure:
    """A scheduled unit that raised: its ref (e.g. `question-pack:12:srs-secretariat`), why."""

    ref: str
    reason: str


@dataclass
class UnitGuard:
    """Runs scheduled units in savepoints of `session` and collects the ones that fail.

    Without a session (units that only compute, such as rendering) nothing is rolled back:
    the failure is only logged and collected."""

    session: Session | None
    failures: list[UnitFailure] = field(default_factory=list)

    @contextmanager
    def unit(self, ref: str) -> Iterator[None]:
        """Run the block in a savepoint; if it raises, roll it back, log it and carry on."""
        try:
            with self.session.begin_nested() if self.session is not None else nullcontext():
                yield
        except Exception as error:
            log.exception("scheduled unit %s failed; the others go ahead", ref)
            self.failures.append(UnitFailure(ref, f"{type(error).__name__}: {error}"[:500]))


def isolated(guard: UnitGuard | None, ref: str) -> AbstractContextManager[None]:
    """The guard's unit for `ref`; without a guard no isolation at all (a failure propagates
    to the caller's transaction, as commands that post in their own transaction want)."""
    return guard.unit(ref) if guard is not None else nullcontext()


def report_failures(session: Session, renderer: Renderer, failures: list[UnitFailure]) -> int:
    """Queue one notice per failed unit to each secretariat channel, once per unit ever;
    the number of notices newly queued (in the caller's transaction)."""
    if not failures:
        return 0
    channels = session.scalars(
        select(Channel).where(Channel.secretariat.is_(True)).order_by(Channel.id)
    ).all()
    if not channels:
        for failure in failures:
            log.error("scheduled unit %s failed and no secretariat channel exists", failure.ref)
        return 0
    queued = 0
    for failure in {f.ref: f for f in failures}.values():
        reply = Reply("outbox/unit_failed", {"ref": failure.ref, "reason": failure.reason})
        for channel in channels:
            payload = render_payload(
                renderer, reply, Platform(channel.platform), channel.language.languages
            )
            new_id = enqueue_id(
                session,
                key=f"{UNIT_FAILED_KEY}:{failure.ref}:{channel.slug}",
                channel=channel,
                kind=NOTICE_KIND,
                payload=payload,
            )
            queued += new_id is not None
    return queued
