"""Direct messages to the people behind a question when the secretariat decides on it.

The asker and every supporter hear once when their question is accepted, rejected (with the
reason), merged (into which question, when they may see it) or answered, in their own
language and only if they are cleared for the question. Each notice is one outbox row keyed
`notify:{question}:{event}:{member}`; `run_due` (the scheduler's, after every question post)
finds what is owed from the questions themselves, so a decision made in chat, on the web or by
an import is told alike, and running it twice queues nothing new.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from bot.domain import QuestionState, Role
from bot.i18n import Translator
from bot.messages import Reply
from bot.models import Board, Delivery, Meeting, Member, Question, QuestionSupport
from bot.models import board_members as board_members_table
from bot.rendering import Renderer
from bot.scheduled_units import UnitGuard, isolated
from bot.services.direct_messages import DirectReport, send_direct
from bot.services.post_items import QUESTION_ITEMS
from bot.services.questions import core as questions
from bot.services.questions import pack as question_pack
from bot.visibility import audience_of_member, can_see

log = logging.getLogger(__name__)
KIND_NOTICE = "question-notice"
LOOKBACK = timedelta(days=7)
"""Decisions older than this are not told (a first deployment does not replay the past)."""

EVENTS = {
    QuestionState.ACCEPTED: "accepted",
    QuestionState.REJECTED: "rejected",
    QuestionState.MERGED: "merged",
    QuestionState.ANSWERED: "answered",
}


def notice_key(question: Question, event: str, member: Member) -> str:
    """The idempotency key of one notice."""
    return f"notify:{question.ref}:{event}:{member.slug}"


@dataclass(frozen=True)
class _Recipient:
    member: Member
    why: str
    """"asker", "supporter" or "board" (a board member of the question's board)."""


def board_members(session: Session, board: Board) -> list[Member]:
    """The active members with the `board-member` role who sit on `board`: its packs and
    answers come to them directly."""
    statement = (
        select(Member)
        .options(joinedload(Member.partner))
        .join(board_members_table, board_members_table.c.member_id == Member.id)
        .where(board_members_table.c.board_id == board.id, Member.active.is_(True))
        .order_by(Member.slug)
    )
    return [m for m in session.scalars(statement) if Role.BOARD_MEMBER.value in (m.roles or ())]


def _recipients(session: Session, question: Question, event: str) -> list[_Recipient]:
    """The asker, then supporters in order; for a decision (not an answer) only those who
    backed the question before it was made."""
    found = [_Recipient(question.asker, "asker")]
    seen = {question.asker_id}
    supports = session.scalars(
        select(QuestionSupport)
        .where(QuestionSupport.question_id == question.id)
        .order_by(QuestionSupport.id)
    ).all()
    members = {
        m.id: m
        for m in session.scalars(
            select(Member)
            .options(joinedload(Member.partner))
            .where(Member.id.in_({s.member_id for s in supports}))
        )
    }
    for support in supports:
        if support.member_id in seen or support.member_id not in members:
            continue
        if event != "answered" and support.created_at > question.updated_at:
            continue
        seen.add(support.member_id)
        found.append(_Recipient(members[support.member_id], "supporter"))
    if event == "answered":
        for member in board_members(session, question.meeting.board):
            if member.id not in seen:
                seen.add(member.id)
                found.append(_Recipient(member, "board"))
    return [r for r in found if r.member.active]


def notify_question(
    session: Session,
    question: Question,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> DirectReport:
    """Queue the notice of the question's current decision to everyone behind it, once each."""
    report = DirectReport()
    event = EVENTS.get(question.state)
    if event is None:
        return report
    recipients = _recipients(session, question, event)
    keys = {r.member.id: notice_key(question, event, r.member) for r in recipients}
    done = set(
        session.scalars(
            select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(keys.values()))
        )
    )
    if done >= set(keys.values()):
        report.already.extend(r.member.slug for r in recipients)
        return report
    target = session.get(Question, question.merged_into_id) if question.merged_into_id else None
    shown = questions.view(session, question, viewer=None, now=now, zone=zone)
    for recipient in recipients:
        member, key = recipient.member, keys[recipient.member.id]
        if key in done:
            report.already.append(member.slug)
            continue
        with isolated(guard, key):
            # Name the question it went into only to someone who may see that one too.
            told_target = (
                target
                if target is not None and can_see(target, audience_of_member(member))
                else None
            )
            refs = [question.ref] + ([told_target.ref] if told_target is not None else [])
            reply = Reply(
                "notices/question",
                {
                    "event": event,
                    "question": shown,
                    "merged_into": told_target.ref if told_target is not None else None,
                    "why": recipient.why,
                    "board": question.meeting.board,
                },
                public=True,
            )
            report.add(
                send_direct(
                    session,
                    member,
                    renderer,
                    reply,
                    key=key,
                    items={QUESTION_ITEMS: refs},
                    classified=[question],
                    kind=KIND_NOTICE,
                )
            )
    return report


def run_due(
    session: Session,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> DirectReport:
    """Queue every notice owed for decisions of the last `LOOKBACK`; safe to repeat."""
    report = DirectReport()
    decided = session.scalars(
        select(Question)
        .options(
            joinedload(Question.meeting).joinedload(Meeting.board),
            joinedload(Question.asker).joinedload(Member.partner),
        )
        .where(Question.state.in_(list(EVENTS)), Question.updated_at > now - LOOKBACK)
        .order_by(Question.id)
    ).all()
    for question in decided:
        # Reading the question (its view, its backers) may fail too: that is its notices' unit.
        with isolated(guard, f"notify:{question.ref}"):
            report.add(
                notify_question(session, question, renderer, now=now, zone=zone, guard=guard)
            )
    if report.unreachable:
        log.info(
            "%d question notices not sent: no chat identity to reach %s alone",
            len(report.unreachable),
            ", ".join(sorted(set(report.unreachable))),
        )
    return report


def send_pack_to_board(
    session: Session,
    meeting: Meeting,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> DirectReport:
    """The meeting's question pack, once, to each board member of its board, as each may
    see it and in their language (the secretariat's copy with the files is `post_pack`)."""
    report = DirectReport()
    close = meeting.questions_close or now
    for member in board_members(session, meeting.board):
        key = f"pack:{meeting.id}:{member.slug}:{close.strftime('%Y%m%dT%H%MZ')}"
        if session.scalar(select(Delivery.id).where(Delivery.idempotency_key == key)):
            report.already.append(member.slug)
            continue
        with isolated(guard, key):
            pack = question_pack.build_pack(
                session, meeting, audience_of_member(member), now=now, zone=zone
            )
            t = Translator("cy" if member.language == "cy" else "en", zone)
            reply = Reply(
                "questions/pack",
                {"outline": question_pack.outline(pack, t), "pack": pack},
                public=True,
            )
            report.add(
                send_direct(
                    session,
                    member,
                    renderer,
                    reply,
                    key=key,
                    items={QUESTION_ITEMS: [q.ref for q in pack.questions]},
                    kind=KIND_NOTICE,
                )
            )
    return report
