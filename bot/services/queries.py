"""Read paths every platform and the digests share: actions, decisions and meetings.

Each list query works in three steps so its counts are right and nothing leaks:
1. fetch the *candidates* (id and the classification columns only) with the SQL filters and,
   when there is text, joined to the full-text match;
2. `visibility.partition` them for the audience: visible ones, and a content-free count of the
   withheld by reason;
3. paginate the visible ones, then load only that page's rows with their relations in one
   statement and turn them into frozen, display-ready views (templates never lazy-load).
The number of statements per call is constant, whatever the number of rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.selectable import Subquery

from bot.domain import ActionStatus, Marking, Rag
from bot.models import Action, Board, Decision, Meeting, Partner
from bot.services import search
from bot.text_input import is_web_link
from bot.visibility import Audience, can_see, partition

DEFAULT_PER_PAGE = 10
CLOSED_STATUSES = tuple(s for s in ActionStatus if s.is_closed)


# -- views ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartnerView:
    """A partner's slug and names."""

    slug: str
    name: str
    name_cy: str

    def label(self, language: str) -> str:
        """The name in `language` (Welsh when there is one)."""
        return self.name_cy if language == "cy" and self.name_cy else self.name

    @classmethod
    def of(cls, partner: Partner) -> PartnerView:
        """The view of a loaded partner row."""
        return cls(partner.slug, partner.name, partner.name_cy)


@dataclass(frozen=True)
class BoardView:
    """A board's slug, ref prefix and names."""

    slug: str
    prefix: str
    name: str
    name_cy: str

    def label(self, language: str) -> str:
        """The name in `language` (Welsh when there is one)."""
        return self.name_cy if language == "cy" and self.name_cy else self.name

    @classmethod
    def of(cls, board: Board) -> BoardView:
        """The view of a loaded board row."""
        return cls(board.slug, board.prefix, board.name, board.name_cy)


@dataclass(frozen=True)
class ActionView:
    """A tactical-plan action as shown; classification fields kept so it can be re-checked."""

    ref: str
    title: str
    title_cy: str
    owner_partner: PartnerView
    owner: str
    due_date: date | None
    status: ActionStatus
    rag: Rag | None
    theme: str
    last_update: str
    updated_at: datetime
    overdue: bool
    days_late: int
    """Days past the due date when overdue, else 0."""
    days_left: int | None
    """Days until the due date for an open action due today or later, else None."""
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: tuple[str, ...]
    decision_refs: tuple[str, ...] = ()
    """The decisions this action comes from (the trail)."""

    @classmethod
    def of(cls, action: Action, today: date) -> ActionView:
        """The view of a loaded action row, with lateness counted from `today`."""
        overdue = action.is_overdue(today)
        due = action.due_date
        days_late = (today - due).days if overdue and due else 0
        days_left = (
            (due - today).days if due and due >= today and not action.status.is_closed else None
        )
        return cls(
            ref=action.ref,
            title=action.title,
            title_cy=action.title_cy,
            owner_partner=PartnerView.of(action.owner_partner),
            owner=action.owner,
            due_date=due,
            status=ActionStatus(action.status),
            rag=Rag(action.rag) if action.rag else None,
            theme=action.theme,
            last_update=action.last_update,
            updated_at=action.updated_at,
            overdue=overdue,
            days_late=days_late,
            days_left=days_left,
            marking=Marking(action.marking),
            exempt_paragraph=action.exempt_paragraph,
            restricted_to=tuple(action.restricted_to or ()),
            decision_refs=tuple(action.decision_refs or ()),
        )


@dataclass(frozen=True)
class DecisionView:
    """A decision as shown; classification fields kept so it can be re-checked."""

    ref: str
    board: BoardView
    decided_on: date
    title: str
    summary: str
    title_cy: str
    summary_cy: str
    partners: tuple[PartnerView, ...]
    link: str
    meeting_starts_at: datetime | None
    recorded_at: datetime
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: tuple[str, ...]

    @classmethod
    def of(cls, decision: Decision, partners: Mapping[str, PartnerView]) -> DecisionView:
        """The view of a loaded decision row; `partners` names the partners concerned."""
        return cls(
            ref=decision.ref,
            board=BoardView.of(decision.board),
            decided_on=decision.decided_on,
            title=decision.title,
            summary=decision.summary,
            title_cy=decision.title_cy,
            summary_cy=decision.summary_cy,
            partners=tuple(partners.get(s, PartnerView(s, s, s)) for s in decision.partners or ()),
            # A link stored before links were checked is left out rather than shown.
            link=decision.link if is_web_link(decision.link) else "",
            meeting_starts_at=decision.meeting.starts_at if decision.meeting else None,
            recorded_at=decision.recorded_at,
            marking=Marking(decision.marking),
            exempt_paragraph=decision.exempt_paragraph,
            restricted_to=tuple(decision.restricted_to or ()),
        )


