"""The local text console: type `/scrutiny ...` as a chosen member and read the replies.

Interactive on a terminal (pick a member, a `scrutiny> ` prompt, `:as`, `:channel`, `:quit`);
line by line with no prompts when input is piped, so it can be scripted:

    printf '/scrutiny actions overdue torfaen\\n' | scrutiny-bot console --as sian-hughes

Requests go through the same dispatcher as Slack and Teams, as Platform.CONSOLE with the
member's slug as user id. By default the member reads alone (a direct message); in a console
channel (`--channel` / `:channel`) the channel's clearance combines with the member's.
"""

from __future__ import annotations

import contextlib
import difflib
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from sqlalchemy import select
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import joinedload

from bot.app import ScrutinyApp
from bot.db import unit_of_work
from bot.domain import Platform
from bot.i18n import _
from bot.messages import Request
from bot.models import Channel, Member
from bot.text_input import terminal_safe, whole_number

COMMAND_PREFIX = "/scrutiny"
PROMPT = "scrutiny> "
QUIT_WORDS = frozenset({":quit", ":q", ":exit"})


class ConsoleError(Exception):
    """A member or channel the console cannot use; the message says what to do instead."""


@dataclass(frozen=True)
class MemberChoice:
    """A member one can act as."""

    slug: str
    name: str
    partner: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class ChannelChoice:
    """A console channel one can speak in."""

    slug: str
    name: str
    external_id: str


