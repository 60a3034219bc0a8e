"""Neutral request and reply types: what a member asked, and what a handler answers.

A handler never formats for a platform: it returns a `Reply` naming a template
(`actions/list`) and a context; `bot.rendering` turns it into each platform's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain import Platform


@dataclass(frozen=True)
class Request:
    """What a user asked, independent of the platform it came from."""

    platform: Platform
    user_id: str
    text: str
    channel_id: str | None = None
    is_direct: bool = False
    now: datetime | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """Form or button values (modals, buttons); empty for typed commands."""
    readers: tuple[str, ...] | None = None
    """Everyone else who will read the reply, by platform user id, in a conversation that is no
    registered channel (a group DM); the reply is then filtered for all of them together."""


@dataclass
class Reply:
    """A template name and its context; `visibility` has already been applied to the context."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    ephemeral: bool = True
    public: bool = False
    """True when the reply should be posted for the whole channel rather than just the asker."""
    surface: str = "message"
    """Where a platform that can should show it: "message", "modal" (a form) or "home" (a member's
    home tab), or "none" (nothing to show: a welcome already given). Platforms without that
    surface show the text rendering as a message."""
    field_errors: dict[str, str] = field(default_factory=dict)
    """A refused form: field name -> what is wrong with it, so a platform can mark each field."""
