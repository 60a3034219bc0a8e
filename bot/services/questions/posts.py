"""Posts about questions, all through the outbox: window announcements and reminders, the
pack to the secretariat at close, and each answer to the partners behind the question.

Each post is one `Delivery` row written in the caller's transaction under an idempotency key
(`window-open:{meeting}:{channel}`, `answer:{question}:{channel}`, ...), so a post is queued
at most once however often the scheduler runs or a command is repeated. Visibility is checked
per channel when the post is written: a channel not cleared for a question gets no answer.
`run_due` is the scheduler's entry point; everything it does is safe to repeat.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload

from bot import outbox
from bot.domain import DeliveryState, Platform, QuestionState
from bot.i18n import Translator
from bot.messages import Reply
from bot.models import Channel, Delivery, Meeting, Partner, Question, QuestionSupport
from bot.rendering import Renderer, render_payload
from bot.scheduled_units import UnitGuard, isolated
from bot.services import earlier_posts
from bot.services.post_items import QUESTION_ITEMS
from bot.services.questions import core as questions
from bot.services.questions import notices as question_notices
from bot.services.questions import windows as question_windows
from bot.services.questions.pack import build_pack, file_name, to_docx, to_markdown
from bot.services.questions.windows import MeetingInfo
from bot.visibility import Audience, audience_of_channel, can_see

CLOSING_REMINDER = timedelta(hours=24)
"""How long before a window closes the reminder goes out."""
PACK_LOOKBACK = timedelta(days=7)
"""Windows that closed longer ago than this get no pack post (e.g. on a first deployment)."""
KIND_WINDOW = "question-window"
KIND_ANSWER = "question-answer"
KIND_PACK = "question-pack"
KIND_PACK_UPDATE = "question-pack-update"


# -- the one place that writes a post -------------------------------------------------------
def _render(
    renderer: Renderer, channel: Channel, reply: Reply, questions_shown: Sequence[str] = ()
) -> dict[str, Any]:
    """`reply` as stored for `channel`, in its language(s); the sender checks the questions
    it shows again at send time."""
    return render_payload(
        renderer,
        reply,
        Platform(channel.platform),
        channel.language.languages,
        items={QUESTION_ITEMS: list(questions_shown)} if questions_shown else None,
    )


def _post(
    session: Session, channel: Channel, *, key: str, kind: str, payload: dict[str, Any]
) -> bool:
    """Queue a post for `channel` under `key`; False if `key` was queued before (nothing is
    written then)."""
    return (
        outbox.enqueue_id(session, key=key, channel=channel, kind=kind, payload=payload) is not None
    )


def _call_url(
    session: Session, renderer: Renderer, meeting: Meeting, channel: Channel
) -> str | None:
    """The link to the channel's announcement of the meeting's call for questions, if it was
    posted and its platform's addresses are known."""
    post = earlier_posts.sent_post(session, earlier_posts.window_call_key(meeting.id, channel.slug))
    return renderer.post_links.url(post)