WindowState = Literal["none", "not-yet", "open", "closed"]


@dataclass(frozen=True)
class MeetingView:
    """A board meeting with the state of its question window at `now`."""

    board: BoardView
    starts_at: datetime
    ends_at: datetime | None
    location: str
    location_cy: str
    link: str
    questions_open: datetime | None
    questions_close: datetime | None
    window: WindowState
    id: int | None = None
    """The meeting's row id, for its permalink in the register."""

    @classmethod
    def of(cls, meeting: Meeting, now: datetime) -> MeetingView:
        """The view of a loaded meeting row."""
        opens, closes = meeting.questions_open, meeting.questions_close
        window: WindowState = "none"
        if closes is not None:
            if now >= closes:
                window = "closed"
            elif opens is not None and now < opens:
                window = "not-yet"
            else:
                window = "open"
        return cls(
            board=BoardView.of(meeting.board),
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            location=meeting.location,
            location_cy=meeting.location_cy,
            link=meeting.link if is_web_link(meeting.link) else "",
            questions_open=opens,
            questions_close=closes,
            window=window,
            id=meeting.id,
        )


V = TypeVar("V")


@dataclass(frozen=True)
class Page(Generic[V]):
    """One page of visible results, with content-free counts of what was withheld."""

    items: tuple[V, ...]
    total_visible: int
    withheld: Mapping[str, int]
    """Withheld candidates by reason ('exempt', 'restricted', 'sensitive'), across all pages."""
    page: int
    pages: int
    per_page: int
    any_word: bool = False
    """True when no row had every word, so rows matching any of them are shown."""

    @property
    def withheld_total(self) -> int:
        """How many matching items this audience may not see."""
        return sum(self.withheld.values())

    @property
    def candidates(self) -> int:
        """Every item that matched the filters, visible or not."""
        return self.total_visible + self.withheld_total

    @property
    def first(self) -> int:
        """1-based position of the first item on this page (0 when empty)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        """1-based position of the last item on this page (0 when empty)."""
        return self.first + len(self.items) - 1 if self.items else 0

    @property
    def has_next(self) -> bool:
        """Whether a later page exists."""
        return self.page < self.pages


@dataclass(frozen=True)
class Found(Generic[V]):
    """The item exists and the audience may see it."""

    item: V


@dataclass(frozen=True)
class Withheld:
    """The item exists but the audience is not cleared: only its ref may be said."""

    ref: str


@dataclass(frozen=True)
class NotFound:
    """No item has this ref."""

    ref: str


Lookup = Found[V] | Withheld | NotFound


# -- shared steps -----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Candidate:
    """What visibility needs to decide about a row, without loading the row."""

    id: int
    marking: Marking
    exempt_paragraph: int | None
    restricted_to: Sequence[str] | None = field(default=None)


CandidateSelect = Select[int, Marking, int | None, list[str]]
"""Ids and classification columns: what step 1 fetches."""


def _candidates(session: Session, statement: CandidateSelect) -> list[_Candidate]:
    return [_Candidate(*row) for row in session.execute(statement)]


def _page_of(visible: list[_Candidate], page: int, per_page: int) -> tuple[list[int], int, int]:
    per_page = max(1, per_page)
    pages = max(1, math.ceil(len(visible) / per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return [c.id for c in visible[start : start + per_page]], page, pages


def _as_set(value: Any | Collection[Any] | None, kind: type[Any]) -> set[Any]:
    if value is None:
        return set()
    if isinstance(value, (kind, str)):
        return {kind(value)}
    return {kind(v) for v in value}


@dataclass(frozen=True)
class _Matched:
    """Step 1's result: the candidates, whether rows with any word stand in for rows with
    every word, and whether search words were given at all."""

    rows: list[_Candidate]
    any_word: bool = False
    searched: bool = False


def _matching(
    session: Session,
    kind: search.Searchable,
    base: CandidateSelect,
    order: Sequence[ColumnElement[Any]],
    text: search.SearchText | None,
    audience: Audience,
) -> _Matched:
    """Step 1: candidates in display order; with `text`, joined to the full-text match (rows
    with every word, else rows with any word) and best first."""
    if text is None:
        return _Matched(_candidates(session, base.order_by(*order)))
    model_id = Action.id if kind == "actions" else Decision.id

    def run(match: Subquery) -> list[_Candidate]:
        joined = base.join(match, match.c.id == model_id)
        return _candidates(session, joined.order_by(match.c.score.desc(), *order))

    strict = search.match(session, kind, text)
    if strict is None:
        return _Matched([], searched=True)
    rows = run(strict)
    # Whether to fall back to any word is decided on what the audience may see: rows it may
    # not see must not change the answer, or the answer would tell they exist.
    if partition(rows, audience).visible or len(search.search_groups(text)) < 2:
        return _Matched(rows, searched=True)
    loose = search.match(session, kind, text, any_word=True)
    assert loose is not None
    rows = run(loose)
    return _Matched(rows, any_word=bool(partition(rows, audience).visible), searched=True)


Row = TypeVar("Row", Action, Decision)


def _visible_page(
    matched: _Matched,
    audience: Audience,
    page: int,
    per_page: int,
    load: Callable[[list[int]], Iterable[Row]],
    view: Callable[[Row], V],
) -> Page[V]:
    """Steps 2 and 3: partition the candidates, then load and view only the page shown.

    No oracle: with search words the withheld count is left out. A count of withheld items
    matching the words would let any member test words against the titles of exempt or
    police-only items (`find croesyceiliog`: "1 more was left out"). The count of the same
    query without the words was the other choice; it is not given because it answers a
    different question from the one asked ("12 left out" beside two results about the data
    centre would mislead) and costs another query. Filters alone (partner, board, dates,
    status) still show their count, as digests do: they reveal no words."""
    rows, any_word = matched.rows, matched.any_word
    split = partition(rows, audience)
    ids, page, pages = _page_of(split.visible, page, per_page)
    loaded = {row.id: row for row in load(ids)} if ids else {}
    # Checked again on the full rows: the classification may have changed between statements.
    items = tuple(view(loaded[i]) for i in ids if i in loaded and can_see(loaded[i], audience))
    withheld = {} if matched.searched else split.withheld
    return Page(items, len(split.visible), withheld, page, pages, per_page, any_word)


def partner_views(session: Session) -> dict[str, PartnerView]:
    """Every partner's view by slug (one statement)."""
    return {p.slug: PartnerView.of(p) for p in session.scalars(select(Partner))}


