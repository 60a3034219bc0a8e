"""Direct messages to one member, through the outbox like every other post.

A member's direct channel is a `Channel` row with `direct_member_id` set: Slack by their user
id, or the console for a member with no chat identity (`models.direct_channel_fields`). Its
audience is exactly the member's (partner, clearance, exemption), kept in step when the member
changes, so the sender's check at send time is the member's own clearance. No other query
ever sees these rows (`models.DIRECT_CHANNELS`): no announcement, pack, answer post, digest,
reminder or console `:channel` can land in someone's direct messages.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import outbox
from bot.domain import Platform
from bot.messages import Reply
from bot.models import DIRECT_CHANNELS, Channel, Member, direct_channel_fields
from bot.rendering import Renderer, render_payload
from bot.visibility import Classified, audience_of_member, can_see

log = logging.getLogger(__name__)
KIND_DIRECT = "direct"


def direct_channel(session: Session, member: Member) -> Channel | None:
    """The member's direct channel, made or brought up to date; None when the bot cannot
    reach them alone (a member known only to Teams, or no longer active)."""
    fields = direct_channel_fields(member)
    channel = session.scalar(
        select(Channel)
        .where(Channel.direct_member_id == member.id)
        .execution_options(**{DIRECT_CHANNELS: True})
    )
    if fields is None or not member.active:
        return None
    if channel is None:
        channel = Channel(direct_member_id=member.id, **fields)
        session.add(channel)
    else:
        for name, value in fields.items():
            setattr(channel, name, value)
    session.flush()
    return channel


@dataclass
class DirectReport:
    """What `send_direct` did for each member, by slug."""

    queued: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_cleared: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def add(self, other: DirectReport) -> None:
        """Accumulate another report into this one."""
        for name in ("queued", "already", "not_cleared", "unreachable"):
            getattr(self, name).extend(getattr(other, name))


def send_direct(
    session: Session,
    member: Member,
    renderer: Renderer,
    reply: Reply,
    *,
    key: str,
    items: Mapping[str, Sequence[str]],
    classified: Sequence[Classified] = (),
    kind: str = KIND_DIRECT,
) -> DirectReport:
    """Queue `reply` for `member` alone under `key`, in their language, once.

    Nothing is queued when the member may not see every item in `classified` (checked again
    by the sender against the member's own audience at send time), or cannot be reached alone.
    """
    report = DirectReport()
    audience = audience_of_member(member)
    if not all(can_see(item, audience) for item in classified):
        report.not_cleared.append(member.slug)
        return report
    channel = direct_channel(session, member)
    if channel is None:
        log.info("no direct message for %s (%s): no chat identity to reach them", member.slug, key)
        report.unreachable.append(member.slug)
        return report
    payload = render_payload(
        renderer,
        reply,
        Platform(channel.platform),
        channel.language.languages,
        items={kind_: list(refs) for kind_, refs in items.items()},
    )
    queued = outbox.enqueue_id(session, key=key, channel=channel, kind=kind, payload=payload)
    (report.queued if queued is not None else report.already).append(member.slug)
    return report
