"""Teams' senders for the outbox: a channel's Workflows webhook, else Graph channel messages
(`bot.microsoft365.graph.GraphMessenger`, once the service account has signed in).

Through a Workflows webhook there is no history to look in: `find_posted` returns None, so a
post whose webhook call timed out after Teams accepted it can appear twice (docs/teams.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from bot.domain import Platform
from bot.microsoft365.graph import (
    USER_SCOPES,
    GraphMessenger,
    classify,
    graph_client,
    user_credential,
)
from bot.outbox import Messenger, PermanentError, Target
from bot.rendering.payload import payload_card
from bot.rendering.teams_cards import card_message
from bot.settings import Settings


class WebhookMessenger:
    """Posts cards to a Teams Workflows webhook (a channel's webhook_url)."""

    platform = Platform.TEAMS

    def __init__(self, *, timeout: float = 30.0, client: httpx.Client | None = None) -> None:
        self.client = client or httpx.Client(timeout=timeout)

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """POST the card message; Workflows answers 202 with no message id, so the id is ours."""
        if not target.webhook_url:
            raise PermanentError(f"channel {target.slug} has no webhook_url")
        try:
            response = self.client.post(
                target.webhook_url, json=card_message(payload_card(payload))
            )
            response.raise_for_status()
        except Exception as error:
            raise classify(error) from error
        return f"webhook:{key}"

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """Always None: a webhook keeps no history we could search."""
        return None


class TeamsMessenger:
    """The outbox's Teams messenger: the channel's webhook when it has one, else Graph."""

    platform = Platform.TEAMS

    def __init__(self, webhook: Messenger, graph: Messenger | None) -> None:
        self.webhook = webhook
        self.graph = graph

    @property
    def client_timeout(self) -> float:
        """The longer of its routes' timeouts: the outbox lets an uncertain post settle past
        it before looking (only Graph channel messages can be searched; webhooks cannot)."""
        routes = (self.webhook, self.graph)
        return max(float(getattr(route, "client_timeout", 0.0) or 0.0) for route in routes)

    def _for(self, target: Target) -> Messenger:
        if target.webhook_url:
            return self.webhook
        if self.graph is None:
            raise PermanentError(
                f"channel {target.slug} has no webhook_url and no Teams service account is "
                "signed in (scrutiny-bot teams login)"
            )
        return self.graph

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """Post through the channel's route."""
        return self._for(target).post(target, payload, key=key)

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """Look through the channel's route (never found for webhooks)."""
        return self._for(target).find_posted(target, key, since=since)


def teams_messenger(settings: Settings) -> TeamsMessenger:
    """Webhooks always; Graph too once the service account has signed in."""
    credential = user_credential(settings)
    graph = (
        GraphMessenger(graph_client(credential, USER_SCOPES, settings.graph_api_url, retry=False))
        if credential is not None
        else None
    )
    return TeamsMessenger(WebhookMessenger(), graph)
