"""What a handler is and receives: the command types, the context and the user's error.

A leaf module: handlers and services import it, never the app factory, so `bot.app` can
import the handlers without an import circle (as Flask blueprints import leaf modules).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from sqlalchemy.orm import Session

from bot.domain import Platform, Role
from bot.i18n import Translator
from bot.messages import Reply, Request
from bot.models import Channel, Member
from bot.rendering import Renderer
from bot.settings import Settings
from bot.visibility import Audience


class UserError(Exception):
    """A problem the user can fix; the message is already translated and is shown as it is."""


Handler = Callable[["Request", "Context"], Reply]
"""A command or interaction handler: a neutral request in, a neutral reply out."""


@dataclass(frozen=True)
class Command:
    """A `/scrutiny <name>` subcommand."""

    name: str
    handler: Handler
    summary: str
    usage: str = ""
    aliases: tuple[str, ...] = ()
    roles: frozenset[Role] = frozenset()
    """Roles allowed to run it; empty means every known member."""
    writes: bool = True
    """False for a command that only reads: on SQLite it then takes no write lock."""
    cached: bool = True
    """For a command that only reads: its rendered answers may be kept (`bot.answer_cache`);
    False for one that shows what the register's version does not follow (the outbox, the
    audit log)."""

    @property
    def cacheable(self) -> bool:
        """Whether its answers may be kept: it only reads, and reads only versioned tables."""
        return not self.writes and self.cached


@dataclass(frozen=True)
class Interaction:
    """A button, modal submission or other interactive callback, by its id."""

    action_id: str
    handler: Handler
    roles: frozenset[Role] = frozenset()
    writes: bool = True
    """False for an interaction that only reads: on SQLite it then takes no write lock."""


class Commands(Protocol):
    """The narrow view of the app a handler may use: settings, renderer and the commands."""

    settings: Settings
    renderer: Renderer
    commands: dict[str, Command]
    aliases: dict[str, str]

    def visible_commands(self, member: Member) -> list[Command]:
        """Commands this member may run, in registration order (for help)."""

    def run_command(self, name: str, request: Request, ctx: Context) -> Reply:
        """Run another command by name or alias, with that command's role check."""

    def secretariat_channel_name(self, session: Session, platform: Platform) -> str:
        """The secretariat's channel on this platform, for 'ask the secretariat' messages."""


@dataclass
class Context:
    """Everything a handler may use besides the request: one session, one audience."""

    app: Commands
    session: Session
    member: Member
    channel: Channel | None
    audience: Audience
    languages: tuple[str, ...]
    now: datetime
    platform: Platform | None = None
    """Where the request came from; sets `cmd`, how the member starts a command there."""
    t: Translator = field(init=False)

    def __post_init__(self) -> None:
        cmd = self.app.renderer.command_prefix(self.platform)
        self.t = Translator(self.languages[0], self.app.settings.timezone, cmd)

    @property
    def cmd(self) -> str:
        """The command prefix for the asker's platform: "/scrutiny" or "@Scrutiny"."""
        return self.t.cmd

    @property
    def today(self) -> date:
        """Today's date in the collaboration's wall-clock time zone."""
        return self.now.astimezone(self.app.settings.timezone).date()

    def has_role(self, role: Role) -> bool:
        """Whether the asking member holds `role`."""
        return role.value in self.member.roles
