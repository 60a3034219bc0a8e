"""The one rule that decides who may see what. Every read path goes through `can_see`.

An item carries a security marking, an access status (open, or exempt under a paragraph of
Schedule 12A) and optionally a list of partners it is restricted to. An audience is everyone who
will read a reply or post: its clearance is the lowest of theirs, its exempt access holds only if
all of them hold it, and its readers are the union of their partners. Default deny: anything
unknown, malformed or missing is not shown.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

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


def _marking_of(item: Classified) -> Marking | None:
    try:
        return Marking(item.marking) if item.marking is not None else None
    except ValueError:
        return None


def can_see(item: Classified, audience: Audience) -> bool:
    """True only when every reader is cleared for the item's marking, exemption and restriction."""
    marking = _marking_of(item)
    if marking is None or marking.rank > audience.clearance.rank:
        return False
    paragraph = item.exempt_paragraph
    if paragraph is not None and (paragraph not in EXEMPT_PARAGRAPHS or not audience.exempt_access):
        return False
    restricted = item.restricted_to
    # Every reader must be among the named partners; an audience of unknown readers is denied.
    return not restricted or audience.readers <= set(restricted)


def withheld_reason(item: Classified, audience: Audience) -> str | None:
    """Why an item is withheld, as a content-free category for counts; None when visible."""
    if can_see(item, audience):
        return None
    if item.exempt_paragraph is not None:
        return "exempt"
    if item.restricted_to:
        return "restricted"
    return "sensitive"


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


def audience_of_unknown_channel(label: str = "unregistered channel") -> Audience:
    """A channel the bot has no record of: lowest clearance, readers unknown."""
    return Audience(
        clearance=Marking.OFFICIAL,
        exempt_access=False,
        readers=frozenset({UNKNOWN_READERS}),
        label=label,
    )