def board_views(session: Session) -> dict[str, BoardView]:
    """Every board's view by slug (one statement)."""
    return {b.slug: BoardView.of(b) for b in session.scalars(select(Board).order_by(Board.id))}


# -- actions ----------------------------------------------------------------------------------
def find_actions(
    session: Session,
    audience: Audience,
    *,
    today: date,
    partner: str | Collection[str] | None = None,
    status: Collection[ActionStatus] | None = None,
    overdue: bool = False,
    due_within_days: int | None = None,
    rag: Rag | Collection[Rag] | None = None,
    due_from: date | None = None,
    due_until: date | None = None,
    text: search.SearchText | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[ActionView]:
    """Actions matching every filter given, that `audience` may see, one page at a time.

    `partner` is an owner partner slug (or several); `overdue` means due before `today` and
    not done or cancelled; `due_within_days=N` means open and due from today to today+N.
    When both are given either one qualifies. Without `text`, the soonest due come first;
    with it, the best matches.
    """
    conditions: list[ColumnElement[bool]] = []
    partners = _as_set(partner, str)
    if partners:
        conditions.append(
            Action.owner_partner_id.in_(select(Partner.id).where(Partner.slug.in_(partners)))
        )
    statuses = _as_set(status, ActionStatus)
    if statuses:
        conditions.append(Action.status.in_(statuses))
    rags = _as_set(rag, Rag)
    if rags:
        conditions.append(Action.rag.in_(rags))
    timing: list[ColumnElement[bool]] = []
    if overdue:
        timing.append(and_(Action.due_date < today, Action.status.not_in(CLOSED_STATUSES)))
    if due_within_days is not None:
        horizon = today + timedelta(days=max(0, due_within_days))
        timing.append(
            and_(
                Action.due_date >= today,
                Action.due_date <= horizon,
                Action.status.not_in(CLOSED_STATUSES),
            )
        )
    if timing:
        conditions.append(or_(*timing))
    if due_from is not None:
        conditions.append(Action.due_date >= due_from)
    if due_until is not None:
        conditions.append(Action.due_date <= due_until)

    base = select(Action.id, Action.marking, Action.exempt_paragraph, Action.restricted_to).where(
        *conditions
    )
    by_due = (Action.due_date.is_(None), Action.due_date.asc(), Action.ref.asc())
    matched = _matching(session, "actions", base, by_due, text, audience)

    def load(ids: list[int]) -> Iterable[Action]:
        return session.scalars(
            select(Action).options(joinedload(Action.owner_partner)).where(Action.id.in_(ids))
        )

    return _visible_page(matched, audience, page, per_page, load, lambda a: ActionView.of(a, today))


def _ref_variants(ref: str) -> list[str]:
    """'tp-14' -> ['TP-14', 'TP-014', ...]: refs are matched case-blind and zero-pad-blind."""
    ref = ref.strip().upper()
    match = re.fullmatch(r"(.*-)(\d{1,6})", ref)
    if not match:
        return [ref]
    head, number = match.group(1), int(match.group(2))
    return list(dict.fromkeys([ref, *(f"{head}{number:0{width}d}" for width in range(1, 6))]))


def get_action(
    session: Session, audience: Audience, ref: str, *, today: date
) -> Lookup[ActionView]:
    """One action by ref: found, withheld from this audience (ref only), or not found."""
    action = session.scalars(
        select(Action)
        .options(joinedload(Action.owner_partner))
        .where(func.upper(Action.ref).in_(_ref_variants(ref)))
        .order_by(Action.ref)
    ).first()
    if action is None:
        return NotFound(ref.strip().upper())
    if not can_see(action, audience):
        return Withheld(action.ref)
    return Found(ActionView.of(action, today))


def actions_by_refs(
    session: Session, audience: Audience, refs: Sequence[str], *, today: date
) -> Page[ActionView]:
    """The actions named by `refs` (case- and zero-pad-blind) that `audience` may see, in
    ref order, with a content-free count of the rest."""
    wanted = [variant for ref in refs for variant in _ref_variants(ref)]
    base = select(Action.id, Action.marking, Action.exempt_paragraph, Action.restricted_to)
    rows = _candidates(session, base.where(func.upper(Action.ref).in_(wanted)).order_by(Action.ref))

    def load(ids: list[int]) -> Iterable[Action]:
        return session.scalars(
            select(Action).options(joinedload(Action.owner_partner)).where(Action.id.in_(ids))
        )

    per_page = max(1, len(rows))
    return _visible_page(
        _Matched(rows), audience, 1, per_page, load, lambda a: ActionView.of(a, today)
    )


# -- decisions --------------------------------------------------------------------------------
def _concerns(session: Session, partners: set[str]) -> ColumnElement[bool]:
    """Decisions whose `partners` JSON list names any of `partners`."""
    if session.get_bind().dialect.name == "postgresql":
        column = Decision.partners.cast(JSONB)
        return or_(*(column.op("@>")(func.jsonb_build_array(p)) for p in sorted(partners)))
    each = func.json_each(Decision.partners).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value.in_(partners)))


