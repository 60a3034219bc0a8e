"""The app factory and dispatcher: one place where a neutral request becomes a rendered reply."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Hashable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.answer_cache import AnswerCache
from bot.clock import CLOCK, Clock
from bot.context import Command, Context, Interaction, UserError
from bot.db import WRITES, unit_of_work
from bot.domain import Platform, Role
from bot.messages import Reply, Request
from bot.models import Member
from bot.register_version import register_version
from bot.router import Router
from bot.runtime import Runtime
from bot.settings import Settings
from bot.text_input import MESSAGE, TextRefused, clean, clean_values
from bot.visibility import (
    Audience,
    audience_of_channel,
    audience_of_member,
    audience_of_unknown_channel,
    together,
)

log = logging.getLogger(__name__)

FREE_TEXT_COMMAND = "find"
"""Where text that starts with no known command goes (an @mention in plain words)."""


@dataclass
class Outcome:
    """A rendered reply: a document in the requested format per language, and plain text."""

    reply: Reply
    languages: tuple[str, ...]
    documents: list[Any]
    """What a platform sends, one per language: text, a Block Kit message or view (a dict),
    or an Adaptive Card (a dict); see `bot.rendering.Renderer.document`."""
    text: str
    cached: bool = False
    """Whether it came from the answer cache (`bot.answer_cache`) rather than the handler."""

    @property
    def bodies(self) -> list[str]:
        """Each language's document as text (JSON for the chat formats), for logs and tests."""
        return [
            doc if isinstance(doc, str) else json.dumps(doc, ensure_ascii=False)
            for doc in self.documents
        ]


