"""Real-time alerts: a post in each channel that asked for them (`alerts: [decisions]` in the
collaboration file) when a decision it may see enters the register, whether recorded in chat
or on the web, imported or synced from Microsoft 365.

The scheduler runs `run_due` every pass; each alert is one outbox row keyed
`alert:{decision}:{channel}`, so a decision is told once per channel however often it runs,
in the channel's language(s), and the sender checks the decision again before posting.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot import outbox
from bot.domain import AlertKind, Platform
from bot.messages import Reply
from bot.models import Channel, Decision, Delivery, Partner
from bot.rendering import Renderer, render_payload
from bot.scheduled_units import UnitGuard, isolated
from bot.services.post_items import DECISION_ITEMS
from bot.services.queries import DecisionView, PartnerView
from bot.visibility import audience_of_channel, can_see

KIND_ALERT = "decision-alert"
LOOKBACK = timedelta(days=2)
"""Decisions recorded longer ago than this are not alerted (a channel that opts in, or a
first deployment, does not replay the register; the digest covers them)."""


def alert_key(decision: Decision, channel: Channel) -> str:
    """The idempotency key of one alert."""
    return f"alert:{decision.ref}:{channel.slug}"


def alert_channels(session: Session, kind: AlertKind) -> list[Channel]:
    """The channels that asked for `kind` alerts."""
    channels = session.scalars(
        select(Channel).options(joinedload(Channel.partner)).order_by(Channel.slug)
    )
    return [c for c in channels if kind.value in (c.alerts or [])]


def run_due(
    session: Session, renderer: Renderer, *, now: datetime, guard: UnitGuard | None = None
) -> int:
    """Queue an alert for each recent decision in each channel that wants it and may see
    it; the number queued. Safe to run as often as wanted."""
    channels = alert_channels(session, AlertKind.DECISIONS)
    if not channels:
        return 0
    decisions = session.scalars(
        select(Decision)
        .options(joinedload(Decision.board), joinedload(Decision.meeting))
        .where(Decision.recorded_at > now - LOOKBACK)
        .order_by(Decision.recorded_at, Decision.id)
    ).all()
    if not decisions:
        return 0
    keys = [alert_key(d, c) for d in decisions for c in channels]
    done = set(
        session.scalars(select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(keys)))
    )
    partners = {p.slug: PartnerView.of(p) for p in session.scalars(select(Partner))}
    audiences = {c.id: audience_of_channel(c, list(partners)) for c in channels}
    queued = 0
    for decision in decisions:
        wanting = [
            c
            for c in channels
            if alert_key(decision, c) not in done and can_see(decision, audiences[c.id])
        ]
        if not wanting:
            continue
        view = DecisionView.of(decision, partners)
        for channel in wanting:
            key = alert_key(decision, channel)
            with isolated(guard, key):
                payload = render_payload(
                    renderer,
                    Reply("alerts/decision", {"decision": view}, public=True),
                    Platform(channel.platform),
                    channel.language.languages,
                    items={DECISION_ITEMS: [decision.ref]},
                )
                new = outbox.enqueue_id(
                    session, key=key, channel=channel, kind=KIND_ALERT, payload=payload
                )
                queued += new is not None
    return queued
