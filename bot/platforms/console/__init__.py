"""The console: a member talks to the bot in a terminal (`app`, a read-reply loop started by
`scrutiny-bot console`/`run`), and scheduled posts are printed there (`messenger`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Platform
from bot.outbox import Messenger
from bot.platforms.contract import MESSAGE, ShowPost
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.app import ScrutinyApp
    from bot.web import WebPlatform


class Console:
    """The console's `ChatPlatform`: it receives in its own loop, never over HTTP."""

    platform = Platform.CONSOLE
    format = "txt"
    surfaces = frozenset({MESSAGE})

    def receives_over_http(self, settings: Settings) -> bool:
        """Never: `run_console` reads the terminal."""
        return False

    def endpoints(self, app: ScrutinyApp) -> list[WebPlatform]:
        """None: the console receives in a terminal loop (`scrutiny-bot console`)."""
        return []

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """Always: posts to console channels are printed (or shown by the console)."""
        from bot.platforms.console.messenger import ConsoleMessenger

        return ConsoleMessenger(show_post)


CONSOLE = Console()
