"""Per-channel digests: what is new, late or coming up, for the people who read each channel.

What counts as new: decisions that entered the register since the channel's previous digest.
The register is ordered by `RegisterEntry.seq`, stamped by the digest cycle the first time it
sees a committed decision, and each channel keeps the last seq it was told about
(`Channel.digest_register_seq`). A decision recorded late, backdated, or committed by a long
import after the digest began is therefore announced exactly once, in the next digest; a
timestamp watermark could miss the last of these.

Data shared by many channels is fetched once per cycle (`Cycle`) through the query layer in
`bot.services.queries` and filtered per audience, so the statements a cycle runs depend on the
number of distinct audiences, not on the number of channels.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Generic, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CursorResult,
    Integer,
    Result,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from bot.domain import Platform
from bot.messages import Reply
from bot.models import Action, Channel, Decision, Delivery, Partner, RegisterEntry
from bot.outbox import Post, enqueue_many
from bot.rendering import Renderer, render_payload
from bot.schedule_time import LONDON
from bot.services.attendance import MeetingAttendance, last_meetings_since
from bot.services.queries import (
    CLOSED_STATUSES,
    ActionView,
    BoardView,
    DecisionView,
    MeetingView,
    Page,
    PartnerView,
    next_meetings,
    open_question_windows,
    partner_views,
)
from bot.visibility import Audience, audience_of_channel, partition, withheld_reason

log = logging.getLogger(__name__)

DIGEST_KIND = "digest"
TEMPLATE = "digest/digest"
MAX_DECISIONS = 10
MAX_OWN_OVERDUE = 10
MAX_OTHER_OVERDUE = 5
MAX_DUE_SOON = 10
MAX_MEETINGS = 4
ATTENDANCE_FIRST_LOOKBACK = timedelta(days=7)
"""A channel's first digest reports attendance at meetings held in the week before it."""
FIRST_DIGEST_DAYS = 30
"""A channel's first digest announces decisions taken in this many days before it (the whole
register, often imported in one go on the day a channel is added, would bury what is new);
the `SCRUTINY_FIRST_DIGEST_DAYS` setting changes it."""
_REGISTER_LOCK = 0x5C2B_D16E
"""PostgreSQL advisory lock id serialising register stamping (any two stampers would race)."""

V = TypeVar("V")


@dataclass(frozen=True)
class Section(Generic[V]):
    """Up to a few items, how many there are in all, and what was withheld (counts only)."""

    items: tuple[V, ...] = ()
    total: int = 0
    withheld: dict[str, int] = field(default_factory=dict)

    @property
    def more(self) -> int:
        """Visible items not listed for want of space."""
        return self.total - len(self.items)

    @property
    def withheld_total(self) -> int:
        """Items this channel may not see, whatever the reason."""
        return sum(self.withheld.values())

    @property
    def empty(self) -> bool:
        """Nothing to say, visible or withheld."""
        return not self.total and not self.withheld_total

    @classmethod
    def of_page(cls, page: Page[V]) -> Section[V]:
        """A section from the first page of a query."""
        return cls(page.items, page.total_visible, dict(page.withheld))


