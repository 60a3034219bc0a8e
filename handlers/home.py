"""`/scrutiny home` and Slack's App Home tab: one member's overview.

Their partner's overdue and due-soon actions, decisions of the last 30 days, the next
meetings and the question windows open now, all read through the query services with the
request's audience (the App Home is read by the member alone).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.context import Context
from bot.i18n import N_
from bot.messages import Reply, Request
from bot.models import Member
from bot.router import Router
from bot.services import queries
from bot.services.plain_words import DUE_SOON_DAYS
from bot.visibility import Audience

router = Router("home")

RECENT_DAYS = 30
"""How far back 'recent decisions' reaches."""
PER_SECTION = 5
"""Items per section: the overview stays short; each section links to the full list."""


@router.command(
    "home",
    writes=False,
    aliases=("cartref",),
    summary=N_("Your overview: your partner's actions, recent decisions and meetings."),
    usage=N_("home"),
)
def home(request: Request, ctx: Context) -> Reply:
    """The member's overview, filtered for whoever will read it."""
    return Reply(
        "home/home",
        {
            **overview(ctx.session, ctx.audience, ctx.member, today=ctx.today, now=ctx.now),
            "shared": not request.is_direct and request.channel_id is not None,
        },
        surface="home",
    )


def overview(
    session: Session, audience: Audience, member: Member, *, today: date, now: datetime
) -> dict[str, Any]:
    """What the overview shows (chat, Slack's App Home and the Teams Home tab), read with
    `audience` through the query services."""
    partner = queries.PartnerView.of(member.partner)
    since = today - timedelta(days=RECENT_DAYS)
    overdue = queries.find_actions(
        session, audience, today=today, partner=partner.slug, overdue=True, per_page=PER_SECTION
    )
    due_soon = queries.find_actions(
        session,
        audience,
        today=today,
        partner=partner.slug,
        due_within_days=DUE_SOON_DAYS,
        per_page=PER_SECTION,
    )
    decisions = queries.find_decisions(session, audience, since=since, per_page=PER_SECTION)
    return {
        "member_name": member.name,
        "partner": partner,
        "overdue": overdue,
        "due_soon": due_soon,
        "due_soon_days": DUE_SOON_DAYS,
        "decisions": decisions,
        "decisions_since": since,
        "recent_days": RECENT_DAYS,
        "meetings": queries.next_meetings(session, now=now, limit=PER_SECTION),
        "windows": queries.open_question_windows(session, now=now),
        "commands": {
            "overdue": f"actions overdue {partner.slug}",
            "due_soon": f"actions due soon {partner.slug}",
            "decisions": f"decisions since {since.isoformat()}",
        },
        "today": today,
    }
