"""Vocabulary shared by every layer: markings, roles, states. Plain enums, no I/O."""

from __future__ import annotations

from enum import StrEnum


class Marking(StrEnum):
    """Government Security Classification marking of an item, lowest first."""

    OFFICIAL = "official"
    OFFICIAL_SENSITIVE = "official-sensitive"

    @property
    def rank(self) -> int:
        """Position in the order official < official-sensitive."""
        return _MARKING_RANKS[self]


_MARKING_RANKS = {marking: position for position, marking in enumerate(Marking)}
# Computed once: `rank` is read for every item the visibility rule checks.


class Role(StrEnum):
    """What a member may do."""

    SECRETARIAT = "secretariat"
    BOARD_MEMBER = "board-member"
    SCRUTINY_MEMBER = "scrutiny-member"


class Platform(StrEnum):
    """Where a channel lives."""

    SLACK = "slack"
    TEAMS = "teams"
    CONSOLE = "console"


class ChannelLanguage(StrEnum):
    """Language of a channel; `cy+en` is bilingual with Welsh first."""

    EN = "en"
    CY = "cy"
    CY_EN = "cy+en"

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages a message to this channel carries, in order."""
        return ("cy", "en") if self is ChannelLanguage.CY_EN else (self.value,)


class AnonymousQuestions(StrEnum):
    """Whether a board takes anonymous questions, and what others then see of the asker."""

    NO = "no"
    PARTNER = "partner"
    """The asker's partner is shown, never their name (as for every question)."""
    HIDDEN = "hidden"
    """Neither name nor partner is shown; only the secretariat sees who asked."""


class AlertKind(StrEnum):
    """What a channel may ask to hear about as it happens (`alerts:` in the collaboration)."""

    DECISIONS = "decisions"


class ActionStatus(StrEnum):
    """Tactical-plan action status."""

    NOT_STARTED = "not-started"
    IN_PROGRESS = "in-progress"
    BLOCKED = "blocked"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def is_closed(self) -> bool:
        """Done and cancelled actions are never overdue."""
        return self in (ActionStatus.DONE, ActionStatus.CANCELLED)


class Rag(StrEnum):
    """Red/amber/green rating."""

    RED = "red"
    AMBER = "amber"
    GREEN = "green"


class QuestionState(StrEnum):
    """Lifecycle of a joint-scrutiny question."""

    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    MERGED = "merged"
    WITHDRAWN = "withdrawn"
    ANSWERED = "answered"
    CARRIED_FORWARD = "carried-forward"


class DeliveryState(StrEnum):
    """Outbox row state."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


EXEMPT_PARAGRAPHS = range(12, 19)
"""Schedule 12A to the Local Government Act 1972 as it applies in Wales: paragraphs 12 to 18."""