def find_decisions(
    session: Session,
    audience: Audience,
    *,
    board: str | None = None,
    partner: str | Collection[str] | None = None,
    since: date | None = None,
    until: date | None = None,
    text: search.SearchText | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> Page[DecisionView]:
    """Decisions matching every filter given, that `audience` may see, newest first (best
    match first with `text`). `partner` filters on the partners a decision concerns;
    `since`/`until` are inclusive bounds on the date decided."""
    conditions: list[ColumnElement[bool]] = []
    if board:
        conditions.append(Decision.board_id.in_(select(Board.id).where(Board.slug == board)))
    partners = _as_set(partner, str)
    if partners:
        conditions.append(_concerns(session, partners))
    if since is not None:
        conditions.append(Decision.decided_on >= since)
    if until is not None:
        conditions.append(Decision.decided_on <= until)
    base = select(
        Decision.id, Decision.marking, Decision.exempt_paragraph, Decision.restricted_to
    ).where(*conditions)
    newest = (Decision.decided_on.desc(), Decision.ref.desc())
    matched = _matching(session, "decisions", base, newest, text, audience)
    names: dict[str, PartnerView] = {}

    def load(ids: list[int]) -> Iterable[Decision]:
        names.update(partner_views(session))
        return session.scalars(_decisions_with_relations().where(Decision.id.in_(ids)))

    return _visible_page(
        matched, audience, page, per_page, load, lambda d: DecisionView.of(d, names)
    )


def decisions_by_refs(
    session: Session, audience: Audience, refs: Sequence[str]
) -> Page[DecisionView]:
    """The decisions named by `refs` that `audience` may see, with a count of the rest."""
    wanted = [variant for ref in refs for variant in _ref_variants(ref)]
    base = select(
        Decision.id, Decision.marking, Decision.exempt_paragraph, Decision.restricted_to
    ).where(func.upper(Decision.ref).in_(wanted))
    rows = _candidates(session, base.order_by(Decision.ref))
    names: dict[str, PartnerView] = {}

    def load(ids: list[int]) -> Iterable[Decision]:
        names.update(partner_views(session))
        return session.scalars(_decisions_with_relations().where(Decision.id.in_(ids)))

    per_page = max(1, len(rows))
    return _visible_page(
        _Matched(rows), audience, 1, per_page, load, lambda d: DecisionView.of(d, names)
    )


def _decisions_with_relations() -> Select[Decision]:
    return select(Decision).options(joinedload(Decision.board), joinedload(Decision.meeting))


def get_decision(session: Session, audience: Audience, ref: str) -> Lookup[DecisionView]:
    """One decision by ref: found, withheld from this audience (ref only), or not found."""
    decision = session.scalars(
        _decisions_with_relations()
        .where(func.upper(Decision.ref).in_(_ref_variants(ref)))
        .order_by(Decision.ref)
    ).first()
    if decision is None:
        return NotFound(ref.strip().upper())
    if not can_see(decision, audience):
        return Withheld(decision.ref)
    return Found(DecisionView.of(decision, partner_views(session)))


# -- meetings ---------------------------------------------------------------------------------
def _meetings(session: Session, statement: Select[Meeting], now: datetime) -> list[MeetingView]:
    return [
        MeetingView.of(m, now)
        for m in session.scalars(statement.options(joinedload(Meeting.board)))
    ]


def next_meetings(
    session: Session, *, now: datetime, board: str | None = None, limit: int = 5
) -> list[MeetingView]:
    """Meetings not yet over at `now`, soonest first (meetings carry no marking)."""
    statement = select(Meeting).where(
        or_(Meeting.starts_at >= now, and_(Meeting.ends_at.is_not(None), Meeting.ends_at > now))
    )
    if board:
        statement = statement.where(
            Meeting.board_id.in_(select(Board.id).where(Board.slug == board))
        )
    return _meetings(session, statement.order_by(Meeting.starts_at).limit(limit), now)


def last_meeting_day(
    session: Session, *, now: datetime, zone: ZoneInfo, board: str | None = None
) -> date | None:
    """The local date of the latest meeting (of `board`) that started before `now`."""
    statement = select(Meeting.starts_at).where(Meeting.starts_at < now)
    if board:
        statement = statement.where(
            Meeting.board_id.in_(select(Board.id).where(Board.slug == board))
        )
    started = session.scalar(statement.order_by(Meeting.starts_at.desc()).limit(1))
    return started.astimezone(zone).date() if started is not None else None


def open_question_windows(session: Session, *, now: datetime) -> list[MeetingView]:
    """Meetings whose question window is open at `now`, closing soonest first."""
    statement = select(Meeting).where(
        Meeting.questions_close.is_not(None),
        Meeting.questions_close > now,
        or_(Meeting.questions_open.is_(None), Meeting.questions_open <= now),
    )
    return _meetings(session, statement.order_by(Meeting.questions_close, Meeting.starts_at), now)