def _queued(session: Session, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    found = session.scalars(
        select(Delivery.idempotency_key).where(Delivery.idempotency_key.in_(keys))
    )
    return set(found)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%MZ")


# -- who hears about what -------------------------------------------------------------------
def announcement_channels(session: Session, meeting: Meeting) -> list[Channel]:
    """Every partner's channel (general, or for this board) and the board's own channels."""
    partner_ids = select(Partner.id).where(Partner.kind == "partner")
    statement = (
        select(Channel)
        .options(joinedload(Channel.partner))
        .where(
            Channel.secretariat.is_(False),
            or_(
                Channel.board_id == meeting.board_id,
                Channel.partner_id.in_(partner_ids) & Channel.board_id.is_(None),
            ),
        )
        .order_by(Channel.slug)
    )
    return list(session.scalars(statement))


def answer_channels(session: Session, question: Question) -> list[Channel]:
    """The channels of the asker's partner and of every supporting partner (general ones, or
    those for the question's board)."""
    partner_ids = {question.partner_id} | set(
        session.scalars(
            select(QuestionSupport.partner_id).where(QuestionSupport.question_id == question.id)
        )
    )
    statement = (
        select(Channel)
        .options(joinedload(Channel.partner))
        .where(
            Channel.secretariat.is_(False),
            Channel.partner_id.in_(partner_ids),
            or_(Channel.board_id.is_(None), Channel.board_id == question.meeting.board_id),
        )
        .order_by(Channel.slug)
    )
    return list(session.scalars(statement))


def secretariat_channels(session: Session) -> list[Channel]:
    """Where the secretariat works."""
    statement = (
        select(Channel)
        .options(joinedload(Channel.partner))
        .where(Channel.secretariat.is_(True))
        .order_by(Channel.slug)
    )
    return list(session.scalars(statement))


def _partner_slugs(session: Session) -> list[str]:
    return list(session.scalars(select(Partner.slug)))


# -- windows ----------------------------------------------------------------------------------
def announce_window(
    session: Session,
    meeting: Meeting,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    kind: str = "open",
    guard: UnitGuard | None = None,
) -> list[str]:
    """Tell every channel the meeting concerns that its window is open ("open"), was
    extended ("extend") or closes soon ("closing"); the names of channels newly queued.

    With a `guard`, each channel's post is its own unit: one that cannot be rendered is
    reported and the other channels still get theirs."""
    close = meeting.questions_close
    if close is None:
        return []
    channels = announcement_channels(session, meeting)
    prefix = {"open": "window-open", "extend": "window-extend", "closing": "window-closing"}[kind]

    def key_of(channel: Channel) -> str:
        base = (
            earlier_posts.window_call_key(meeting.id, channel.slug)
            if kind == "open"
            else f"{prefix}:{meeting.id}:{channel.slug}"
        )
        # A new closing time deserves its own extension notice and its own reminder.
        return base if kind == "open" else f"{base}:{_stamp(close)}"

    done = _queued(session, [key_of(c) for c in channels])
    info = MeetingInfo.of(meeting, now, zone)
    posted = []
    for channel in channels:
        key = key_of(channel)
        if key in done:
            continue
        with isolated(guard, key):
            # An extension or last call links the announcement it follows up.
            call_url = None if kind == "open" else _call_url(session, renderer, meeting, channel)
            context = {"meeting": info, "kind": kind, "call_url": call_url}
            reply = Reply("questions/window_post", context, public=True)
            payload = _render(renderer, channel, reply)
            if _post(session, channel, key=key, kind=KIND_WINDOW, payload=payload):
                posted.append(channel.name)
    return posted


def post_pack(
    session: Session,
    meeting: Meeting,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> list[str]:
    """Send the pack to the secretariat's channels: a summary message with the pack as a
    Word document and as Markdown (`payload["files"]`, uploaded by messengers that can)."""
    posted = []
    close = meeting.questions_close or now
    for channel in secretariat_channels(session):
        key = f"question-pack:{meeting.id}:{channel.slug}:{_stamp(close)}"
        if key in _queued(session, [key]):
            continue
        with isolated(guard, key):
            payload = pack_payload(session, meeting, channel, renderer, now=now)
            if _post(session, channel, key=key, kind=KIND_PACK, payload=payload):
                posted.append(channel.name)
    return posted


def pack_payload(
    session: Session, meeting: Meeting, channel: Channel, renderer: Renderer, *, now: datetime
) -> dict[str, Any]:
    """The pack post for one channel: built for what the channel may see, in its language."""
    zone = renderer.tz
    pack = build_pack(
        session, meeting, audience_of_channel(channel, _partner_slugs(session)), now=now, zone=zone
    )
    translators = [Translator(language, zone) for language in channel.language.languages]
    title = " / ".join(
        t._("Question pack: {meeting}").format(meeting=pack.meeting.spec) for t in translators
    )
    payload = render_payload(
        renderer,
        Reply("questions/pack_post", {"pack": pack}, public=True),
        Platform(channel.platform),
        channel.language.languages,
        items={QUESTION_ITEMS: [q.ref for q in pack.questions]},
        rebuild={"kind": KIND_PACK, "meeting": meeting.id, "at": now.isoformat()},
    )
    payload["files"] = [
        {
            "filename": file_name(pack, "docx"),
            "title": title,
            "base64": base64.b64encode(to_docx(pack, translators)).decode("ascii"),
        },
        {
            "filename": file_name(pack, "md"),
            "title": title,
            "content": to_markdown(pack, translators),
        },
    ]
    return payload


def _last_change(session: Session, meeting: Meeting) -> datetime | None:
    """When a fact the pack shows last changed: a question's state (accepted, rejected,
    answered, merged) or a new supporter."""
    changed = session.scalar(
        select(func.max(Question.updated_at)).where(Question.meeting_id == meeting.id)
    )
    supported = session.scalar(
        select(func.max(QuestionSupport.created_at))
        .join(Question, Question.id == QuestionSupport.question_id)
        .where(Question.meeting_id == meeting.id)
    )
    moments = [m for m in (changed, supported) if m is not None]
    return max(moments) if moments else None


def refresh_packs(
    session: Session,
    meeting: Meeting,
    renderer: Renderer,
    *,
    now: datetime,
    guard: UnitGuard | None = None,
) -> list[str]:
    """Queue an update in place of each pack post sent before the meeting's questions last
    changed, keyed `update:{pack key}:{change}` so each change updates each post once. The
    summary is re-rendered from the current facts; the files in its thread stay as posted."""
    changed = _last_change(session, meeting)
    if changed is None:
        return []
    sent = session.scalars(
        select(Delivery)
        .options(joinedload(Delivery.channel))
        .where(
            Delivery.kind == KIND_PACK,
            Delivery.idempotency_key.like(f"question-pack:{meeting.id}:%"),
            Delivery.state == DeliveryState.SENT,
            Delivery.sent_at < changed,
        )
        .order_by(Delivery.id)
    ).all()
    keys = {p.id: f"update:{p.idempotency_key}:{_stamp(changed)}" for p in sent}
    done = _queued(session, list(keys.values()))
    updated = []
    for pack in sent:
        if keys[pack.id] in done:
            continue
        with isolated(guard, keys[pack.id]):
            payload = pack_payload(session, meeting, pack.channel, renderer, now=now)
            # No files (they stay in the thread) and no rebuild (a rebuilt pack is a new post).
            payload.pop("files", None)
            payload.pop("rebuild", None)
            payload[outbox.UPDATE_OF] = pack.idempotency_key
            if _post(
                session, pack.channel, key=keys[pack.id], kind=KIND_PACK_UPDATE, payload=payload
            ):
                updated.append(pack.channel.name)
    return updated


def rebuild_pack(session: Session, delivery: Delivery, renderer: Renderer) -> dict[str, Any] | None:
    """The pack post rebuilt at send time, for what its channel may see now (outbox rebuilder)."""
    info = delivery.payload.get("rebuild") or {}
    meeting = session.get(Meeting, int(info.get("meeting", 0)))
    if info.get("kind") != KIND_PACK or meeting is None:
        return None
    at = datetime.fromisoformat(str(info["at"]))
    return pack_payload(session, meeting, delivery.channel, renderer, now=at)


# -- answers ----------------------------------------------------------------------------------
@dataclass
class AnswerPosts:
    """Where an answer went: queued now, queued before, or not cleared to see the question."""

    posted: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    not_cleared: list[str] = field(default_factory=list)


def post_answer(
    session: Session,
    question: Question,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> AnswerPosts:
    """Queue the answer, with the original question, for each partner channel behind it,
    once per channel; channels not cleared for the question get nothing."""
    result = AnswerPosts()
    if question.state is not QuestionState.ANSWERED:
        return result
    channels = answer_channels(session, question)
    partners = _partner_slugs(session)
    keys = {c.id: f"answer:{question.ref}:{c.slug}" for c in channels}
    done = _queued(session, list(keys.values()))
    shown = questions.view(session, question, viewer=None, now=now, zone=zone)
    for channel in channels:
        audience: Audience = audience_of_channel(channel, partners)
        if keys[channel.id] in done:
            result.already.append(channel.name)
        elif not can_see(question, audience):
            result.not_cleared.append(channel.name)
        else:
            with isolated(guard, keys[channel.id]):
                call_url = _call_url(session, renderer, question.meeting, channel)
                context = {"question": shown, "call_url": call_url}
                reply = Reply("questions/answer_post", context, public=True)
                payload = _render(renderer, channel, reply, [question.ref])
                # In the thread of the call for questions, where a platform can reply in one.
                payload[outbox.THREAD_OF] = earlier_posts.window_call_key(
                    question.meeting.id, channel.slug
                )
                key = keys[channel.id]
                if _post(session, channel, key=key, kind=KIND_ANSWER, payload=payload):
                    result.posted.append(channel.name)
                else:
                    result.already.append(channel.name)
    return result


def post_unposted_answers(
    session: Session,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> int:
    """Post every answered question that has no answer post yet (answers imported from a
    file, say); the number of posts queued."""
    answered = list(
        session.scalars(
            select(Question)
            .options(
                joinedload(Question.meeting).joinedload(Meeting.board), joinedload(Question.asker)
            )
            .where(Question.state == QuestionState.ANSWERED)
        )
    )
    if not answered:
        return 0
    keys = session.scalars(
        select(Delivery.idempotency_key).where(Delivery.idempotency_key.like("answer:%"))
    )
    posted_refs = {key.split(":")[1] for key in keys}
    count = 0
    for question in answered:
        if question.ref not in posted_refs:
            # Building the question's view may fail too: that is the answer's unit as well.
            with isolated(guard, f"answer:{question.ref}"):
                posts = post_answer(session, question, renderer, now=now, zone=zone, guard=guard)
                count += len(posts.posted)
    return count


def answer_question(
    session: Session,
    ref: str,
    answer: str,
    answered_by: str,
    *,
    actor: str,
    renderer: Renderer,
    now: datetime,
    zone: ZoneInfo,
    t: Translator,
    audience: Audience | None = None,
) -> tuple[Question, AnswerPosts]:
    """Record an answer and queue its posts, in one transaction."""
    question = questions.record_answer(
        session, ref, answer, answered_by, actor=actor, now=now, t=t, audience=audience
    )
    return question, post_answer(session, question, renderer, now=now, zone=zone)


# -- the scheduler's entry point ------------------------------------------------------------
@dataclass
class DueReport:
    """What one `run_due` call queued or changed."""

    announced: int = 0
    reminded: int = 0
    packs: int = 0
    packs_updated: int = 0
    """Pack posts queued to be updated in place after their questions changed."""
    carried: int = 0
    answers: int = 0
    notices: int = 0
    """Direct messages queued to askers and supporters (`question_notices`)."""
    unreachable: int = 0
    """Askers and supporters owed a notice the bot cannot reach alone (Teams-only)."""


def run_due(
    session: Session,
    renderer: Renderer,
    *,
    now: datetime,
    zone: ZoneInfo,
    guard: UnitGuard | None = None,
) -> DueReport:
    """Everything time brings about for questions; safe to run as often as wanted.

    Announce open windows, remind a day before they close, send the pack when one has
    closed, carry unanswered questions forward after a meeting, and post answers that
    arrived without being posted (imports). With a `guard` (the scheduler's), every post
    and every carry-forward is its own unit, so one that fails holds none of the others
    back; without one, a failure rolls back the caller's transaction.
    """
    report = DueReport()
    for meeting in question_windows.open_meetings(session, now=now):
        report.announced += len(
            announce_window(session, meeting, renderer, now=now, zone=zone, guard=guard)
        )
        close = meeting.questions_close
        if close is not None and close - now <= CLOSING_REMINDER:
            report.reminded += len(
                announce_window(
                    session, meeting, renderer, now=now, zone=zone, kind="closing", guard=guard
                )
            )
    closed = session.scalars(
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(
            Meeting.questions_close.is_not(None),
            Meeting.questions_close <= now,
            Meeting.questions_close > now - PACK_LOOKBACK,
            Meeting.starts_at > now,
        )
        .order_by(Meeting.starts_at)
    )
    for meeting in list(closed):
        report.packs += len(post_pack(session, meeting, renderer, now=now, zone=zone, guard=guard))
        report.packs_updated += len(refresh_packs(session, meeting, renderer, now=now, guard=guard))
        to_board = question_notices.send_pack_to_board(
            session, meeting, renderer, now=now, zone=zone, guard=guard
        )
        report.notices += len(to_board.queued)
    for meeting in questions.meetings_to_carry(session, now=now):
        with isolated(guard, f"carry-forward:{meeting.id}"):
            report.carried += len(questions.carry_forward(session, meeting, now=now, zone=zone))
    report.answers += post_unposted_answers(session, renderer, now=now, zone=zone, guard=guard)
    notices = question_notices.run_due(session, renderer, now=now, zone=zone, guard=guard)
    report.notices += len(notices.queued)
    report.unreachable += len(notices.unreachable)
    return report