@dataclass(frozen=True)
class DigestContent:
    """Everything one channel's digest says, visibility already applied."""

    channel_slug: str
    partner: PartnerView | None
    board: BoardView | None
    at: datetime
    today: date
    decisions: Section[DecisionView]
    overdue_own: Section[ActionView] | None
    """The channel partner's overdue actions (None for channels without a partner)."""
    overdue_other: Section[ActionView]
    due_soon: Section[ActionView]
    due_soon_days: int
    meetings: tuple[MeetingView, ...]
    windows: tuple[MeetingView, ...]
    seq_from: int | None
    seq_to: int
    attendance: tuple[MeetingAttendance, ...] = ()
    """Secretariat and board channels: who attended each board's last meeting since the
    previous digest."""

    @property
    def is_empty(self) -> bool:
        """No new decisions, no late or imminent actions and no open question window."""
        sections: list[Section[Any]] = [self.decisions, self.overdue_other, self.due_soon]
        if self.overdue_own is not None:
            sections.append(self.overdue_own)
        return all(s.empty for s in sections) and not self.windows and not self.attendance

    @property
    def items(self) -> dict[str, list[str]]:
        """Refs of the classified items shown, for the check at send time."""
        actions = [
            a.ref
            for s in (self.overdue_own, self.overdue_other, self.due_soon)
            if s is not None
            for a in s.items
        ]
        return {"decisions": [d.ref for d in self.decisions.items], "actions": actions}

    def context(self) -> dict[str, Any]:
        """The template context (views only: templates never touch the database)."""
        return {
            "partner": self.partner,
            "board": self.board,
            "at": self.at,
            "today": self.today,
            "decisions": self.decisions,
            "overdue_own": self.overdue_own,
            "overdue_other": self.overdue_other,
            "due_soon": self.due_soon,
            "due_soon_days": self.due_soon_days,
            "meetings": self.meetings,
            "windows": self.windows,
            "attendance": self.attendance,
            "empty": self.is_empty,
            "shared": True,
        }


@dataclass
class DigestResult:
    """What running one channel's digest did."""

    channel: str
    key: str
    delivery_id: int | None
    skipped_empty: bool = False
    already_done: bool = False


# -- the register order ------------------------------------------------------------------------
def stamp_register(session: Session, now: datetime) -> int:
    """Give every committed, unstamped decision the next register seq; the highest seq now.

    Only committed rows are visible to this statement, so a decision still being written is
    stamped by a later cycle, after this one, and is announced then.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _REGISTER_LOCK})
    current = int(session.scalar(select(func.max(RegisterEntry.seq))) or 0)
    unstamped = select(
        Decision.id,
        literal(current + 1, Integer()),
        literal(now, RegisterEntry.stamped_at.type),
    ).where(
        ~select(RegisterEntry.decision_id).where(RegisterEntry.decision_id == Decision.id).exists()
    )
    session.execute(
        insert(RegisterEntry).from_select(["decision_id", "seq", "stamped_at"], unstamped)
    )
    return current_register_seq(session)


def _rowcount(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def current_register_seq(session: Session) -> int:
    """The highest register seq stamped so far (0 before the first digest)."""
    return int(session.scalar(select(func.max(RegisterEntry.seq))) or 0)


# -- one cycle's shared data -------------------------------------------------------------------
@dataclass(frozen=True)
class _DecisionRow:
    """What visibility and the window need about a decision, without loading it."""

    id: int
    marking: str
    exempt_paragraph: int | None
    restricted_to: Sequence[str] | None
    board_id: int
    decided_on: date
    seq: int | None


@dataclass(frozen=True)
class _ActionRow:
    """What the digest's action sections need about an open action, without loading it."""

    id: int
    ref: str
    due_date: date
    owner: str | None
    marking: str
    exempt_paragraph: int | None
    restricted_to: Sequence[str] | None
    classification: tuple[Any, ...] = ()
    """What visibility depends on, hashable: rows alike are judged once per audience."""

    @classmethod
    def of(cls, *columns: Any) -> _ActionRow:
        """A row from the columns read, with its classification."""
        row_id, ref, due_date, owner, marking, exempt, restricted = columns
        kept = tuple(restricted) if isinstance(restricted, list) else restricted
        return cls(
            row_id, ref, due_date, owner, marking, exempt, restricted, (marking, exempt, kept)
        )


@dataclass(frozen=True)
class _ActionPage:
    """The first actions of a section (ids, soonest due first) and its counts."""

    ids: tuple[int, ...]
    total: int
    withheld: dict[str, int]


ActionQuery = tuple[Audience, tuple[str, ...], bool, int | None, int]