class Console:
    """A read-eval-print loop over a `ScrutinyApp`, reusable by `scrutiny-bot run`."""

    def __init__(
        self,
        app: ScrutinyApp,
        stdin: TextIO,
        stdout: TextIO,
        *,
        interactive: bool | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.app = app
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty() if interactive is None else interactive
        self.clock = clock or app.clock.now
        self.member: MemberChoice | None = None
        self.channel: ChannelChoice | None = None
        # The worker prints scheduled posts from another thread while the loop waits for input.
        self._lock = threading.Lock()

    # -- who and where ----------------------------------------------------------------------
    def members(self) -> list[MemberChoice]:
        """Active members, by slug."""
        with unit_of_work(self.app.sessions) as session:
            rows = session.scalars(
                select(Member)
                .options(joinedload(Member.partner))
                .where(Member.active.is_(True))
                .order_by(Member.slug)
            )
            return [MemberChoice(m.slug, m.name, m.partner.name, tuple(m.roles)) for m in rows]

    def console_channels(self) -> list[ChannelChoice]:
        """Channels on the console platform, by slug."""
        with unit_of_work(self.app.sessions) as session:
            rows = session.scalars(
                select(Channel).where(Channel.platform == Platform.CONSOLE).order_by(Channel.slug)
            )
            return [ChannelChoice(c.slug, c.name, c.external_id) for c in rows]

    def use_member(self, slug: str) -> MemberChoice:
        """Act as the member with this slug (or list number); ConsoleError names close matches."""
        members = self.members()
        wanted = slug.strip()
        number = whole_number(wanted)
        if number is not None and 1 <= number <= len(members):
            self.member = members[number - 1]
            return self.member
        for member in members:
            if member.slug == wanted.lower():
                self.member = member
                return member
        close = difflib.get_close_matches(
            wanted.lower(), [m.slug for m in members], n=3, cutoff=0.5
        )
        if close:
            hint = _("Did you mean: {names}?").format(names=", ".join(close))
        elif members:
            hint = _("Members: {names}.").format(names=", ".join(m.slug for m in members))
        else:
            hint = _("There are no members yet: load the collaboration file first.")
        raise ConsoleError(
            _("There is no active member “{slug}”.").format(slug=wanted) + " " + hint
        )

    def use_channel(self, slug: str | None) -> ChannelChoice | None:
        """Speak in this console channel, or alone with the bot (None, '-' or 'dm')."""
        if slug is None or slug.strip().lower() in ("", "-", "dm"):
            self.channel = None
            return None
        wanted = slug.strip().lower()
        channels = self.console_channels()
        for channel in channels:
            if channel.slug == wanted:
                self.channel = channel
                return channel
        with unit_of_work(self.app.sessions) as session:
            other = session.scalar(select(Channel).where(Channel.slug == wanted))
            other_platform = other.platform.value if other else None
        names = ", ".join(c.slug for c in channels) or _("none (add one with platform: console)")
        if other_platform:
            message = _(
                "“{slug}” is a {platform} channel; the console can only speak in console "
                "channels: {names}."
            ).format(slug=wanted, platform=other_platform, names=names)
        else:
            message = _("There is no channel “{slug}”. Console channels: {names}.").format(
                slug=wanted, names=names
            )
        raise ConsoleError(message)

    def where(self) -> str:
        """Who is speaking and where, for the banner and after a switch."""
        if self.member is None:
            return _("No member chosen.")
        if self.channel is None:
            return _("You are {name} ({slug}), in a direct message with the bot.").format(
                name=self.member.name, slug=self.member.slug
            )
        return _("You are {name} ({slug}), in {channel}.").format(
            name=self.member.name, slug=self.member.slug, channel=self.channel.name
        )

    # -- talking ----------------------------------------------------------------------------
    def ask(self, text: str) -> str:
        """Send one line as the current member and return the plain-text reply."""
        if self.member is None:
            raise ConsoleError(_("Choose a member first: :as SLUG"))
        stripped = text.strip()
        if stripped.lower() == COMMAND_PREFIX or stripped.lower().startswith(COMMAND_PREFIX + " "):
            stripped = stripped[len(COMMAND_PREFIX) :].strip()
        request = Request(
            platform=Platform.CONSOLE,
            user_id=self.member.slug,
            text=stripped,
            channel_id=self.channel.external_id if self.channel else None,
            is_direct=self.channel is None,
            now=self.clock(),
        )
        return self.app.dispatch(request, "txt").text

    def handle(self, line: str) -> bool:
        """Act on one input line; False when the user asked to quit."""
        text = line.strip()
        if not text or (not self.interactive and text.startswith("#")):
            return True
        word, _space, rest = text.partition(" ")
        word = word.lower()
        try:
            if word in QUIT_WORDS:
                return False
            if word == ":as":
                self.use_member(rest)
                self._say_where()
            elif word in (":channel", ":ch"):
                self.use_channel(rest or None)
                self._say_where()
            elif word in (":help", ":?"):
                self.write(self.console_help() + "\n\n")
            elif word.startswith(":"):
                self.write(
                    _("Unknown console command “{word}”. Type :help.").format(word=word) + "\n\n"
                )
            else:
                self.write(self.ask(text) + "\n\n")
        except ConsoleError as problem:
            self.write(str(problem) + "\n\n")
        return True

    def console_help(self) -> str:
        """What the console understands besides bot commands."""
        return "\n".join(
            [
                _("Type /scrutiny COMMAND (e.g. /scrutiny help), or plain words as in a mention."),
                _("  :as SLUG        act as another member"),
                _("  :channel SLUG   speak in a console channel; :channel - for a direct message"),
                _("  :quit           leave"),
            ]
        )

    def choose_member(self) -> None:
        """Ask at the terminal which member to act as, by number or slug, until one is valid."""
        members = self.members()
        if not members:
            raise ConsoleError(_("There are no members yet: load the collaboration file first."))
        self.write(_("Who are you?") + "\n")
        for number, m in enumerate(members, start=1):
            roles = ", ".join(m.roles)
            self.write(f"  {number:>2}. {m.slug:<22} {m.name} ({m.partner}) · {roles}\n")
        while self.member is None:
            answer = self.read(_("Number or slug: "))
            if answer is None:
                raise ConsoleError(_("No member chosen."))
            try:
                self.use_member(answer)
            except ConsoleError as problem:
                self.write(str(problem) + "\n")

    def loop(self) -> None:
        """Read lines until end of input or :quit."""
        if self.interactive:
            self.write(self.where() + "\n" + self.console_help() + "\n\n")
        while True:
            line = self.read(PROMPT)
            if line is None or not self.handle(line):
                break

    # -- input and output -------------------------------------------------------------------
    def read(self, prompt: str) -> str | None:
        """One line without its newline (None at end of input); prompts only when interactive."""
        if self.interactive and self.stdin is sys.stdin and sys.stdin.isatty():
            return self._read_terminal(prompt)
        if self.interactive:
            self.write(prompt)
        line = self.stdin.readline()
        if not line:
            if self.interactive:
                self.write("\n")
            return None
        return line.rstrip("\r\n")

    def _read_terminal(self, prompt: str) -> str | None:
        # Line editing and history at a real terminal, where the platform has them.
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401
        try:
            return input(prompt)
        except EOFError:
            self.write("\n")
            return None

    def write(self, text: str) -> None:
        """Print without interleaving with a scheduled post; user text in it cannot reach the
        terminal as an escape sequence (`terminal_safe`)."""
        with self._lock:
            self.stdout.write(terminal_safe(text))
            self.stdout.flush()

    def show_post(self, channel_slug: str, text: str) -> None:
        """Print a post the bot made to a channel (digest, reminder), framed apart from replies."""
        title = _("post to {channel}").format(channel=channel_slug)
        width = max([len(title) + 4, *(len(line) + 2 for line in text.splitlines())])
        width = min(width, 100)
        framed = [f"┌─ {title} " + "─" * max(0, width - len(title) - 3)]
        framed += [f"│ {line}" for line in text.splitlines() or [""]]
        framed.append("└" + "─" * width)
        self.write("\n".join(framed) + "\n\n")

    def _say_where(self) -> None:
        if self.interactive:
            self.write(self.where() + "\n\n")


def run_console(
    app: ScrutinyApp,
    member_slug: str | None,
    channel_slug: str | None,
    stdin: TextIO,
    stdout: TextIO,
    *,
    stderr: TextIO | None = None,
    interactive: bool | None = None,
    clock: Callable[[], datetime] | None = None,
    started: Callable[[Console], None] | None = None,
) -> int:
    """Run the console until end of input or :quit; the exit status (2: bad member/channel).

    `started` is called once the member is chosen, before the first command is read (`run` uses
    it to start the worker, whose posts to console channels appear through `show_post`).
    """
    console = Console(app, stdin, stdout, interactive=interactive, clock=clock)
    errors = stderr or stdout
    try:
        if member_slug:
            console.use_member(member_slug)
        elif console.interactive:
            console.choose_member()
        else:
            raise ConsoleError(_("Say who you are with --as MEMBER when input is not a terminal."))
        if channel_slug:
            console.use_channel(channel_slug)
    except ConsoleError as problem:
        errors.write(terminal_safe(str(problem)) + "\n")
        return 2
    except (OperationalError, ProgrammingError):
        errors.write(
            _(
                "The database is not set up: run `scrutiny-bot db upgrade` and "
                "`scrutiny-bot config load`, or `scrutiny-bot run`, which does both."
            )
            + "\n"
        )
        return 2
    if started is not None:
        started(console)
    try:
        console.loop()
    except KeyboardInterrupt:
        console.write("\n")
    return 0
