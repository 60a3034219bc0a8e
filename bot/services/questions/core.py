"""Joint-scrutiny questions: submitting, supporting, moderation, answers, carrying forward.

Every function checks all of its input before it changes anything and raises `QuestionError`
(a translated `UserError`) naming what is wrong and how to fix it, so nothing is half-stored.
Every change is audited in the caller's transaction. Reads go through `bot.visibility`:
a question carries a marking like decisions and actions do (inherited from the items it links).
Meetings and their windows are in `bot.services.questions.windows`; posting (announcements,
answers) in `bot.services.questions.posts`.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from bot import text_input
from bot.domain import AnonymousQuestions, Marking, QuestionState, Role
from bot.i18n import N_, Translator
from bot.models import Action, Board, Meeting, Member, Partner, Question, QuestionSupport
from bot.services import audit
from bot.services.queries import Found, NotFound, PartnerView, get_action, get_decision
from bot.services.questions.windows import (
    MEETING_LENGTH,
    MeetingInfo,
    QuestionError,
    meeting_end,
    meeting_spec,
    open_meetings,
    require_open_window,
)
from bot.visibility import Audience, can_see, partition

MAX_LENGTH = text_input.QUESTION.limit
"""Longest question, in characters (the review's pack keeps questions short)."""
REASON_MAX = text_input.REASON.limit
ANSWER_MAX = text_input.ANSWER.limit
ANSWERED_BY_MAX = text_input.ANSWERED_BY.limit
SIMILARITY = 85.0
"""rapidfuzz token-set ratio (0-100) from which two questions count as near-duplicates."""
REF_ATTEMPTS = 8
"""Tries at a fresh reference when another submission took the same one first."""

THEMES: tuple[str, ...] = (
    "vision-and-plan",
    "direction-and-priorities",
    "delivery-and-resilience",
    "benefits-and-learning",
    "oversight-and-outcomes",
)
"""The review's five key questions, in its order; a pack groups questions by them."""
THEME_LABELS: dict[str, str] = {
    "vision-and-plan": N_("Vision and plan"),
    "direction-and-priorities": N_("Direction and priorities"),
    "delivery-and-resilience": N_("Delivery and resilience"),
    "benefits-and-learning": N_("Benefits and learning"),
    "oversight-and-outcomes": N_("Oversight and outcomes"),
    "": N_("Other questions"),
}
STATE_LABELS: dict[QuestionState, str] = {
    QuestionState.SUBMITTED: N_("awaiting moderation"),
    QuestionState.ACCEPTED: N_("accepted"),
    QuestionState.REJECTED: N_("rejected"),
    QuestionState.MERGED: N_("merged"),
    QuestionState.WITHDRAWN: N_("withdrawn"),
    QuestionState.ANSWERED: N_("answered"),
    QuestionState.CARRIED_FORWARD: N_("carried forward"),
}
OPEN_STATES = (QuestionState.SUBMITTED, QuestionState.ACCEPTED)
"""States in which a question may still be supported, edited, withdrawn or merged."""
PRIVATE_STATES = (QuestionState.REJECTED, QuestionState.WITHDRAWN)
"""Shown only to the asker, the question's supporters and the secretariat."""
_AUDITED = (
    "anonymous",
    "text",
    "theme",
    "state",
    "reason",
    "linked_refs",
    "merged_into_id",
    "answer",
    "answered_by",
    "marking",
    "exempt_paragraph",
    "restricted_to",
)

_THEME_KEYWORD = re.compile(r"(?<!\S)(?:theme|thema):(\S*)", re.IGNORECASE)
_DECISION_REF = re.compile(r"(?<![\w-])([A-Za-z]{1,4})-(\d{4})-(\d{1,4})(?![\w-])")
_ACTION_REF = re.compile(r"(?<![\w-])([A-Z]{1,4})-(\d{1,5})(?![\w-])")
_ANY_REF = re.compile(r"^[A-Za-z]{1,4}-\d{1,5}(?:-\d{1,4})?$")
_QUESTION_REF = re.compile(r"^Q-([A-Z]{1,8})-(\d{4})-(\d{2})-(\d{1,6})$", re.IGNORECASE)


# -- views ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuestionView:
    """A question as shown to one reader; classification kept so it can be checked again."""

    ref: str
    meeting: MeetingInfo
    text: str
    theme: str
    state: QuestionState
    reason: str
    asker_name: str
    asker_partner: PartnerView
    askers: tuple[PartnerView, ...]
    """The asker's partner and those of every question merged into this one."""
    supporters: tuple[PartnerView, ...]
    """Other partners whose members support it."""
    partner_count: int
    """Distinct partners behind it, askers and supporters together (the pack's order)."""
    merged_into: str | None
    carried_from: str | None
    carried_to: str | None
    linked_refs: tuple[str, ...]
    answer: str
    answered_by: str
    answered_at: datetime | None
    created_at: datetime
    mine: bool
    supported: bool
    """The reader supports it already."""
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: tuple[str, ...]
    anonymous: bool = False
    """The asker chose to be anonymous; with the board's `hidden`, `askers` leaves out their
    partner (and `asker_name` is empty) for everyone but the asker and the secretariat."""

    @property
    def is_open(self) -> bool:
        """Submitted or accepted: may still be supported, edited or withdrawn."""
        return self.state in OPEN_STATES

    @property
    def can_support(self) -> bool:
        """Whether the reader may add their support now."""
        return (
            self.is_open and self.meeting.window == "open" and not self.mine and not self.supported
        )


@dataclass(frozen=True)
class MeetingQuestions:
    """One meeting's questions that a reader may see."""

    meeting: MeetingInfo
    questions: tuple[QuestionView, ...]


@dataclass(frozen=True)
class QuestionList:
    """Questions by meeting, and a content-free count of those withheld from the reader."""

    meetings: tuple[MeetingQuestions, ...]
    withheld: dict[str, int]

    @property
    def withheld_total(self) -> int:
        """How many questions the reader may not see."""
        return sum(self.withheld.values())

    @property
    def total(self) -> int:
        """Questions shown, across meetings."""
        return sum(len(m.questions) for m in self.meetings)


@dataclass(frozen=True)
class Duplicate:
    """A submission not stored because a similar open question exists."""

    existing: QuestionView
    score: float
    draft: Draft
    meeting: MeetingInfo


@dataclass(frozen=True)
class Draft:
    """A question's words read and checked, not yet stored."""

    text: str
    theme: str
    links: tuple[str, ...] = ()
    """Refs given apart from the text (a form's link field); refs in the text are found too."""
    anonymous: bool = False
    """The asker chose to be anonymous (`ask anon ...`); only where the board allows it."""


@dataclass(frozen=True)
class Merged:
    """A merge: `source` now points at `target`, which gained `added` supporters."""

    source: Question
    target: Question
    added: int


# -- reading a question's words ---------------------------------------------------------------
def theme_of(word: str, t: Translator) -> str:
    """The theme slug a word names ("delivery", "oversight-and-outcomes"); '' for none."""
    wanted = word.strip().lower()
    if not wanted:
        return ""
    matches = [slug for slug in THEMES if slug == wanted or slug.split("-")[0] == wanted]
    if len(matches) != 1:
        raise QuestionError(
            t._("“{value}” is not a theme; use one of {themes}.").format(
                value=word, themes=", ".join(THEMES)
            ),
            "theme",
        )
    return matches[0]


def bounded(
    value: str,
    *,
    field: text_input.TextField,
    empty: str | None,
    too_long: str,
    t: Translator,
) -> str:
    """`value` cleaned by `text_input.clean` for `field`; refused when empty (if `empty` says
    why), longer than the field's limit (`too_long` has {count} and {limit}), or holding a
    hidden control character."""
    try:
        text = text_input.clean(value, field)
    except text_input.TextRefused as refused:
        if refused.problem == "too_long":
            message = too_long.format(count=refused.params["length"], limit=refused.params["limit"])
        else:
            message = refused.message(t._)
        raise QuestionError(message, field.key) from None
    if not text and empty is not None:
        raise QuestionError(empty, field.key)
    return text


def read_draft(raw: str, t: Translator, *, theme: str = "", links: str = "") -> Draft:
    """A question's words: `theme:WORD` taken out, length and emptiness checked."""
    found = _THEME_KEYWORD.findall(raw)
    if len(found) > 1:
        raise QuestionError(t._("Give one theme only (you gave {count}).").format(count=len(found)))
    chosen = theme_of(found[0] if found else theme, t)
    text = bounded(
        " ".join(_THEME_KEYWORD.sub(" ", raw).split()) if found else raw,
        field=text_input.QUESTION,
        t=t,
        empty=t._(
            "Your question is empty; write it after the command, e.g. {cmd} ask When "
            "will the file shares move to SharePoint Online?"
        ).format(cmd=t.cmd),
        too_long=t._(
            "Your question is {count} characters long; the limit is {limit}. Shorten it, or "
            "split it into two questions."
        ),
    )
    extra = tuple(word.upper() for word in re.split(r"[\s,;]+", links) if word)
    for ref in extra:
        if not _ANY_REF.match(ref):
            raise QuestionError(
                t._(
                    "“{value}” is not a decision or action reference (e.g. SB-2026-031, TP-014)."
                ).format(value=ref),
                "link",
            )
    return Draft(text=text, theme=chosen, links=extra)


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, spaces collapsed: what similarity compares."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    return " ".join(kept.split())


def similarity(first: str, second: str) -> float:
    """0-100: how alike two questions' words are, in any order."""
    return float(fuzz.token_set_ratio(normalise(first), normalise(second)))


def _has_action_prefix(session: Session, prefix: str) -> bool:
    like = f"{prefix}-%"
    return (
        session.scalar(select(Action.id).where(func.upper(Action.ref).like(like)).limit(1))
        is not None
    )


def _mentioned_refs(session: Session, text: str) -> list[str]:
    """Decision and action refs in the text; words like GDPR-2018 whose prefix no item uses
    are left as words."""
    prefixes = {p.upper() for p in session.scalars(select(Board.prefix))}
    refs: list[str] = []
    for match in _DECISION_REF.finditer(text):
        if match.group(1).upper() in prefixes:
            refs.append(match.group(0).upper())
    known: dict[str, bool] = {}
    for match in _ACTION_REF.finditer(text):
        prefix = match.group(1)
        if prefix not in known:
            known[prefix] = prefix not in prefixes and _has_action_prefix(session, prefix)
        if known[prefix]:
            refs.append(match.group(0))
    return list(dict.fromkeys(refs))


@dataclass(frozen=True)
class _Linked:
    ref: str
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: tuple[str, ...]


def check_links(
    session: Session, draft: Draft, audience: Audience, *, today: date, t: Translator
) -> list[_Linked]:
    """Every ref in the text or the link field: each must exist and be open to the asker."""
    linked: list[_Linked] = []
    for ref in dict.fromkeys([*_mentioned_refs(session, draft.text), *draft.links]):
        lookup: Any = (
            get_decision(session, audience, ref)
            if _DECISION_REF.fullmatch(ref)
            else get_action(session, audience, ref, today=today)
        )
        if isinstance(lookup, NotFound):
            raise QuestionError(
                t._(
                    "{ref} is not a decision or action I know; check it with {cmd} "
                    "decisions or {cmd} actions, or leave it out."
                ).format(cmd=t.cmd, ref=ref),
                "link",
            )
        if not isinstance(lookup, Found):
            raise QuestionError(
                t._("You can't link {ref}: it is not open to you here.").format(ref=lookup.ref),
                "link",
            )
        item = lookup.item
        linked.append(_Linked(item.ref, item.marking, item.exempt_paragraph, item.restricted_to))
    return linked


def _classification(linked: Sequence[_Linked], t: Translator) -> dict[str, Any]:
    """A question is as closed as the most closed item it links to."""
    marking = max((item.marking for item in linked), key=lambda m: m.rank, default=Marking.OFFICIAL)
    paragraph = next((i.exempt_paragraph for i in linked if i.exempt_paragraph), None)
    restricted: set[str] | None = None
    for item in linked:
        if item.restricted_to:
            restricted = (
                set(item.restricted_to)
                if restricted is None
                else restricted & set(item.restricted_to)
            )
    if restricted is not None and not restricted:
        raise QuestionError(
            t._(
                "The items you link are restricted to different partners; ask about them in "
                "separate questions."
            ),
            "link",
        )
    return {
        "marking": marking,
        "exempt_paragraph": paragraph,
        "restricted_to": sorted(restricted or ()),
        "linked_refs": [item.ref for item in linked],
    }


# -- finding questions ------------------------------------------------------------------------
def canonical_ref(ref: str) -> str:
    """'q-sb-2026-12-3' -> 'Q-SB-2026-12-003'; other text upper-cased as it is."""
    match = _QUESTION_REF.match(ref.strip())
    if not match:
        return ref.strip().upper()
    board, year, month, number = match.groups()
    return f"Q-{board.upper()}-{year}-{month}-{int(number):03d}"


def get_question(session: Session, ref: str, audience: Audience, t: Translator) -> Question:
    """A question by ref that `audience` may see; the same error whether missing or withheld,
    so the existence of a withheld question is not given away."""
    question = session.scalar(
        select(Question)
        .options(joinedload(Question.meeting).joinedload(Meeting.board), joinedload(Question.asker))
        .where(func.upper(Question.ref) == canonical_ref(ref))
    )
    if question is None or not can_see(question, audience):
        raise _no_such_question(ref, t)
    return question


def _no_such_question(ref: str, t: Translator) -> QuestionError:
    return QuestionError(
        t._("There is no question {ref} that you can see here; {cmd} questions lists them.").format(
            cmd=t.cmd, ref=canonical_ref(ref)
        ),
        "ref",
    )


def _refs_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    statement = select(Question.id, Question.ref).where(Question.id.in_(wanted))
    return {row.id: row.ref for row in session.execute(statement)}


def _not_open(question: Question, session: Session, t: Translator) -> QuestionError:
    if question.state is QuestionState.MERGED and question.merged_into_id is not None:
        target = _refs_by_id(session, [question.merged_into_id]).get(question.merged_into_id, "")
        return QuestionError(
            t._("{ref} was merged into {target}; use {target} instead.").format(
                ref=question.ref, target=target
            ),
            "ref",
        )
    return QuestionError(
        t._("{ref} is {state}, so it can no longer be changed or supported.").format(
            ref=question.ref, state=t._(STATE_LABELS[question.state])
        ),
        "ref",
    )


# -- views of many questions at once --------------------------------------------------------
def views(
    session: Session,
    questions: Sequence[Question],
    *,
    viewer: Member | None,
    now: datetime,
    zone: ZoneInfo,
) -> list[QuestionView]:
    """Display-ready views, in the order given, in a constant number of statements."""
    if not questions:
        return []
    ids = [q.id for q in questions]
    partners = {p.id: PartnerView.of(p) for p in session.scalars(select(Partner))}
    supports: dict[int, list[QuestionSupport]] = defaultdict(list)
    for support in session.scalars(
        select(QuestionSupport)
        .where(QuestionSupport.question_id.in_(ids))
        .order_by(QuestionSupport.id)
    ):
        supports[support.question_id].append(support)
    merged_askers: dict[int, list[int]] = defaultdict(list)
    for target, partner_id in session.execute(
        select(Question.merged_into_id, Question.partner_id)
        .where(Question.merged_into_id.in_(ids))
        .order_by(Question.created_at)
    ):
        if target is not None:
            merged_askers[target].append(partner_id)
    carried_to = carried_copies(session, ids)
    refs = _refs_by_id(
        session, [q.merged_into_id for q in questions] + [q.carried_from_id for q in questions]
    )
    meetings: dict[int, MeetingInfo] = {}
    result: list[QuestionView] = []
    for q in questions:
        if q.meeting_id not in meetings:
            meetings[q.meeting_id] = MeetingInfo.of(q.meeting, now, zone)
        asker_ids = list(dict.fromkeys([q.partner_id, *merged_askers[q.id]]))
        supporter_ids = [
            pid
            for pid in dict.fromkeys(s.partner_id for s in supports[q.id])
            if pid not in asker_ids
        ]
        hidden = _asker_hidden(q, viewer)
        shown_askers = asker_ids[1:] if hidden else asker_ids
        result.append(
            QuestionView(
                ref=q.ref,
                meeting=meetings[q.meeting_id],
                text=q.text,
                theme=q.theme,
                state=QuestionState(q.state),
                reason=q.reason,
                asker_name="" if hidden else q.asker.name,
                asker_partner=PartnerView("", "", "") if hidden else partners[q.partner_id],
                askers=tuple(partners[i] for i in shown_askers),
                supporters=tuple(partners[i] for i in supporter_ids),
                partner_count=len(asker_ids) + len(supporter_ids),
                merged_into=refs.get(q.merged_into_id) if q.merged_into_id else None,
                carried_from=refs.get(q.carried_from_id) if q.carried_from_id else None,
                carried_to=carried_to.get(q.id),
                linked_refs=tuple(q.linked_refs or ()),
                answer=q.answer,
                answered_by=q.answered_by,
                answered_at=q.answered_at,
                created_at=q.created_at,
                mine=viewer is not None and q.asker_id == viewer.id,
                supported=viewer is not None
                and any(s.member_id == viewer.id for s in supports[q.id]),
                marking=Marking(q.marking),
                exempt_paragraph=q.exempt_paragraph,
                restricted_to=tuple(q.restricted_to or ()),
                anonymous=bool(q.anonymous),
            )
        )
    return result


def _asker_hidden(question: Question, viewer: Member | None) -> bool:
    """Whether `viewer` (None: a channel post) may not learn who asked: an anonymous question
    of a board that hides askers, read by anyone but its asker and the secretariat."""
    if not question.anonymous:
        return False
    if question.meeting.board.anonymous_questions != AnonymousQuestions.HIDDEN.value:
        return False
    if viewer is None:
        return True
    return viewer.id != question.asker_id and Role.SECRETARIAT.value not in (viewer.roles or ())


def view(
    session: Session, question: Question, *, viewer: Member | None, now: datetime, zone: ZoneInfo
) -> QuestionView:
    """The view of one question."""
    return views(session, [question], viewer=viewer, now=now, zone=zone)[0]


def _with_relations() -> Any:
    return select(Question).options(
        joinedload(Question.meeting).joinedload(Meeting.board), joinedload(Question.asker)
    )


def list_questions(
    session: Session,
    audience: Audience,
    viewer: Member | None,
    *,
    now: datetime,
    zone: ZoneInfo,
    meeting: Meeting | None = None,
    states: Sequence[QuestionState] | None = None,
    sees_private: bool = False,
) -> QuestionList:
    """Questions the reader may see: of one meeting, or of every meeting not yet over.

    Rejected and withdrawn questions are shown only to their asker and supporters, and to
    readers with `sees_private` (the secretariat).
    """
    statement = _with_relations().join(Meeting, Meeting.id == Question.meeting_id)
    if meeting is not None:
        statement = statement.where(Question.meeting_id == meeting.id)
    else:
        statement = statement.where(Meeting.starts_at > now - MEETING_LENGTH)
    if states:
        statement = statement.where(Question.state.in_(states))
    rows = list(
        session.scalars(statement.order_by(Meeting.starts_at, Question.created_at, Question.id))
    )
    split = partition(rows, audience)
    shown = views(session, split.visible, viewer=viewer, now=now, zone=zone)
    if not sees_private:
        viewer_id = viewer.id if viewer is not None else None
        backing = set(
            session.scalars(
                select(QuestionSupport.question_id).where(QuestionSupport.member_id == viewer_id)
            )
        )
        ids = {q.ref: q.id for q in split.visible}
        shown = [
            v for v in shown if v.state not in PRIVATE_STATES or v.mine or ids[v.ref] in backing
        ]
    grouped: dict[int, list[QuestionView]] = defaultdict(list)
    infos: dict[int, MeetingInfo] = {}
    for v in shown:
        grouped[v.meeting.id].append(v)
        infos[v.meeting.id] = v.meeting
    # A meeting taking questions is listed even before anyone has asked one.
    empty = [meeting] if meeting is not None else [] if states else open_meetings(session, now=now)
    for m in empty:
        infos.setdefault(m.id, MeetingInfo.of(m, now, zone))
    order = sorted(infos, key=lambda mid: (infos[mid].starts_at, mid))
    return QuestionList(
        tuple(MeetingQuestions(infos[mid], tuple(grouped[mid])) for mid in order),
        split.withheld,
    )


# -- submitting -------------------------------------------------------------------------------
def ref_prefix(meeting: Meeting, zone: ZoneInfo) -> str:
    """'Q-SB-2026-12-': questions are numbered from 1 within their meeting's board and month."""
    local = meeting.starts_at.astimezone(zone)
    return f"Q-{meeting.board.prefix}-{local:%Y}-{local:%m}-"


def next_number(session: Session, prefix: str) -> int:
    """The number after the highest one used with `prefix`."""
    used = [
        ref[len(prefix) :]
        for ref in session.scalars(select(Question.ref).where(Question.ref.like(f"{prefix}%")))
    ]
    return max((int(n) for n in used if n.isdigit()), default=0) + 1


def _insert_numbered(session: Session, prefix: str, values: dict[str, Any]) -> Question:
    """Insert with the next free ref; if another writer took it first, take the one after.

    The unique constraint on `ref` decides races; each try is its own savepoint so a lost
    race leaves the caller's transaction intact.
    """
    for _attempt in range(REF_ATTEMPTS):
        question = Question(ref=f"{prefix}{next_number(session, prefix):03d}", **values)
        try:
            with session.begin_nested():
                session.add(question)
                session.flush()
        except IntegrityError:
            continue
        return question
    raise RuntimeError(
        f"no free question reference with prefix {prefix} after {REF_ATTEMPTS} tries"
    )


def find_duplicate(
    session: Session, meeting: Meeting, text: str, audience: Audience, *, exclude: int | None = None
) -> tuple[Question, float] | None:
    """The most similar open question of the meeting that `audience` may see, if similar enough."""
    statement = _with_relations().where(
        Question.meeting_id == meeting.id, Question.state.in_(OPEN_STATES)
    )
    if exclude is not None:
        statement = statement.where(Question.id != exclude)
    best: tuple[Question, float] | None = None
    for question in partition(session.scalars(statement), audience).visible:
        score = similarity(text, question.text)
        if score >= SIMILARITY and (best is None or score > best[1]):
            best = (question, score)
    return best


def submit(
    session: Session,
    meeting: Meeting,
    member: Member,
    audience: Audience,
    draft: Draft,
    *,
    now: datetime,
    zone: ZoneInfo,
    t: Translator,
    force: bool = False,
) -> Question | Duplicate:
    """Store a question for `meeting`, or return the near-duplicate it resembles (stored
    nothing) unless `force`. Raises QuestionError when the window is not open or a link is bad."""
    require_open_window(meeting, now, zone, t)
    if draft.anonymous and meeting.board.anonymous_questions == AnonymousQuestions.NO.value:
        raise QuestionError(
            t._("The {board} does not take anonymous questions; ask again without “anon”.").format(
                board=meeting.board.name_cy if t.language == "cy" else meeting.board.name
            ),
            "anonymous",
        )
    classification = _classification(
        check_links(session, draft, audience, today=now.astimezone(zone).date(), t=t), t
    )
    found = find_duplicate(session, meeting, draft.text, audience)
    if found is not None and (not force or found[0].asker_id == member.id):
        existing, score = found
        if existing.asker_id == member.id:
            raise QuestionError(
                t._("You asked this already as {ref}; change it with {cmd} edit {ref} …").format(
                    cmd=t.cmd, ref=existing.ref
                )
            )
        return Duplicate(
            view(session, existing, viewer=member, now=now, zone=zone),
            score,
            draft,
            MeetingInfo.of(meeting, now, zone),
        )
    question = _insert_numbered(
        session,
        ref_prefix(meeting, zone),
        {
            "meeting_id": meeting.id,
            "text": draft.text,
            "theme": draft.theme,
            "asker_id": member.id,
            "partner_id": member.partner_id,
            "state": QuestionState.SUBMITTED,
            "anonymous": draft.anonymous,
            "created_at": now,
            "updated_at": now,
            **classification,
        },
    )
    after = audit.snapshot(question, _AUDITED)
    if found is not None:
        after["similar_to"] = found[0].ref
    _audit(session, question, actor=member.slug, verb="question.submit", after=after)
    return question


# -- supporting, editing, withdrawing -------------------------------------------------------
@dataclass(frozen=True)
class Asker:
    """A member changing a question: who, what they may see where they are, and when."""

    member: Member
    audience: Audience
    now: datetime
    zone: ZoneInfo
    t: Translator


def support(session: Session, ref: str, by: Asker) -> Question:
    """Add the member (and so their partner) as a supporter of a question."""
    question, member, t = _changeable(session, ref, by), by.member, by.t
    if question.asker_id == member.id:
        raise QuestionError(
            t._("You asked {ref}, so your support is already counted.").format(ref=question.ref),
            "ref",
        )
    already = session.scalar(
        select(QuestionSupport.id).where(
            QuestionSupport.question_id == question.id, QuestionSupport.member_id == member.id
        )
    )
    if already is not None:
        raise QuestionError(t._("You already support {ref}.").format(ref=question.ref), "ref")
    session.add(
        QuestionSupport(
            question_id=question.id,
            member_id=member.id,
            partner_id=member.partner_id,
            created_at=by.now,
        )
    )
    supporter = {"member": member.slug, "partner": member.partner.slug}
    _audit(session, question, actor=member.slug, verb="question.support", after=supporter)
    session.flush()
    return question


def _changeable(session: Session, ref: str, by: Asker) -> Question:
    """A question that may still be supported, edited or withdrawn: open, window open. A
    rejected or withdrawn question is private to its asker, supporters and the secretariat:
    to anyone else it is refused exactly as a missing one, so its state is not given away."""
    question = get_question(session, ref, by.audience, by.t)
    return _still_open(session, question, by)


def _still_open(session: Session, question: Question, by: Asker) -> Question:
    if question.state in PRIVATE_STATES and not _sees_private(session, question, by.member):
        raise _no_such_question(question.ref, by.t)
    if question.state not in OPEN_STATES:
        raise _not_open(question, session, by.t)
    require_open_window(question.meeting, by.now, by.zone, by.t)
    return question


def _sees_private(session: Session, question: Question, member: Member) -> bool:
    if question.asker_id == member.id or Role.SECRETARIAT.value in member.roles:
        return True
    backing = select(QuestionSupport.id).where(
        QuestionSupport.question_id == question.id, QuestionSupport.member_id == member.id
    )
    return session.scalar(backing) is not None


def _own_open(session: Session, ref: str, by: Asker) -> Question:
    """The asker's own question, still open. Ownership is checked before anything else, so
    someone else's question gets the same answer whatever its state."""
    question = get_question(session, ref, by.audience, by.t)
    if question.asker_id != by.member.id:
        raise QuestionError(
            by.t._(
                "{ref} was asked by someone else; only its asker can change it. You can "
                "support it: {cmd} support {ref}"
            ).format(cmd=by.t.cmd, ref=question.ref),
            "ref",
        )
    return _still_open(session, question, by)


def edit(session: Session, ref: str, by: Asker, draft: Draft) -> Question:
    """Change the asker's own question while its window is open; an accepted question goes
    back to the secretariat to be accepted again."""
    question = _own_open(session, ref, by)
    today = by.now.astimezone(by.zone).date()
    classification = _classification(
        check_links(session, draft, by.audience, today=today, t=by.t), by.t
    )
    _update(
        session,
        question,
        QuestionState.SUBMITTED,
        actor=by.member.slug,
        verb="question.edit",
        now=by.now,
        text=draft.text,
        theme=draft.theme or question.theme,
        **classification,
    )
    return question


def withdraw(session: Session, ref: str, by: Asker) -> Question:
    """Withdraw the asker's own question while its window is open (it is kept, marked so)."""
    question = _own_open(session, ref, by)
    _update(
        session,
        question,
        QuestionState.WITHDRAWN,
        actor=by.member.slug,
        verb="question.withdraw",
        now=by.now,
    )
    return question


def _audit(
    session: Session,
    question: Question,
    *,
    actor: str,
    verb: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """One audit event about a question; given both sides, only the fields that differ."""
    if before is not None and after is not None:
        before, after = audit.changes(after, before), audit.changes(before, after)
    audit.record(
        session,
        actor=actor,
        verb=verb,
        entity="question",
        ref=question.ref,
        before=before,
        after=after,
    )


def _update(
    session: Session,
    question: Question,
    state: QuestionState,
    *,
    actor: str,
    verb: str,
    now: datetime,
    **values: Any,
) -> None:
    """Set the state and other fields, audited with what changed."""
    before = audit.snapshot(question, _AUDITED)
    question.state = state
    question.updated_at = now
    for key, value in values.items():
        setattr(question, key, value)
    _audit(
        session,
        question,
        actor=actor,
        verb=verb,
        before=before,
        after=audit.snapshot(question, _AUDITED),
    )
    session.flush()


# -- moderation (the secretariat) -------------------------------------------------------------
def accept(
    session: Session, ref: str, audience: Audience, *, actor: str, now: datetime, t: Translator
) -> Question:
    """Accept a submitted (or earlier rejected) question for the pack."""
    question = get_question(session, ref, audience, t)
    if question.state not in (QuestionState.SUBMITTED, QuestionState.REJECTED):
        if question.state is QuestionState.ACCEPTED:
            raise QuestionError(t._("{ref} is already accepted.").format(ref=question.ref), "ref")
        raise _not_open(question, session, t)
    _update(
        session,
        question,
        QuestionState.ACCEPTED,
        actor=actor,
        verb="question.accept",
        now=now,
        reason="",
    )
    return question


def reject(
    session: Session,
    ref: str,
    reason: str,
    audience: Audience,
    *,
    actor: str,
    now: datetime,
    t: Translator,
) -> Question:
    """Reject a question with a reason its asker sees."""
    reason = bounded(
        " ".join(reason.split()),
        field=text_input.REASON,
        t=t,
        empty=t._(
            "Give the reason the asker will see, e.g. {cmd} reject {ref} This is "
            "answered in the budget paper."
        ).format(cmd=t.cmd, ref=canonical_ref(ref)),
        too_long=t._("The reason is {count} characters long; the limit is {limit}."),
    )
    question = get_question(session, ref, audience, t)
    if question.state not in OPEN_STATES:
        raise _not_open(question, session, t)
    _update(
        session,
        question,
        QuestionState.REJECTED,
        actor=actor,
        verb="question.reject",
        now=now,
        reason=reason,
    )
    return question


def merge(
    session: Session,
    source_ref: str,
    target_ref: str,
    audience: Audience,
    *,
    actor: str,
    now: datetime,
    t: Translator,
) -> Merged:
    """Merge one question into another of the same meeting: its asker and supporters become
    supporters of the target, its links join the target's; nothing is deleted."""
    source = get_question(session, source_ref, audience, t)
    target = get_question(session, target_ref, audience, t)
    if source.id == target.id:
        raise QuestionError(t._("A question cannot be merged into itself."), "ref")
    if source.meeting_id != target.meeting_id:
        raise QuestionError(
            t._(
                "{source} and {target} are for different meetings; only questions for the same "
                "meeting can be merged."
            ).format(source=source.ref, target=target.ref),
            "ref",
        )
    for question in (source, target):
        if question.state not in OPEN_STATES:
            raise _not_open(question, session, t)
    backers = {source.asker_id: source.partner_id}
    for s in session.scalars(
        select(QuestionSupport).where(QuestionSupport.question_id == source.id)
    ):
        backers.setdefault(s.member_id, s.partner_id)
    existing = set(
        session.scalars(
            select(QuestionSupport.member_id).where(QuestionSupport.question_id == target.id)
        )
    )
    added = 0
    for member_id, partner_id in backers.items():
        if member_id != target.asker_id and member_id not in existing:
            session.add(
                QuestionSupport(
                    question_id=target.id,
                    member_id=member_id,
                    partner_id=partner_id,
                    created_at=now,
                )
            )
            added += 1
    links_before = list(target.linked_refs or ())
    target.linked_refs = list(dict.fromkeys([*links_before, *(source.linked_refs or ())]))
    target.updated_at = now
    _update(
        session,
        source,
        QuestionState.MERGED,
        actor=actor,
        verb="question.merge",
        now=now,
        merged_into_id=target.id,
    )
    merged_in = {"merged": source.ref, "supporters_added": added, "linked_refs": target.linked_refs}
    _audit(
        session,
        target,
        actor=actor,
        verb="question.merged-in",
        before={"linked_refs": links_before},
        after=merged_in,
    )
    return Merged(source, target, added)


# -- answers and carrying forward -------------------------------------------------------------
ANSWERABLE = (QuestionState.SUBMITTED, QuestionState.ACCEPTED, QuestionState.ANSWERED)


@dataclass(frozen=True)
class NotAnswerable:
    """Why a question cannot be answered, and what to do instead (chat and imports alike)."""

    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.message}; {self.fix}."


def not_answerable(
    ref: str,
    state: QuestionState,
    t: Translator,
    *,
    merged_into: str | None = None,
    carried_to: str | None = None,
) -> NotAnswerable | None:
    """None when a question in `state` may be answered; else why not, pointing at the question
    to answer instead (the one it was merged into, or its carried-forward copy)."""
    if state in ANSWERABLE:
        return None
    if state is QuestionState.MERGED and merged_into:
        return NotAnswerable(
            t._("{ref} was merged into {target}, so it cannot be answered").format(
                ref=ref, target=merged_into
            ),
            t._("answer {target} instead").format(target=merged_into),
        )
    if state is QuestionState.CARRIED_FORWARD and carried_to:
        return NotAnswerable(
            t._("{ref} was carried forward to the next meeting as {copy}").format(
                ref=ref, copy=carried_to
            ),
            t._("answer {copy} instead").format(copy=carried_to),
        )
    fix = (
        t._("accept it again first ({cmd} accept {ref}) if it should be answered").format(
            cmd=t.cmd, ref=ref
        )
        if state is QuestionState.REJECTED
        else t._("leave it unanswered, or answer the question that took its place")
    )
    return NotAnswerable(
        t._("{ref} is {state}, so it cannot be answered").format(
            ref=ref, state=t._(STATE_LABELS[state])
        ),
        fix,
    )


def carried_copies(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Question id -> the ref of its carried-forward copy, for those that have one."""
    wanted = set(ids)
    if not wanted:
        return {}
    statement = select(Question.carried_from_id, Question.ref).where(
        Question.carried_from_id.in_(wanted)
    )
    return {source: ref for source, ref in session.execute(statement) if source is not None}


def answer_text(answer: str, t: Translator, *, ref: str) -> str:
    """An answer's words, checked: not empty, at most ANSWER_MAX characters."""
    return bounded(
        answer,
        field=text_input.ANSWER,
        t=t,
        empty=t._(
            "The answer is empty; write it after the reference, e.g. {cmd} answer "
            "{ref} The move finishes in March."
        ).format(cmd=t.cmd, ref=canonical_ref(ref)),
        too_long=t._("The answer is {count} characters long; the limit is {limit}."),
    )


def record_answer(
    session: Session,
    ref: str,
    answer: str,
    answered_by: str | None,
    *,
    actor: str,
    now: datetime,
    t: Translator,
    audience: Audience | None = None,
) -> Question:
    """Record (or correct) the answer to a question; posting it is `question_posts.post_answer`.

    `answered_by` None keeps the name stored before. `audience` limits which questions the
    actor may answer (chat); None is the trusted path (imports, the CLI).
    """
    text = answer_text(answer, t, ref=ref)
    by = (
        None
        if answered_by is None
        else bounded(
            " ".join(answered_by.split()),
            field=text_input.ANSWERED_BY,
            t=t,
            empty=None,
            too_long=t._("“Answered by” is {count} characters long; the limit is {limit}."),
        )
    )
    if audience is not None:
        question = get_question(session, ref, audience, t)
    else:
        question = session.scalar(
            _with_relations().where(func.upper(Question.ref) == canonical_ref(ref))
        )
        if question is None:
            raise QuestionError(
                t._("There is no question {ref}.").format(ref=canonical_ref(ref)), "ref"
            )
    refused = not_answerable(
        question.ref,
        question.state,
        t,
        merged_into=_refs_by_id(session, [question.merged_into_id]).get(
            question.merged_into_id or 0
        ),
        carried_to=carried_copies(session, [question.id]).get(question.id),
    )
    if refused is not None:
        raise QuestionError(str(refused), "ref")
    _update(
        session,
        question,
        QuestionState.ANSWERED,
        actor=actor,
        verb="question.answer",
        now=now,
        answer=text,
        answered_by=question.answered_by if by is None else by,
        answered_at=now,
    )
    return question


def next_meeting_of_board(session: Session, meeting: Meeting) -> Meeting | None:
    """The board's first meeting after `meeting`."""
    return session.scalar(
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(Meeting.board_id == meeting.board_id, Meeting.starts_at > meeting.starts_at)
        .order_by(Meeting.starts_at)
        .limit(1)
    )


def carry_forward(
    session: Session, meeting: Meeting, *, now: datetime, zone: ZoneInfo, actor: str = "scheduler"
) -> list[tuple[Question, Question]]:
    """Carry the meeting's accepted, unanswered questions to the board's next meeting.

    Each gets a new question there (same words, theme, marking, links and supporters, the
    asker counted as asker again) pointing back with `carried_from_id`; the old one is marked
    carried-forward. Does nothing until the board has a next meeting (a later run will).
    """
    pending = list(
        session.scalars(
            _with_relations()
            .where(Question.meeting_id == meeting.id, Question.state == QuestionState.ACCEPTED)
            .order_by(Question.created_at, Question.id)
        )
    )
    target = next_meeting_of_board(session, meeting) if pending else None
    if target is None:
        return []
    supports: dict[int, list[QuestionSupport]] = defaultdict(list)
    for s in session.scalars(
        select(QuestionSupport).where(QuestionSupport.question_id.in_([q.id for q in pending]))
    ):
        supports[s.question_id].append(s)
    carried: list[tuple[Question, Question]] = []
    for old in pending:
        new = _insert_numbered(
            session,
            ref_prefix(target, zone),
            {
                "meeting_id": target.id,
                "text": old.text,
                "theme": old.theme,
                "asker_id": old.asker_id,
                "partner_id": old.partner_id,
                "state": QuestionState.ACCEPTED,
                "carried_from_id": old.id,
                "linked_refs": list(old.linked_refs or ()),
                "marking": old.marking,
                "exempt_paragraph": old.exempt_paragraph,
                "restricted_to": list(old.restricted_to or ()),
                # Its place in the next pack keeps the time it was first asked.
                "created_at": old.created_at,
                "updated_at": now,
            },
        )
        for s in supports[old.id]:
            session.add(
                QuestionSupport(
                    question_id=new.id,
                    member_id=s.member_id,
                    partner_id=s.partner_id,
                    created_at=s.created_at,
                )
            )
        carried_from = {"carried_from": old.ref, "meeting": meeting_spec(target, zone)}
        _audit(session, new, actor=actor, verb="question.carry-create", after=carried_from)
        _update(
            session,
            old,
            QuestionState.CARRIED_FORWARD,
            actor=actor,
            verb="question.carry-forward",
            now=now,
        )
        carried.append((old, new))
    return carried


def meetings_to_carry(session: Session, *, now: datetime) -> list[Meeting]:
    """Meetings that are over and still have accepted, unanswered questions."""
    statement = (
        select(Meeting)
        .options(joinedload(Meeting.board))
        .where(
            Meeting.id.in_(
                select(Question.meeting_id).where(Question.state == QuestionState.ACCEPTED)
            ),
            Meeting.starts_at <= now,
        )
        .order_by(Meeting.starts_at)
    )
    return [m for m in session.scalars(statement) if meeting_end(m) <= now]