class Cycle:
    """Data shared by the digests of one run, fetched once and filtered per audience."""

    def __init__(
        self,
        session: Session,
        *,
        now: datetime,
        today: date,
        seq_to: int,
        include_unstamped: bool = False,
        first_digest_days: int = FIRST_DIGEST_DAYS,
    ) -> None:
        self.session = session
        self.now = now
        self.today = today
        self.seq_to = seq_to
        self.include_unstamped = include_unstamped
        self.first_since = today - timedelta(days=first_digest_days)
        """A first digest shows decisions taken on or after this day."""
        self.partners = partner_views(session)
        self._meetings: list[MeetingView] | None = None
        self._windows: list[MeetingView] | None = None
        self._actions: dict[ActionQuery, _ActionPage] = {}
        self._action_rows: tuple[int, list[_ActionRow], list[date]] | None = None
        """Open actions due up to a horizon (days from today), read once per cycle."""
        self._action_views: dict[int, ActionView] = {}
        self._horizon = 0
        """The farthest "due soon" of the channels asked about: one read covers them all."""
        self._reasons: dict[Audience, dict[tuple[Any, ...], str | None]] = {}
        self._audiences: dict[int, Audience] = {}
        self._contents: dict[tuple[Any, ...], DigestContent] = {}
        self._attendance: dict[tuple[datetime, str | None], tuple[MeetingAttendance, ...]] = {}

    def audience(self, channel: Channel) -> Audience:
        """Everyone who reads the channel."""
        if channel.id not in self._audiences:
            self._audiences[channel.id] = audience_of_channel(channel, list(self.partners))
        return self._audiences[channel.id]

    def _action_queries(
        self, channel: Channel, audience: Audience
    ) -> tuple[ActionQuery | None, ActionQuery, ActionQuery]:
        """The channel's action sections: its partner's overdue (None without a partner), the
        others' overdue, and those due soon."""
        partner = self.partners.get(channel.partner.slug) if channel.partner else None
        soon = channel.due_soon_days
        if partner is None:
            return (
                None,
                (audience, (), True, None, MAX_OWN_OVERDUE),
                (audience, (), False, soon, MAX_DUE_SOON),
            )
        own = (partner.slug,)
        others = tuple(sorted(slug for slug in self.partners if slug != partner.slug))
        return (
            (audience, own, True, None, MAX_OWN_OVERDUE),
            (audience, others, True, None, MAX_OTHER_OVERDUE),
            (audience, own, False, soon, MAX_DUE_SOON),
        )

    def _section(self, query: ActionQuery) -> Section[ActionView]:
        """Open actions overdue, or due within some days, that the audience may see: the first
        few and the counts, as `find_actions` would give them. Filtered from the open actions
        read once per cycle, not queried per audience."""
        page = self._action_page(query)
        self._load_action_views(page.ids)
        items = tuple(self._action_views[i] for i in page.ids if i in self._action_views)
        return Section(items, page.total, dict(page.withheld))

    def _action_page(self, key: ActionQuery) -> _ActionPage:
        if key in self._actions:
            return self._actions[key]
        audience, partners, overdue, due_within_days, limit = key
        horizon = self.today + timedelta(days=max(0, due_within_days or 0))
        owners = set(partners)
        reasons = self._reasons.setdefault(audience, {})
        visible: list[_ActionRow] = []
        withheld: dict[str, int] = {}
        rows, due_dates = self._open_actions(due_within_days or 0)
        # Soonest due first: the overdue ones, then those due from today to the horizon.
        first = 0 if overdue else bisect_left(due_dates, self.today)
        if due_within_days is not None:
            last = bisect_right(due_dates, horizon)
        else:
            last = bisect_left(due_dates, self.today)
        for row in rows[first:last]:
            if owners and row.owner not in owners:
                continue
            if row.classification not in reasons:
                reasons[row.classification] = withheld_reason(row, audience)
            reason = reasons[row.classification]
            if reason is None:
                visible.append(row)
            else:
                withheld[reason] = withheld.get(reason, 0) + 1
        page = _ActionPage(tuple(r.id for r in visible[:limit]), len(visible), withheld)
        self._actions[key] = page
        return page

    def _open_actions(self, days: int) -> tuple[list[_ActionRow], list[date]]:
        """Open actions due by today + `days`, soonest first (read again only for a farther
        horizon than any read before in this cycle)."""
        if self._action_rows is None or self._action_rows[0] < days:
            days = max(days, self._horizon)
            statement = (
                select(
                    Action.id,
                    Action.ref,
                    Action.due_date,
                    Partner.slug,
                    Action.marking,
                    Action.exempt_paragraph,
                    Action.restricted_to,
                )
                .outerjoin(Partner, Partner.id == Action.owner_partner_id)
                .where(
                    Action.status.not_in(CLOSED_STATUSES),
                    Action.due_date <= self.today + timedelta(days=days),
                )
                .order_by(Action.due_date, Action.ref)
            )
            rows = [_ActionRow.of(*row) for row in self.session.execute(statement)]
            self._action_rows = (days, rows, [r.due_date for r in rows])
        return self._action_rows[1], self._action_rows[2]

    def _load_action_views(self, ids: Iterable[int]) -> None:
        missing = {i for i in ids if i not in self._action_views}
        if not missing:
            return
        statement = (
            select(Action).options(joinedload(Action.owner_partner)).where(Action.id.in_(missing))
        )
        for action in self.session.scalars(statement):
            self._action_views[action.id] = ActionView.of(action, self.today)

    def meetings(self) -> list[MeetingView]:
        """Meetings not yet over, soonest first."""
        if self._meetings is None:
            self._meetings = next_meetings(self.session, now=self.now, limit=50)
        return self._meetings

    def windows(self) -> list[MeetingView]:
        """Meetings whose question window is open now."""
        if self._windows is None:
            self._windows = open_question_windows(self.session, now=self.now)
        return self._windows

    def attendance_since(self, since: datetime, board: str | None) -> tuple[MeetingAttendance, ...]:
        """Each board's (or one board's) last meeting since `since`, with its attendance."""
        key = (since, board)
        if key not in self._attendance:
            self._attendance[key] = tuple(
                last_meetings_since(self.session, since=since, now=self.now, board=board)
            )
        return self._attendance[key]

    def _decision_rows(self, lowest: int | None, first_digest: bool) -> list[_DecisionRow]:
        seq = RegisterEntry.seq
        statement = (
            select(
                Decision.id,
                Decision.marking,
                Decision.exempt_paragraph,
                Decision.restricted_to,
                Decision.board_id,
                Decision.decided_on,
                seq,
            )
            .join(
                RegisterEntry,
                RegisterEntry.decision_id == Decision.id,
                isouter=self.include_unstamped,
            )
            .order_by(Decision.decided_on.desc(), Decision.ref.desc())
        )
        window = []
        if lowest is not None:
            window.append(seq > lowest)
        if first_digest:
            window.append(Decision.decided_on >= self.first_since)
        stamped = seq <= self.seq_to
        if self.include_unstamped:
            stamped = or_(stamped, seq.is_(None))
            window.append(seq.is_(None))
        statement = statement.where(stamped, or_(*window))
        return [_DecisionRow(*row) for row in self.session.execute(statement)]

    def contents(self, channels: Sequence[tuple[Channel, int | None]]) -> list[DigestContent]:
        """Each channel's digest given its watermark (the last register seq it was told about)."""
        if not channels:
            return []
        marks = [mark for _, mark in channels]
        known = [m for m in marks if m is not None]
        rows = self._decision_rows(min(known) if known else None, any(m is None for m in marks))
        shown: dict[tuple[Any, ...], tuple[list[int], int, dict[str, int]]] = {}
        keys = []
        for channel, mark in channels:
            audience = self.audience(channel)
            key = (
                audience,
                channel.partner_id,
                channel.board_id,
                mark,
                channel.due_soon_days,
                channel.secretariat,
                # Only these channels report attendance since their previous digest.
                channel.last_digest_at if channel.secretariat or channel.board_id else None,
            )
            keys.append(key)
            if key in self._contents or key in shown:
                continue
            new = [
                r
                for r in rows
                if (channel.board_id is None or r.board_id == channel.board_id)
                and (
                    (mark is None and r.decided_on >= self.first_since)
                    or (mark is not None and (r.seq is None or r.seq > mark))
                )
            ]
            split = partition(new, audience)
            shown[key] = (
                [r.id for r in split.visible[:MAX_DECISIONS]],
                len(split.visible),
                split.withheld,
            )
        views = self._decision_views({i for ids, _, _ in shown.values() for i in ids})
        # Every action section first, so the actions shown are read in one statement.
        self._horizon = max([self._horizon, *(c.due_soon_days for c, _ in channels)])
        shown_actions: set[int] = set()
        for (channel, _), key in zip(channels, keys, strict=True):
            if key not in self._contents:
                for query in self._action_queries(channel, self.audience(channel)):
                    if query is not None:
                        shown_actions.update(self._action_page(query).ids)
        self._load_action_views(shown_actions)
        for (channel, mark), key in zip(channels, keys, strict=True):
            if key not in self._contents:
                ids, total, withheld = shown[key]
                decisions = Section(tuple(views[i] for i in ids if i in views), total, withheld)
                self._contents[key] = self._content(channel, mark, decisions)
        return [self._contents[key] for key in keys]

    def _decision_views(self, ids: set[int]) -> dict[int, DecisionView]:
        if not ids:
            return {}
        statement = (
            select(Decision)
            .options(joinedload(Decision.board), joinedload(Decision.meeting))
            .where(Decision.id.in_(ids))
        )
        return {d.id: DecisionView.of(d, self.partners) for d in self.session.scalars(statement)}

    def _content(
        self, channel: Channel, mark: int | None, decisions: Section[DecisionView]
    ) -> DigestContent:
        audience = self.audience(channel)
        partner = self.partners.get(channel.partner.slug) if channel.partner else None
        own_query, other_query, due_query = self._action_queries(channel, audience)
        own = self._section(own_query) if own_query is not None else None
        other = self._section(other_query)
        due = self._section(due_query)
        board = channel.board.slug if channel.board else None
        meetings = _next_per_board([m for m in self.meetings() if board in (None, m.board.slug)])
        windows = tuple(m for m in self.windows() if board in (None, m.board.slug))
        attendance: tuple[MeetingAttendance, ...] = ()
        if channel.secretariat or board is not None:
            since = channel.last_digest_at or self.now - ATTENDANCE_FIRST_LOOKBACK
            attendance = self.attendance_since(since, board)
        return DigestContent(
            channel_slug=channel.slug,
            partner=partner,
            board=BoardView.of(channel.board) if channel.board else None,
            at=self.now,
            today=self.today,
            decisions=decisions,
            overdue_own=own,
            overdue_other=other,
            due_soon=due,
            due_soon_days=channel.due_soon_days,
            meetings=meetings,
            windows=windows,
            seq_from=mark,
            seq_to=self.seq_to,
            attendance=attendance,
        )


