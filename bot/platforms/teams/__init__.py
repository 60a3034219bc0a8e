"""Microsoft Teams: the outgoing webhook (`webhook`: @mentions in a channel, answered with
Adaptive Cards) and the outbox's senders (`messengers`: a channel's Workflows webhook, else
Graph). Cards are rendering's (`bot.rendering.teams_cards`); Microsoft 365 sync and sign-in
are `bot.microsoft365`'s."""

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


class Teams:
    """Teams' `ChatPlatform`."""

    platform = Platform.TEAMS
    format = "teams.json"
    surfaces = frozenset({MESSAGE})

    def receives_over_http(self, settings: Settings) -> bool:
        """TEAMS_WEBHOOK_SECRET is set."""
        return settings.teams_enabled

    def endpoint(self, app: ScrutinyApp) -> WebPlatform:
        """POST /teams/messages, the outgoing webhook."""
        from bot.platforms.teams.webhook import build_teams

        return build_teams(app)

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """Workflows webhooks always, Graph once signed in, when Teams or Graph is set up."""
        if Platform.TEAMS not in settings.posting_platforms:
            return None
        from bot.platforms.teams.messengers import teams_messenger

        return teams_messenger(settings)


TEAMS = Teams()
