"""Slack: the Bolt app over HTTP or Socket Mode (`app`), the shapes of Slack's requests
(`inbound`), and the outbox's Web API sender (`messenger`). Block Kit itself is rendering's
(`bot.rendering.slack_blocks`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from bot.domain import Platform
from bot.outbox import Messenger
from bot.platforms.contract import HOME, MESSAGE, MODAL, ShowPost
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.app import ScrutinyApp
    from bot.web import WebPlatform


class Slack:
    """Slack's `ChatPlatform`."""

    platform = Platform.SLACK
    format = "slack.json"
    surfaces = frozenset({MESSAGE, MODAL, HOME})

    def receives_over_http(self, settings: Settings) -> bool:
        """A bot token, and a signing secret (HTTP) or an app token (Socket Mode)."""
        return bool(
            settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token)
        )

    def endpoints(self, app: ScrutinyApp) -> list[WebPlatform]:
        """The Bolt app's routes (and its Socket Mode link when SLACK_APP_TOKEN is set)."""
        from bot.platforms.slack.app import build_slack

        return [build_slack(app)]

    def messenger(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        *,
        show_post: ShowPost | None = None,
    ) -> Messenger | None:
        """The Web API sender when SLACK_BOT_TOKEN is set."""
        if Platform.SLACK not in settings.posting_platforms:
            return None
        from bot.platforms.slack.messenger import SlackMessenger
        from bot.posted_messages import PostedRegister

        return SlackMessenger.from_settings(settings, PostedRegister(sessions))


SLACK = Slack()