def _next_per_board(meetings: Iterable[MeetingView]) -> tuple[MeetingView, ...]:
    seen: set[str] = set()
    chosen = []
    for meeting in meetings:
        if meeting.board.slug not in seen:
            seen.add(meeting.board.slug)
            chosen.append(meeting)
    return tuple(chosen[:MAX_MEETINGS])


# -- running digests ---------------------------------------------------------------------------
def local_today(now: datetime, channel: Channel) -> date:
    """The date at `now` in the channel's digest time zone."""
    return now.astimezone(_zone(channel.digest_timezone)).date()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return LONDON


def digest_key(channel: Channel, local_date: date) -> str:
    """`digest:{channel}:{local date}`: at most one digest per channel per local day."""
    return f"digest:{channel.slug}:{local_date.isoformat()}"


def build_digest(
    session: Session,
    channel: Channel,
    *,
    now: datetime,
    first_digest_days: int = FIRST_DIGEST_DAYS,
) -> DigestContent:
    """What the channel's digest would say at `now`, counting decisions not yet stamped (preview).

    Writes nothing.
    """
    cycle = Cycle(
        session,
        now=now,
        today=local_today(now, channel),
        seq_to=current_register_seq(session),
        include_unstamped=True,
        first_digest_days=first_digest_days,
    )
    return cycle.contents([(channel, channel.digest_register_seq)])[0]


