"""The chat platforms, in one table: entry points ask it instead of `if platform == ...`.

Adding a platform: a folder under `bot/platforms/` whose `__init__` holds a `ChatPlatform`
(bot/platforms/contract.py), and one line in `PLATFORMS` (README: "How to add a platform").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Platform
from bot.outbox import Messenger
from bot.platforms.console import CONSOLE
from bot.platforms.contract import ChatPlatform, ShowPost
from bot.platforms.slack import SLACK
from bot.platforms.teams import TEAMS
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.app import ScrutinyApp
    from bot.web import WebPlatform

PLATFORMS: Mapping[Platform, ChatPlatform] = {
    chat.platform: chat for chat in (CONSOLE, SLACK, TEAMS)
}


def receiving_over_http(settings: Settings) -> list[ChatPlatform]:
    """The platforms these settings configure to receive over HTTP."""
    return [chat for chat in PLATFORMS.values() if chat.receives_over_http(settings)]


def endpoints(app: ScrutinyApp) -> list[WebPlatform]:
    """The HTTP endpoints of every platform configured to receive, for `serve`."""
    return [
        endpoint for chat in receiving_over_http(app.settings) for endpoint in chat.endpoints(app)
    ]


def messengers(
    settings: Settings, sessions: sessionmaker[Session], *, show_post: ShowPost | None = None
) -> dict[Platform, Messenger]:
    """The outbox's senders this process can use: every platform the settings can post to
    (the console always)."""
    found: dict[Platform, Messenger] = {}
    for platform, chat in PLATFORMS.items():
        messenger = chat.messenger(settings, sessions, show_post=show_post)
        if messenger is not None:
            found[platform] = messenger
    return found
