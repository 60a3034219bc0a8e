"""A small router: handler modules register commands and interactive actions by decorator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.context import Command, Handler, Interaction
from bot.domain import Role


@dataclass
class Router:
    """Collects a feature's commands and interactions; `create_app` registers it."""

    name: str
    commands: list[Command] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)

    def command(
        self,
        name: str,
        *,
        summary: str,
        usage: str = "",
        aliases: tuple[str, ...] = (),
        roles: tuple[Role, ...] = (),
        writes: bool = True,
        cached: bool = True,
    ) -> Callable[[Handler], Handler]:
        """Register a subcommand. `summary` and `usage` are gettext message ids for help;
        `writes=False` declares that it only reads (the dispatcher takes no write lock, and
        keeps its answers unless `cached=False`: for one that shows the outbox or the audit
        log, which the register's version does not follow)."""

        def register(handler: Handler) -> Handler:
            self.commands.append(
                Command(
                    name,
                    handler,
                    summary,
                    usage,
                    tuple(aliases),
                    frozenset(roles),
                    writes,
                    cached,
                )
            )
            return handler

        return register

    def action(
        self, action_id: str, *, roles: tuple[Role, ...] = (), writes: bool = True
    ) -> Callable[[Handler], Handler]:
        """Register a handler for a button or modal with this id (`writes` as for commands)."""

        def register(handler: Handler) -> Handler:
            self.interactions.append(Interaction(action_id, handler, frozenset(roles), writes))
            return handler

        return register