class _RenderMemo(Renderer):
    """The app's renderer, remembering what it rendered: a bilingual channel's Welsh and English
    parts are the same text as a Welsh and an English channel's digests."""

    def __init__(self, inner: Renderer) -> None:
        super().__init__(inner.templates_dir, inner.tz, inner.teams_bot_name, inner.links)
        self._done: dict[tuple[int, str, str, str], str] = {}

    def render(
        self, reply: Reply, fmt: str, language: str, platform: Platform | None = None
    ) -> str:
        """Render once per reply, format, language and command prefix."""
        key = (id(reply), fmt, language, self.command_prefix(platform))
        if key not in self._done:
            self._done[key] = super().render(reply, fmt, language, platform)
        return self._done[key]


class Payloads:
    """Rendered payloads, shared by channels whose digest and format are the same."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = _RenderMemo(renderer)
        self._replies: dict[int, tuple[DigestContent, Reply]] = {}
        self._cache: dict[tuple[int, Platform, tuple[str, ...]], dict[str, Any]] = {}

    def render(self, content: DigestContent, channel: Channel) -> dict[str, Any]:
        """The stored payload of one channel's digest."""
        platform = Platform(channel.platform)
        languages = channel.language.languages
        cache_key = (id(content), platform, languages)
        if cache_key not in self._cache:
            if id(content) not in self._replies:
                # The content is kept with its reply so its id stays unique while cached.
                self._replies[id(content)] = (content, Reply(TEMPLATE, content.context()))
            reply = self._replies[id(content)][1]
            rebuild = {
                "kind": DIGEST_KIND,
                "seq_from": content.seq_from,
                "seq_to": content.seq_to,
                "at": content.at.isoformat(),
            }
            self._cache[cache_key] = render_payload(
                self.renderer, reply, platform, languages, items=content.items, rebuild=rebuild
            )
        return self._cache[cache_key]


