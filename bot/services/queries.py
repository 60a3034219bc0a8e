"""Read paths every platform and the digests share: actions, decisions and meetings.

Each list query works in two statements, whatever the size of the register (decisions add
one for the partners' names):
1. one count of the rows matching the filters (and, with text, the full-text match), grouped
   by the visibility rule's SQL form into visible and a content-free count of the withheld by
   reason; lists members page through stop counting at `COUNT_UP_TO` matches (then one more
   statement counts the visible up to the cap) and say "more than";
2. one page of the visible rows, filtered, ranked and paged in SQL (LIMIT/OFFSET) and loaded
   with their relations, turned into frozen, display-ready views (templates never lazy-load).
Only the rows shown are read; refs are stored upper case, so a ref is one index look-up.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, Generic, Literal, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import Subquery

from bot.db import DriverSelect
from bot.domain import ActionStatus, Marking, Rag
from bot.models import Action, Board, Decision, Meeting, Partner
from bot.register_version import versioned
from bot.services import search
from bot.text_input import is_web_link
from bot.visibility import Audience, can_see, visible_to, withheld_reason_of

DEFAULT_PER_PAGE = 10
COUNT_UP_TO = 1000
"""Lists and searches members page through count this many matches exactly, then say "more
than": the count then costs the same whatever the size of the register."""
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
        starts_at = decision.meeting.starts_at if decision.meeting else None
        return cls.of_columns(decision, BoardView.of(decision.board), starts_at, partners)

    @classmethod
    def of_columns(
        cls,
        decision: Any,
        board: BoardView,
        meeting_starts_at: datetime | None,
        partners: Mapping[str, PartnerView],
    ) -> DecisionView:
        """The view of a decision's columns (a loaded row, or a Core row of the same names)."""
        return cls(
            ref=decision.ref,
            board=board,
            decided_on=decision.decided_on,
            title=decision.title,
            summary=decision.summary,
            title_cy=decision.title_cy,
            summary_cy=decision.summary_cy,
            partners=tuple(partners.get(s, PartnerView(s, s, s)) for s in decision.partners or ()),
            # A link stored before links were checked is left out rather than shown.
            link=decision.link if is_web_link(decision.link) else "",
            meeting_starts_at=meeting_starts_at,
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
    more_than: bool = False
    """`total_visible` is where counting stopped: more than that many are visible."""
    withheld_at_least: bool = False
    """The withheld counts are of the rows counted before stopping: at least that many."""

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
Row = TypeVar("Row", Action, Decision)


def _as_set(value: Any | Collection[Any] | None, kind: type[Any]) -> set[Any]:
    if value is None:
        return set()
    if isinstance(value, (kind, str)):
        return {kind(value)}
    return {kind(v) for v in value}


class _JsonText(FunctionElement[str]):
    """A JSON column as text, so rows can be grouped by it (PostgreSQL's json has no `=`)."""

    type = Text()
    inherit_cache = True
    name = "json_text"


@compiles(_JsonText, "sqlite")
def _json_text_sqlite(element: _JsonText, compiler: SQLCompiler, **kw: Any) -> str:
    # Stored as text already: the bare column keeps the covering index usable for grouping.
    return compiler.process(element.clauses, **kw)


@compiles(_JsonText, "postgresql")
def _json_text_postgresql(element: _JsonText, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS TEXT)"


def _candidates(
    model: type[Row], conditions: Sequence[ColumnElement[bool]], match: Subquery | None
) -> Select[Any]:
    statement = cast(
        "Select[Any]", select(model.marking, model.exempt_paragraph).select_from(model)
    )
    if match is not None:
        statement = statement.join(match, match.c.id == model.id)
    return statement.where(*conditions)


def _counts(
    session: Session,
    model: type[Row],
    conditions: Sequence[ColumnElement[bool]],
    match: Subquery | None,
    audience: Audience,
    up_to: int | None = None,
) -> dict[str | None, int]:
    """Matching rows by withheld reason (None: visible), counted in SQL, no row read.

    Rows are first counted per classification (a few distinct ones, found from a covering
    index), and the rule is applied to those groups rather than to every row. With `up_to`,
    only the first `up_to + 1` matching rows are counted: the counts are exact when they add
    up to no more than `up_to`, and lower bounds otherwise (the work stays that size).
    """
    restricted = _JsonText(model.restricted_to)
    rows = _candidates(model, conditions, match).add_columns(restricted.label("restricted_to"))
    grouped: Subquery
    if up_to is None:
        grouped = (
            rows.add_columns(func.count().label("rows"))
            .group_by(model.marking, model.exempt_paragraph, restricted)
            .subquery("classes")
        )
    else:
        first = rows.limit(up_to + 1).subquery("candidates")
        grouped = (
            select(first, func.count().label("rows"))
            .group_by(first.c.marking, first.c.exempt_paragraph, first.c.restricted_to)
            .subquery("classes")
        )
    reason = withheld_reason_of(grouped.c, audience)
    statement = select(reason, func.sum(grouped.c.rows)).group_by(reason)
    return {key: int(count) for key, count in session.execute(statement)}


def _visible_up_to(
    session: Session,
    model: type[Row],
    conditions: Sequence[ColumnElement[bool]],
    match: Subquery | None,
    audience: Audience,
    up_to: int,
) -> int:
    """How many matching rows the audience may see, counting no further than `up_to + 1`."""
    first = (
        _candidates(model, conditions, match)
        .where(visible_to(model, audience))
        .limit(up_to + 1)
        .subquery("visible")
    )
    return int(session.scalar(select(func.count()).select_from(first)) or 0)


@dataclass(frozen=True)
class _Tally:
    visible: int
    withheld: dict[str, int]
    more_than: bool
    """`visible` is a lower bound: more than that many rows are visible."""
    withheld_at_least: bool
    """The withheld counts are lower bounds (only the first rows were counted)."""


def _tally(
    session: Session,
    model: type[Row],
    conditions: Sequence[ColumnElement[bool]],
    match: Subquery | None,
    audience: Audience,
    up_to: int | None,
) -> _Tally:
    """Visible and withheld counts: exact, or with `up_to`, exact up to that many matches.

    Past `up_to` matching rows the visible count says "more than `up_to`" (counted in a second
    statement that stops there) and the withheld counts those among the first rows, so both
    cost the size of the cap, not of the register."""
    counts = _counts(session, model, conditions, match, audience, up_to)
    visible = counts.pop(None, 0)
    withheld = {r: n for r, n in counts.items() if r is not None}
    if up_to is None or visible + sum(withheld.values()) <= up_to:
        return _Tally(visible, withheld, False, False)
    visible = _visible_up_to(session, model, conditions, match, audience, up_to)
    if visible > up_to:
        return _Tally(up_to, withheld, True, True)
    return _Tally(visible, withheld, False, True)


def _visible_page(
    session: Session,
    kind: search.Searchable,
    model: type[Row],
    audience: Audience,
    conditions: Sequence[ColumnElement[bool]],
    order: Sequence[ColumnElement[Any]],
    text: search.SearchText | None,
    page: int,
    per_page: int,
    view: Callable[[Row], V],
    *relations: Any,
    count_up_to: int | None = None,
) -> Page[V]:
    """Filter, count, rank and page in SQL: one grouped count, then one page of full rows.

    With `text`, rows are joined to the full-text match (rows with every word, else rows
    with any word) and ranked best first. The count tells the page number's bounds, the
    withheld reasons and whether to fall back to any word; only the page's rows are read.
    With `count_up_to` the count stops past the cap and past the next page (`_tally`).

    No oracle: with search words the withheld count is left out. A count of withheld items
    matching the words would let any member test words against the titles of exempt or
    police-only items (`find croesyceiliog`: "1 more was left out"). The count of the same
    query without the words was the other choice; it is not given because it answers a
    different question from the one asked ("12 left out" beside two results about the data
    centre would mislead) and costs another query. Filters alone (partner, board, dates,
    status) still show their count, as digests do: they reveal no words. For the same reason
    the fall-back to any word is decided on what the audience may see.
    """
    any_word = False
    match: Subquery | None = None
    per_page = max(1, per_page)
    # Count far enough to know the next page exists: the count stops past it or at the cap.
    up_to = None if count_up_to is None else max(count_up_to, (max(1, page) + 1) * per_page)
    if text is not None:
        match = search.match(session, kind, text, scored=False)
        if match is None:
            return Page((), 0, {}, 1, 1, per_page)
    tally = _tally(session, model, conditions, match, audience, up_to)
    if text is not None and not tally.visible and len(search.search_groups(text)) >= 2:
        match = search.match(session, kind, text, any_word=True, scored=False)
        tally = _tally(session, model, conditions, match, audience, up_to)
        any_word = bool(tally.visible)
    visible = tally.visible
    withheld = {} if text is not None else tally.withheld
    # "More than N" has a next page after N: room for one more row.
    pages = max(1, math.ceil((visible + tally.more_than) / per_page))
    page = min(max(1, page), pages)
    more_than, at_least = tally.more_than, tally.withheld_at_least and bool(withheld)
    if not visible:
        return Page((), 0, withheld, page, pages, per_page, any_word, more_than, at_least)
    statement = select(model).options(*(joinedload(r) for r in relations))
    ranking: list[ColumnElement[Any]] = []
    if text is not None:
        scored = search.match(session, kind, text, any_word=any_word)
        assert scored is not None
        statement = statement.join(scored, scored.c.id == model.id)
        ranking.append(scored.c.score.desc())
    statement = (
        statement.where(*conditions, visible_to(model, audience))
        .order_by(*ranking, *order)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    # Checked again in Python on the rows shown: the same rule's other form, as at send time.
    items = tuple(view(row) for row in session.scalars(statement) if can_see(row, audience))
    return Page(items, visible, withheld, page, pages, per_page, any_word, more_than, at_least)


def partner_views(session: Session) -> dict[str, PartnerView]:
    """Every partner's view by slug (one statement, none while the register is unchanged)."""
    views = versioned(
        session,
        "partner views",
        lambda: {p.slug: PartnerView.of(p) for p in session.scalars(select(Partner))},
    )
    return dict(views)


def board_views(session: Session) -> dict[str, BoardView]:
    """Every board's view by slug (one statement, none while the register is unchanged)."""
    views = versioned(
        session,
        "board views",
        lambda: {
            b.slug: BoardView.of(b) for b in session.scalars(select(Board).order_by(Board.id))
        },
    )
    return dict(views)


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
    count_up_to: int | None = None,
) -> Page[ActionView]:
    """Actions matching every filter given, that `audience` may see, one page at a time.

    `partner` is an owner partner slug (or several); `overdue` means due before `today` and
    not done or cancelled; `due_within_days=N` means open and due from today to today+N.
    When both are given either one qualifies. Without `text`, the soonest due come first;
    with it, the best matches. With `count_up_to` (`COUNT_UP_TO` for lists members page
    through), the counts stop there and the page says "more than".
    """
    conditions: list[ColumnElement[bool]] = []
    partners = _as_set(partner, str)
    if partners:
        ids = select(Partner.id).where(Partner.slug.in_(partners))
        # One partner (the usual case) as `=`, so the planner knows one owner and uses its index.
        conditions.append(
            Action.owner_partner_id == ids.scalar_subquery()
            if len(partners) == 1
            else Action.owner_partner_id.in_(ids)
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

    by_due = (Action.due_date.is_(None), Action.due_date.asc(), Action.ref.asc())
    return _visible_page(
        session,
        "actions",
        Action,
        audience,
        conditions,
        by_due,
        text,
        page,
        per_page,
        lambda a: ActionView.of(a, today),
        Action.owner_partner,
        count_up_to=count_up_to,
    )


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
        .where(Action.ref.in_(_ref_variants(ref)))
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
    return _visible_page(
        session,
        "actions",
        Action,
        audience,
        [Action.ref.in_(wanted)],
        (Action.ref.asc(),),
        None,
        1,
        max(1, len(wanted)),
        lambda a: ActionView.of(a, today),
        Action.owner_partner,
    )


# -- decisions --------------------------------------------------------------------------------
def _concerns(session: Session, partners: set[str]) -> ColumnElement[bool]:
    """Decisions whose `partners` JSON list names any of `partners`."""
    if session.get_bind().dialect.name == "postgresql":
        column = Decision.partners.cast(JSONB)
        return or_(*(column.op("@>")(func.jsonb_build_array(p)) for p in sorted(partners)))
    each = func.json_each(Decision.partners).table_valued("value")
    # A cheap text test first (slugs are stored as plain JSON strings) spares parsing the JSON
    # of rows that cannot match; the exact test follows.
    named = or_(*(func.instr(Decision.partners, f'"{p}"') > 0 for p in sorted(partners)))
    return and_(named, exists(select(1).select_from(each).where(each.c.value.in_(partners))))


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
    count_up_to: int | None = None,
) -> Page[DecisionView]:
    """Decisions matching every filter given, that `audience` may see, newest first (best
    match first with `text`). `partner` filters on the partners a decision concerns;
    `since`/`until` are inclusive bounds on the date decided; `count_up_to` as for actions."""
    conditions: list[ColumnElement[bool]] = []
    if board:
        # `=` a scalar subquery, not `IN`: the planner then knows one board and uses its index.
        conditions.append(
            Decision.board_id == select(Board.id).where(Board.slug == board).scalar_subquery()
        )
    partners = _as_set(partner, str)
    if partners:
        conditions.append(_concerns(session, partners))
    if since is not None:
        conditions.append(Decision.decided_on >= since)
    if until is not None:
        conditions.append(Decision.decided_on <= until)
    newest = (Decision.decided_on.desc(), Decision.ref.desc())
    names = partner_views(session)
    return _visible_page(
        session,
        "decisions",
        Decision,
        audience,
        conditions,
        newest,
        text,
        page,
        per_page,
        lambda d: DecisionView.of(d, names),
        Decision.board,
        Decision.meeting,
        count_up_to=count_up_to,
    )


def decisions_by_refs(
    session: Session, audience: Audience, refs: Sequence[str]
) -> Page[DecisionView]:
    """The decisions named by `refs` that `audience` may see, with a count of the rest."""
    wanted = [variant for ref in refs for variant in _ref_variants(ref)]
    names = partner_views(session)
    return _visible_page(
        session,
        "decisions",
        Decision,
        audience,
        [Decision.ref.in_(wanted)],
        (Decision.ref.asc(),),
        None,
        1,
        max(1, len(wanted)),
        lambda d: DecisionView.of(d, names),
        Decision.board,
        Decision.meeting,
    )


_REF_VARIANTS = 6
"""How many spellings of a ref `_ref_variants` gives at most (the look-up has that many binds)."""


def _decision_by_ref(dialect: str) -> Select[Any]:
    """One decision by any of its ref variants, with its board, meeting time and the names of
    the partners it concerns, as columns of one row.

    A Core statement of plain columns on the tables skips the ORM's per-call work (entity
    loading, identity map, eager-load joins); a fixed number of ref binds (not an expanding
    IN) lets the compiled form be reused as it is; and the partner names come in the same
    round trip, as a JSON list of [slug, name, name_cy], only for the partners named."""
    d, b, m, p = (cast(Table, model.__table__) for model in (Decision, Board, Meeting, Partner))
    board = (b.c.slug, b.c.prefix, b.c.name, b.c.name_cy)
    if dialect == "postgresql":
        each = func.json_array_elements_text(d.c.partners).table_valued("value")
        names = func.json_agg(func.json_build_array(p.c.slug, p.c.name, p.c.name_cy))
    else:
        each = func.json_each(d.c.partners).table_valued("value")
        names = func.json_group_array(func.json_array(p.c.slug, p.c.name, p.c.name_cy))
    # Correlated to the decision row: only the partners it names.
    named = p.c.slug.in_(select(each.c.value).correlate(d))
    partner_names = select(type_coerce(names, JSON)).where(named).correlate(d).scalar_subquery()
    return (
        select(
            *(d.c[name] for name in _DECISION_COLUMNS),
            *(c.label(f"board_{c.name}") for c in board),
            m.c.starts_at.label("meeting_starts_at"),
            partner_names.label("partner_names"),
        )
        .select_from(d.join(b, b.c.id == d.c.board_id).outerjoin(m, m.c.id == d.c.meeting_id))
        .where(d.c.ref.in_([bindparam(f"ref{i}") for i in range(_REF_VARIANTS)]))
        .order_by(d.c.ref)
        .limit(1)
    )


_DECISION_COLUMNS = (
    "ref",
    "decided_on",
    "title",
    "summary",
    "title_cy",
    "summary_cy",
    "partners",
    "link",
    "recorded_at",
    "marking",
    "exempt_paragraph",
    "restricted_to",
)
_DECISION_BY_REF = {
    dialect: DriverSelect(_decision_by_ref(dialect)) for dialect in ("sqlite", "postgresql")
}


def get_decision(
    source: Session | Connection, audience: Audience, ref: str
) -> Lookup[DecisionView]:
    """One decision by ref: found, withheld from this audience (ref only), or not found.

    `source` is a unit of work's session, or a connection (`db.look_up`, no Session at all).
    The visibility check is the rule's Python form on the row's classification columns."""
    if isinstance(source, Session):
        source.flush()  # as an ORM query would: a decision added in this unit is found
        connection = source.connection()
    else:
        connection = source
    variants = _ref_variants(ref)
    # Repeating the last spelling fills the fixed binds without widening the match.
    variants += variants[-1:] * (_REF_VARIANTS - len(variants))
    lookup = _DECISION_BY_REF[connection.dialect.name]
    found = lookup.first(connection, {f"ref{i}": v for i, v in enumerate(variants)})
    if found is None:
        return NotFound(ref.strip().upper())
    row = SimpleNamespace(**found)
    if not can_see(row, audience):
        return Withheld(row.ref)
    names = {s: PartnerView(s, n, cy) for s, n, cy in row.partner_names or ()}
    board = BoardView(row.board_slug, row.board_prefix, row.board_name, row.board_name_cy)
    return Found(DecisionView.of_columns(row, board, row.meeting_starts_at, names))


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
