"""The one rule that decides who may see what, in two forms read from one table (`RULE`):
`can_see` checks an item in Python (at send time), `visible_to` filters a model's rows in SQL
(query services filter, count and page with it). Every read path goes through one of them.

An item carries a security marking, an access status (open, or exempt under a paragraph of
Schedule 12A) and optionally a list of partners it is restricted to. An audience is everyone who
will read a reply or post: its clearance is the lowest of theirs, its exempt access holds only if
all of them hold it, and its readers are the union of their partners. Default deny: anything
unknown, malformed or missing is not shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from sqlalchemy import Boolean, ColumnElement, String, and_, case, false, literal, not_, null, or_
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.domain import EXEMPT_PARAGRAPHS, Marking

if TYPE_CHECKING:
    from bot.models import Channel, Member


class Classified(Protocol):
    """What the rule reads from an item (decisions, actions and questions all have it)."""

    @property
    def marking(self) -> Marking | str | None: ...

    @property
    def exempt_paragraph(self) -> int | None: ...

    @property
    def restricted_to(self) -> Sequence[str] | None: ...


UNKNOWN_READERS = "?"
"""Stands in the readers of a channel the bot does not know, so restricted items stay hidden."""


@dataclass(frozen=True)
class Audience:
    """Who will read: the clearance all of them share and the partners they belong to."""

    clearance: Marking
    exempt_access: bool
    readers: frozenset[str]
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # No known reader means unknown readers: combining with another audience must keep it so.
        if not self.readers:
            object.__setattr__(self, "readers", frozenset({UNKNOWN_READERS}))

    def together_with(self, other: Audience) -> Audience:
        """The audience when both read the same message: never wider than either."""
        lower = self.clearance if self.clearance.rank <= other.clearance.rank else other.clearance
        return Audience(
            clearance=lower,
            exempt_access=self.exempt_access and other.exempt_access,
            readers=self.readers | other.readers,
            label=f"{self.label} + {other.label}".strip(" +"),
        )


# -- the rule, as one table of facts --------------------------------------------------------
# Both forms of the rule read the table below: `can_see` / `withheld_reason` evaluate it on an
# item in Python (the check at send time), `visible_to` / `withheld_reason_of` compile it to a
# SQL expression on a model's columns (what the query services filter, count and page with).
# Property tests (tests/test_visibility_sql.py) hold the two to the same answers.


@dataclass(frozen=True)
class Allowance:
    """What an audience may read, as plain values both forms compare an item's columns with."""

    markings: frozenset[Marking]
    """The markings at or below its clearance."""
    paragraphs: frozenset[int]
    """The Schedule 12A paragraphs it may read: all of them with exempt access, else none."""
    readers: frozenset[str]
    """Its partners: a restricted item must name every one of them."""


@lru_cache(maxsize=1024)
def allowance(audience: Audience) -> Allowance:
    """The audience's allowance (cached: audiences are few and immutable)."""
    return Allowance(
        markings=frozenset(m for m in Marking if m.rank <= audience.clearance.rank),
        paragraphs=frozenset(EXEMPT_PARAGRAPHS) if audience.exempt_access else frozenset(),
        readers=audience.readers,
    )


class Test(Enum):
    """How a check compares an item's value with what the audience is allowed."""

    LISTED = "listed"
    """The value must be one of the allowed values; a missing value is denied."""
    OPEN_OR_LISTED = "open-or-listed"
    """No value means the check does not apply; any value must be one of the allowed values."""
    OPEN_OR_NAMES_ALL = "open-or-names-all"
    """An empty list means the check does not apply; else it must name every allowed value."""


@dataclass(frozen=True)
class Check:
    """One row of the rule: an item is visible when it passes every check."""

    reason: str
    """The withheld category of an item this check applies to (the first one in table order)."""
    column: str
    """The item attribute, and the model column, the check reads."""
    test: Test
    allowed: Callable[[Allowance], frozenset[Any]]


RULE: tuple[Check, ...] = (
    # A review date (`exempt_review_on`) marks when an exemption must be reconsidered, not when
    # it lapses: an item stays exempt until its paragraph is cleared (default deny).
    Check("exempt", "exempt_paragraph", Test.OPEN_OR_LISTED, lambda a: a.paragraphs),
    Check("restricted", "restricted_to", Test.OPEN_OR_NAMES_ALL, lambda a: a.readers),
    Check("sensitive", "marking", Test.LISTED, lambda a: a.markings),
)
"""The one rule, in order of the withheld categories; the last check applies to every item."""


# -- the Python form --------------------------------------------------------------------------
def _is_open(check: Check, value: Any) -> bool:
    if check.test is Test.OPEN_OR_LISTED:
        return value is None
    if check.test is Test.OPEN_OR_NAMES_ALL:
        return not value
    return False


def _passes(check: Check, value: Any, allowed: frozenset[Any]) -> bool:
    if _is_open(check, value):
        return True
    if check.test is Test.OPEN_OR_NAMES_ALL:
        return isinstance(value, list | tuple) and allowed <= set(value)
    try:
        return value in allowed
    except TypeError:  # an unhashable value is malformed: denied
        return False


def can_see(item: Classified, audience: Audience) -> bool:
    """True only when every reader is cleared for the item's marking, exemption and restriction."""
    granted = allowance(audience)
    return all(
        _passes(check, getattr(item, check.column), check.allowed(granted)) for check in RULE
    )