class ScrutinyApp(Runtime):
    """The bot without any platform: the runtime plus registered handlers."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, clock: Clock = CLOCK
    ) -> None:
        super().__init__(settings, engine, clock)
        self.commands: dict[str, Command] = {}
        self.aliases: dict[str, str] = {}
        self.interactions: dict[str, Interaction] = {}
        self.answers: AnswerCache[Outcome] = AnswerCache(settings.answer_cache_size)
        """Rendered answers to read-only commands, this process's own."""

    # -- registration ---------------------------------------------------------------------
    def register(self, router: Router) -> None:
        """Add a feature's commands and interactions; a name registered twice is an error."""
        for command in router.commands:
            for name in (command.name, *command.aliases):
                if name in self.aliases:
                    raise ValueError(f"command name {name!r} registered twice ({router.name})")
                self.aliases[name] = command.name
            self.commands[command.name] = command
        for interaction in router.interactions:
            if interaction.action_id in self.interactions:
                raise ValueError(f"action {interaction.action_id!r} registered twice")
            self.interactions[interaction.action_id] = interaction

    def visible_commands(self, member: Member) -> list[Command]:
        """Commands this member may run, in registration order (for help)."""
        return [c for c in self.commands.values() if _allowed(c.roles, member)]

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, request: Request, fmt: str = "txt") -> Outcome:
        """Run the command in `request.text` and render its reply; never raises for user input.

        The text is cleaned first (`bot.text_input`): a hidden control character is refused
        here, before any command reads it."""
        refused: TextRefused | None = None
        try:
            text = clean(request.text, MESSAGE)
        except TextRefused as problem:
            refused, text = problem, ""
        command, args_text = self._command(text)
        keeps = command.cacheable and self.answers.size > 0 and refused is None
        with unit_of_work(self.sessions, writes=command.writes) as session:
            # The version first: every row the answer reads (the member and channel too) is
            # then at least as new as the version it is kept under.
            version = register_version(session) if keeps else None
            ctx_or_reply = self._context(session, request, fmt)
            if isinstance(ctx_or_reply, Outcome):
                return ctx_or_reply
            ctx = ctx_or_reply
            if refused is not None:
                reply = Reply("common/error", {"message": refused.message(ctx.t._)})
                return self._render(reply, ctx.languages, fmt, request.platform)
            key = None
            if version is not None:
                key = _answer_key(version, command, args_text, request, ctx, fmt)
                kept = self.answers.get(key)
                if kept is not None:
                    kept.cached = True
                    return kept
            reply = self._run(command.roles, command.handler, _with_text(request, args_text), ctx)
            outcome = self._render(reply, ctx.languages, fmt, request.platform)
            if key is not None and _keepable(reply):
                self.answers.put(key, outcome)
            return outcome

    def _command(self, text: str) -> tuple[Command, str]:
        """The command cleaned `text` names, and the words after its name."""
        words = text.split()
        name = words[0].lower() if words else "help"
        if name.startswith("/"):
            name = name[1:]
        canonical = self.aliases.get(name)
        if canonical is None:
            # Words that start with no command are plain language (an @mention): `find` reads
            # them, and for a mistyped command it suggests the command that was meant.
            return self.commands[FREE_TEXT_COMMAND], text
        return self.commands[canonical], text[len(words[0]) :].strip() if words else ""

    def reads_only(self, text: str) -> bool:
        """Whether `dispatch` of `text` only reads (its command declares `writes=False`, or the
        text is refused before any command runs), so running it again changes nothing."""
        try:
            cleaned = clean(text, MESSAGE)
        except TextRefused:
            return True
        return not self._command(cleaned)[0].writes

    def interacts_read_only(self, action_id: str) -> bool:
        """Whether the button or form `action_id` only reads (an unknown one runs nothing)."""
        interaction = self.interactions.get(action_id)
        return interaction is None or not interaction.writes

    def interact(self, action_id: str, request: Request, fmt: str = "txt") -> Outcome:
        """Run a button or modal handler by its id."""
        interaction = self.interactions.get(action_id)
        writes = interaction.writes if interaction is not None else False
        with unit_of_work(self.sessions, writes=writes) as session:
            ctx_or_reply = self._context(session, request, fmt)
            if isinstance(ctx_or_reply, Outcome):
                return ctx_or_reply
            ctx = ctx_or_reply
            try:
                request = dataclasses.replace(
                    request,
                    text=clean(request.text, MESSAGE),
                    values=clean_values(request.values),
                )
            except TextRefused as problem:
                message = problem.message(ctx.t._)
                refused = Reply(
                    "common/error", {"message": message}, field_errors={problem.field.key: message}
                )
                return self._render(refused, ctx.languages, fmt, request.platform)
            if interaction is None:
                reply = Reply(
                    "common/error", {"message": ctx.t._("That button is no longer supported.")}
                )
            else:
                reply = self._run(interaction.roles, interaction.handler, request, ctx)
            return self._render(reply, ctx.languages, fmt, request.platform)

    def run_command(self, name: str, request: Request, ctx: Context) -> Reply:
        """Run another command (by name or alias) for this request, with that command's role
        check: for a command that offers another's flow (`decision new`)."""
        command = self.commands[self.aliases[name]]
        return self._run(command.roles, command.handler, request, ctx)

    def _run(
        self, roles: frozenset[Role], handler: object, request: Request, ctx: Context
    ) -> Reply:
        if not _allowed(roles, ctx.member):
            names = ", ".join(sorted(r.value for r in roles))
            return Reply(
                "common/error",
                {
                    "message": ctx.t._("Only members with the role {roles} can do that.").format(
                        roles=names
                    )
                },
            )
        session = ctx.session
        # A failed handler leaves nothing behind: a unit that writes runs it in a savepoint,
        # and a read-only one (nothing of its own to keep) is rolled back whole instead, which
        # spares every read-only command the savepoint's two statements.
        writes = session.info.get(WRITES, True)
        try:
            with session.begin_nested() if writes else nullcontext():
                return handler(request, ctx)  # type: ignore[operator,no-any-return]
        except UserError as problem:
            if not writes:
                session.rollback()
            return Reply("common/error", {"message": str(problem)})
        except Exception:
            if not writes:
                session.rollback()
            log.exception("handler failed for %r", request.text)
            return Reply(
                "common/error",
                {
                    "message": ctx.t._(
                        "Something went wrong on our side; nothing was changed. Please try again."
                    )
                },
            )

    def _render(
        self,
        reply: Reply,
        languages: tuple[str, ...],
        fmt: str,
        platform: Platform | None = None,
        *,
        from_text: bool = False,
    ) -> Outcome:
        """Render `reply` in each language; `from_text` shows its text rendering in `fmt`."""
        renderer = self.renderer
        texts = [renderer.render(reply, "txt", language, platform) for language in languages]
        if from_text:
            documents = [
                renderer.from_text(fmt, t, lang) for t, lang in zip(texts, languages, strict=True)
            ]
        elif fmt == "txt":
            documents = list(texts)
        else:
            documents = [renderer.document(reply, fmt, lang, platform) for lang in languages]
        return Outcome(reply, languages, documents, "\n\n".join(texts))

    def _context(self, session: Session, request: Request, fmt: str) -> Context | Outcome:
        now = request.now or self.clock.now()
        member = self.find_member(session, request.platform, request.user_id)
        if member is None:
            # Answered before a member's format is known: the text, shown in the format.
            secretariat = self.secretariat_channel_name(session, request.platform)
            reply = Reply("common/unknown_user", {"secretariat": secretariat})
            language = (self.settings.scrutiny_language,)
            return self._render(reply, language, fmt, request.platform, from_text=True)
        channel = None
        audience = audience_of_member(member)
        if request.readers is not None:
            audience = audience.together_with(self._readers_audience(session, request))
        elif not request.is_direct and request.channel_id is not None:
            channel = self.find_channel(session, request.platform, request.channel_id)
            if channel is None:
                audience = audience.together_with(audience_of_unknown_channel(request.channel_id))
            else:
                audience = audience.together_with(
                    audience_of_channel(channel, self.partner_slugs(session))
                )
        return Context(
            self, session, member, channel, audience, (member.language,), now, request.platform
        )

    def _readers_audience(self, session: Session, request: Request) -> Audience:
        """Everyone else in a group conversation; someone the bot does not know reads as an
        unregistered channel would (lowest clearance, unknown readers)."""
        audiences = []
        for user_id in request.readers or ():
            reader = self.find_member(session, request.platform, user_id)
            audiences.append(
                audience_of_member(reader)
                if reader is not None
                else audience_of_unknown_channel("unregistered member")
            )
        return together(audiences)


