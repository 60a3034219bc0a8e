"""Microsoft Teams: the Teams app's bot on the Teams SDK (`sdk_bot`, `auth`: POST
/api/messages, every activity's token checked), the older outgoing webhook (`webhook`:
@mentions in a channel, answered with Adaptive Cards), the app package (`app_package`) and the
outbox's senders (`messengers`). Cards are rendering's (`bot.rendering.teams_cards`); Microsoft
365 sync and sign-in are `bot.microsoft365`'s."""

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
        """The Teams app's bot (TEAMS_APP_ID and a credential) or the outgoing webhook
        (TEAMS_WEBHOOK_SECRET) is set up."""
        return settings.teams_bot_enabled or settings.teams_enabled

    def endpoints(self, app: ScrutinyApp) -> list[WebPlatform]:
        """POST /api/messages (the bot) and POST /teams/messages (the outgoing webhook), each
        when it is set up."""
        found: list[WebPlatform] = []
        if app.settings.teams_bot_enabled:
            from bot.platforms.teams.sdk_bot import build_teams_bot

            found.append(build_teams_bot(app))
        if app.settings.teams_enabled:
            from bot.platforms.teams.webhook import build_teams

            found.append(build_teams(app))
        return found

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """The bot posting as the app through the Bot Connector when the bot is set up (its
        app id and a secret or certificate); else Workflows webhooks, and Graph once signed in."""
        if Platform.TEAMS not in settings.posting_platforms:
            return None
        if settings.teams_bot_enabled and settings.teams_credential != "managed identity":
            from bot.platforms.teams.connector_messenger import ConnectorMessenger
            from bot.posted_messages import PostedRegister

            return ConnectorMessenger.from_settings(settings, PostedRegister(sessions))
        from bot.platforms.teams.messengers import teams_messenger

        return teams_messenger(settings)


TEAMS = Teams()