@dataclass(frozen=True)
class Due:
    """A channel whose digest is due, with the scheduled run (local wall-clock and instant)."""

    channel: Channel
    local: datetime
    at: datetime


@dataclass
class Planned:
    """A digest rendered and ready to write: None payload when it is empty and skipped."""

    due: Due
    key: str
    content: DigestContent
    payload: dict[str, Any] | None
    old_seq: int | None


def build_contents(
    session: Session,
    due: Sequence[Due],
    *,
    now: datetime,
    seq_to: int,
    first_digest_days: int = FIRST_DIGEST_DAYS,
) -> list[DigestContent]:
    """What each due channel's digest says (reads only, shared data fetched once for all of
    them; nothing rendered, so the caller can render and write them a chunk at a time)."""
    if not due:
        return []
    cycle = Cycle(
        session,
        now=now,
        today=due[0].local.date(),
        seq_to=seq_to,
        first_digest_days=first_digest_days,
    )
    return cycle.contents([(d.channel, d.channel.digest_register_seq) for d in due])


def render_planned(payloads: Payloads, item: Due, content: DigestContent) -> Planned:
    """One channel's digest rendered (or marked empty and skipped) and ready to write."""
    channel = item.channel
    skip = content.is_empty and not channel.post_empty_digest
    payload = None if skip else payloads.render(content, channel)
    key = digest_key(channel, item.local.date())
    return Planned(item, key, content, payload, channel.digest_register_seq)


def plan_digests(
    session: Session,
    renderer: Renderer,
    due: Sequence[Due],
    *,
    now: datetime,
    seq_to: int,
    first_digest_days: int = FIRST_DIGEST_DAYS,
) -> list[Planned]:
    """Build and render each due channel's digest (reads only; shared data fetched once)."""
    contents = build_contents(
        session, due, now=now, seq_to=seq_to, first_digest_days=first_digest_days
    )
    payloads = Payloads(renderer)
    return [render_planned(payloads, d, c) for d, c in zip(due, contents, strict=True)]