def _allowed(roles: Iterable[Role], member: Member) -> bool:
    required = set(roles)
    return not required or bool(
        required & {Role(r) for r in member.roles if r in Role._value2member_map_}
    )


def _answer_key(
    version: int, command: Command, args_text: str, request: Request, ctx: Context, fmt: str
) -> tuple[Hashable, ...]:
    """Everything a read-only answer depends on (see `bot.answer_cache`)."""
    member, audience = ctx.member, ctx.audience
    return (
        version,
        request.platform,
        member.id,
        member.partner_id,
        tuple(sorted(member.roles)),
        ctx.languages,
        ctx.channel.id if ctx.channel is not None else None,
        request.channel_id,
        request.is_direct,
        request.readers,
        audience,
        audience.label,
        fmt,
        command.name,
        " ".join(args_text.split()),
        ctx.now.replace(second=0, microsecond=0),
    )


def _keepable(reply: Reply) -> bool:
    # Errors are answered afresh (a passing fault must not stick), and forms are never kept:
    # a form may carry what only its own request knew.
    return reply.template != "common/error" and reply.surface != "modal" and not reply.field_errors


def _with_text(request: Request, text: str) -> Request:
    return dataclasses.replace(request, text=text)


def create_app(
    settings: Settings, engine: Engine | None = None, clock: Clock = CLOCK
) -> ScrutinyApp:
    """Build the bot and wire in every feature's router explicitly."""
    from handlers import ROUTERS

    app = ScrutinyApp(settings, engine, clock)
    for router in ROUTERS:
        app.register(router)
    missing = {"help", FREE_TEXT_COMMAND} - set(app.commands)
    if missing:
        raise ValueError(f"the dispatcher needs the command(s) {', '.join(sorted(missing))}")
    return app