def withheld_reason(item: Classified, audience: Audience) -> str | None:
    """Why an item is withheld, as a content-free category for counts; None when visible."""
    if can_see(item, audience):
        return None
    for check in RULE:
        if not _is_open(check, getattr(item, check.column)):
            return check.reason
    raise AssertionError("the rule's last check applies to every item")  # pragma: no cover


# -- the SQL form -----------------------------------------------------------------------------
class _EmptyList(FunctionElement[bool]):
    """True when a JSON list column names nobody: SQL NULL, JSON null or []."""

    type = Boolean()
    inherit_cache = True
    name = "empty_list"


class _NamesAll(FunctionElement[bool]):
    """True when a JSON list column (first argument) names every later argument."""

    type = Boolean()
    inherit_cache = True
    name = "names_all"


@compiles(_EmptyList, "sqlite")
def _empty_list_sqlite(element: _EmptyList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(coalesce(json_array_length({column}), 0) = 0)"


@compiles(_EmptyList, "postgresql")
def _empty_list_postgresql(element: _EmptyList, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"(coalesce(CAST({column} AS JSONB), '[]') IN ('[]', 'null'))"


@compiles(_NamesAll, "sqlite")
def _names_all_sqlite(element: _NamesAll, compiler: SQLCompiler, **kw: Any) -> str:
    column, *names = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"((SELECT count(DISTINCT listed.value) FROM json_each({column}) AS listed "
        f"WHERE listed.value IN ({', '.join(names)})) = {len(names)})"
    )


@compiles(_NamesAll, "postgresql")
def _names_all_postgresql(element: _NamesAll, compiler: SQLCompiler, **kw: Any) -> str:
    column, *names = (compiler.process(c, **kw) for c in element.clauses)
    return f"(CAST({column} AS JSONB) @> jsonb_build_array({', '.join(names)}))"


def _sql_is_open(check: Check, column: ColumnElement[Any]) -> ColumnElement[bool]:
    if check.test is Test.OPEN_OR_LISTED:
        return column.is_(None)
    if check.test is Test.OPEN_OR_NAMES_ALL:
        return _EmptyList(column)
    return false()


def _sql_passes(
    check: Check, column: ColumnElement[Any], allowed: frozenset[Any]
) -> ColumnElement[bool]:
    test: ColumnElement[bool]
    if not allowed:
        test = false()
    elif check.test is Test.OPEN_OR_NAMES_ALL:
        test = _NamesAll(column, *(literal(v, String()) for v in sorted(allowed)))
    else:
        test = column.in_(sorted(allowed))
    if check.test is Test.LISTED:
        return test
    return or_(_sql_is_open(check, column), test)


def visible_to(model: Any, audience: Audience) -> ColumnElement[bool]:
    """The rule as a SQL filter on `model` (Decision, Action or Question) for `audience`.

    `model` may also be the columns of a subquery (`subquery.c`) with the same names."""
    granted = allowance(audience)
    return and_(*(_sql_passes(c, getattr(model, c.column), c.allowed(granted)) for c in RULE))


def withheld_reason_of(model: Any, audience: Audience) -> ColumnElement[str | None]:
    """`withheld_reason` as a SQL expression on `model`: NULL when visible, else the category."""
    whens: list[tuple[ColumnElement[bool], Any]] = [(visible_to(model, audience), null())]
    for check in RULE[:-1]:
        whens.append((not_(_sql_is_open(check, getattr(model, check.column))), check.reason))
    return case(*whens, else_=RULE[-1].reason)


T = TypeVar("T", bound=Classified)


@dataclass
class Filtered(Generic[T]):
    """Items an audience may see, and how many were withheld by category (no content)."""

    visible: list[T]
    withheld: dict[str, int]

    @property
    def withheld_total(self) -> int:
        """All withheld items, whatever the reason."""
        return sum(self.withheld.values())


def partition(items: Iterable[T], audience: Audience) -> Filtered[T]:
    """Split items into those the audience may see and a count of the rest by reason."""
    visible: list[T] = []
    withheld: dict[str, int] = {}
    for item in items:
        reason = withheld_reason(item, audience)
        if reason is None:
            visible.append(item)
        else:
            withheld[reason] = withheld.get(reason, 0) + 1
    return Filtered(visible, withheld)


def audience_of_member(member: Member) -> Audience:
    """A member reading alone (a direct message)."""
    return Audience(
        clearance=Marking(member.clearance),
        exempt_access=member.exempt_access,
        readers=frozenset({member.partner.slug}),
        label=member.slug,
    )


def audience_of_channel(channel: Channel, all_partners: Iterable[str]) -> Audience:
    """Everyone who reads a channel: its partner's people, or every partner for a shared channel."""
    readers = frozenset({channel.partner.slug}) if channel.partner else frozenset(all_partners)
    return Audience(
        clearance=Marking(channel.clearance),
        exempt_access=channel.exempt_access,
        readers=readers,
        label=channel.slug,
    )


def together(audiences: Iterable[Audience]) -> Audience:
    """Everyone in `audiences` reading one message (a group DM): never wider than any of them.
    No audience at all is an unknown one."""
    combined: Audience | None = None
    for audience in audiences:
        combined = audience if combined is None else combined.together_with(audience)
    return combined if combined is not None else audience_of_unknown_channel("nobody")


def audience_of_unknown_channel(label: str = "unregistered channel") -> Audience:
    """A channel the bot has no record of: lowest clearance, readers unknown."""
    return Audience(
        clearance=Marking.OFFICIAL,
        exempt_access=False,
        readers=frozenset({UNKNOWN_READERS}),
        label=label,
    )