def write_digests(session: Session, chunk: Sequence[Planned], seq_to: int) -> list[DigestResult]:
    """Advance the channels' watermarks and write their digests to the outbox, together.

    A few statements for the whole chunk (one update per distinct previous watermark and
    run, one insert). A channel whose watermark or last run moved since it was read (another
    run got there first) is left alone, so a digest is never written twice.
    """
    groups: dict[tuple[int | None, datetime], list[Planned]] = {}
    for item in chunk:
        groups.setdefault((item.old_seq, item.due.at), []).append(item)
    advanced: set[int] = set()
    for (old_seq, at), items in groups.items():
        guard = (
            update(Channel)
            .where(
                Channel.id.in_([item.due.channel.id for item in items]),
                Channel.digest_register_seq.is_not_distinct_from(old_seq),
                or_(Channel.last_digest_at.is_(None), Channel.last_digest_at < at),
            )
            .values(digest_register_seq=seq_to, last_digest_at=at)
            .returning(Channel.id)
            .execution_options(synchronize_session=False)
        )
        advanced.update(session.scalars(guard))
    posts: list[Post] = [
        {"key": p.key, "channel": p.due.channel, "kind": DIGEST_KIND, "payload": p.payload}
        for p in chunk
        if p.due.channel.id in advanced and p.payload is not None
    ]
    ids = enqueue_many(session, posts)
    results = []
    for item in chunk:
        channel = item.due.channel
        if channel.id not in advanced:
            results.append(DigestResult(channel.slug, item.key, None, already_done=True))
            continue
        set_committed_value(channel, "last_digest_at", item.due.at)
        set_committed_value(channel, "digest_register_seq", seq_to)
        if item.payload is None:
            results.append(DigestResult(channel.slug, item.key, None, skipped_empty=True))
        elif item.key in ids:
            results.append(DigestResult(channel.slug, item.key, ids[item.key]))
        else:
            # Today's digest was already written (the schedule fires twice in one local day):
            # keep the old watermark so these decisions go in the next digest, not nowhere.
            session.execute(
                update(Channel)
                .where(Channel.id == channel.id)
                .values(digest_register_seq=item.old_seq)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(channel, "digest_register_seq", item.old_seq)
            results.append(DigestResult(channel.slug, item.key, None, already_done=True))
    return results


def run_digests(
    session: Session, renderer: Renderer, due: Sequence[Due], *, now: datetime, seq_to: int
) -> list[DigestResult]:
    """Plan and write the digests of `due` channels in the caller's transaction."""
    planned = plan_digests(session, renderer, due, now=now, seq_to=seq_to)
    return write_digests(session, planned, seq_to)


def run_digest(
    session: Session,
    renderer: Renderer,
    channel: Channel,
    *,
    now: datetime,
    local: datetime | None = None,
) -> DigestResult:
    """Stamp the register and write one channel's digest for `now`, in the caller's transaction."""
    seq_to = stamp_register(session, now)
    tz = _zone(channel.digest_timezone)
    local = local or now.astimezone(tz).replace(tzinfo=None)
    return run_digests(session, renderer, [Due(channel, local, now)], now=now, seq_to=seq_to)[0]


def rebuild_payload(
    session: Session, delivery: Delivery, renderer: Renderer
) -> dict[str, Any] | None:
    """The digest in `delivery` rendered again with what its channel may see now (send time)."""
    info = delivery.payload.get("rebuild") or {}
    if info.get("kind") != DIGEST_KIND:
        return None
    channel = delivery.channel
    at = datetime.fromisoformat(str(info["at"]))
    cycle = Cycle(session, now=at, today=local_today(at, channel), seq_to=int(info["seq_to"]))
    seq_from = info.get("seq_from")
    content = cycle.contents([(channel, int(seq_from) if seq_from is not None else None)])[0]
    if content.is_empty and not channel.post_empty_digest:
        return None
    return Payloads(renderer).render(content, channel)
