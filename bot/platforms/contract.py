"""What a chat platform is: the one contract every folder under `bot/platforms/` implements.

A platform
- **receives** members' messages: over HTTP (`endpoint`, routes the web app serves) or in a
  loop of its own (the console's `run_console`, started by its command);
- **replies** by dispatching a neutral `Request` (`ScrutinyApp.dispatch`/`interact`) and
  sending the `Outcome`'s documents, rendered in its `format` by `bot.rendering`;
- **posts through the outbox** with its `Messenger` (`messenger`): `post` sends a stored
  payload under its idempotency key, and `find_posted` **looks up an earlier post by that
  key** so an uncertain attempt is never posted twice;
- **offers forms** (`surfaces`): every platform shows messages; Slack also modals and a home
  tab. A reply for a surface a platform lacks is shown as a message.

The entry points (cli, bootstrap, web) reach platforms only through `bot.platforms.registry`;
the core (domain, services, handlers, rendering, outbox, scheduler) never imports a platform.
Each platform's `__init__` holds its `ChatPlatform` and imports its SDK only when used, so a
worker that posts to Slack never loads Bolt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Platform
from bot.outbox import Messenger
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.app import ScrutinyApp
    from bot.web import WebPlatform

ShowPost = Callable[[str, str], None]
"""Shows a scheduled post in the local console: (channel slug, text)."""

MESSAGE, MODAL, HOME = "message", "modal", "home"
"""The forms a reply can take (`Reply.surface`)."""


class ChatPlatform(Protocol):
    """One chat platform: how it receives, replies, posts and finds its posts."""

    platform: Platform
    format: str
    """The rendering its replies and posts use: "txt", "slack.json" or "teams.json"."""
    surfaces: frozenset[str]
    """The forms it offers (MESSAGE always; MODAL, HOME where the platform has them)."""

    def receives_over_http(self, settings: Settings) -> bool:
        """Whether these settings configure its HTTP endpoint (`serve` starts it)."""
        ...

    def endpoints(self, app: ScrutinyApp) -> list[WebPlatform]:
        """Its routes, health and start/stop hooks for the web app (receive and reply), one
        per way it receives."""
        ...

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """The outbox's sender for it (post, and find a post by its key), or None when these
        settings cannot post to it."""
        ...
