"""Microsoft Teams: the Teams app's bot on the Teams SDK (`sdk_bot`, `auth`, `activities`: POST
/api/messages, every activity's token checked; `invokes`: dialogs, buttons, the message
extension), the app package (`app_package`) and the outbox's sender, posting as the app through
the Bot Connector (`connector_messenger`). Cards are rendering's (`bot.rendering.teams_cards`);
the Microsoft 365 sync is `bot.microsoft365`'s."""

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
        """The Teams app's bot is set up: TEAMS_APP_ID and a credential."""
        return settings.teams_bot_enabled

    def endpoints(self, app: ScrutinyApp) -> list[WebPlatform]:
        """POST /api/messages, the Teams app's bot."""
        if not app.settings.teams_bot_enabled:
            return []
        from bot.platforms.teams.sdk_bot import build_teams_bot

        return [build_teams_bot(app)]

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """The bot posting as the app through the Bot Connector, when it has an app id and a
        secret or certificate to sign in with."""
        if Platform.TEAMS not in settings.posting_platforms:
            return None
        from bot.platforms.teams.connector_messenger import ConnectorMessenger
        from bot.posted_messages import PostedRegister

        return ConnectorMessenger.from_settings(settings, PostedRegister(sessions))


TEAMS = Teams()
