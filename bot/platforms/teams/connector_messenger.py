"""Teams' sender for the outbox: posts as the app through the Bot Connector, with the Teams
SDK's API client (`microsoft_teams.api.ApiClient`) and the bot's own app-only token.

- A post to a channel (`external_id` "<team group id>/<channel thread id>") starts a new
  thread: create a conversation in the channel (`isGroup`, `channelData.channel.id`), the
  Bot Framework's "proactive message to a channel". A chat's `external_id` is its
  conversation id, and the post is sent into it.
- A payload with `thread_of` (an earlier delivery's key) replies in that post's thread when
  the earlier post was sent (the sender adds its activity id as `thread_id`), else starts a
  thread of its own.
- A payload with `update_of` (an earlier delivery's key) replaces that post's card in place
  (PUT .../activities/{id}, the id the sender adds as `update_id`).

The connector has no search, so each post's activity id is recorded under its delivery key
(`bot.posted_messages`) the moment it succeeds, with the thread a reply went into (a link to
the post names it: `bot.permalinks.teams_message_url`), and `find_posted` looks the key up
there. A post whose answer never came (a timeout, a 5xx) is `maybe_posted`: if its id was not
recorded the outbox posts again, so only a post whose answer was lost after Teams took it can
appear twice (docs/teams.md).

Errors are classified as for the bot's direct replies (`bot.platforms.teams.delivery`): 429 is
RateLimited with the connector's Retry-After; 5xx, timeouts and dropped connections are
transient; other 4xx are permanent. The Bot Framework limits a bot per conversation (thread)
to about 7 messages a second, 8 in 2 seconds, 60 in 30 seconds and 1,800 an hour; `PACING`
keeps the outbox's pacer inside the first two, and a 429 holds the channel for its
Retry-After.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Coroutine, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx
from microsoft_teams.api import ApiClient
from microsoft_teams.api.activities.message.message import MessageActivityInput
from microsoft_teams.api.clients.conversation.params import CreateConversationParams
from microsoft_teams.api.models.attachment.attachment import Attachment
from microsoft_teams.common import ClientOptions

from bot.domain import Platform
from bot.outbox import THREAD_ID, UPDATE_ID, Target
from bot.platforms.teams.delivery import classify
from bot.platforms.teams.invokes import dialog_buttons
from bot.posted_messages import PostedRegister
from bot.rendering.payload import payload_card
from bot.rendering.teams_cards import CARD_CONTENT_TYPE
from bot.settings import Settings

CLIENT_TIMEOUT = 15.0
"""Seconds the API client waits for the connector; the outbox settles well past it."""
PACING = 0.5
"""Seconds between two posts to one channel: 2 a second keeps well inside the connector's
7 a second and 8 in 2 seconds per thread, and 60 in 30 seconds for a channel's new threads."""

T = TypeVar("T")


class _Loop:
    """One event loop on its own thread for the async SDK client, shared by the outbox's
    sending threads (the client's connection pool belongs to this loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="teams-connector", daemon=True
        )
        self.thread.start()

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()


def split_channel(external_id: str) -> tuple[str, str | None]:
    """(conversation or channel thread id, team id or None) of a Teams target."""
    team, slash, thread = external_id.partition("/")
    return (thread, team) if slash else (external_id, None)


class ConnectorMessenger:
    """Posts, replies and updates as the app through the Bot Connector (see the module)."""

    platform = Platform.TEAMS

    def __init__(
        self,
        api: ApiClient,
        register: PostedRegister,
        *,
        tenant_id: str | None = None,
        client_timeout: float = CLIENT_TIMEOUT,
    ) -> None:
        self.api = api
        self.register = register
        self.tenant_id = tenant_id
        self.client_timeout = client_timeout
        self._loop = _Loop()

    @classmethod
    def from_settings(
        cls, settings: Settings, register: PostedRegister, *, timeout: float = CLIENT_TIMEOUT
    ) -> ConnectorMessenger:
        """A messenger for the bot's app id, credential and TEAMS_SERVICE_URL."""
        from bot.platforms.teams.auth import OutboundTokens, cloud

        tokens = OutboundTokens(settings)
        scope = settings.teams_bot_scope

        async def token() -> str:
            return await tokens(scope)

        api = ApiClient(
            settings.teams_service_url,
            ClientOptions(timeout=timeout, token=token),
            cloud=cloud(settings),
        )
        return cls(api, register, tenant_id=settings.teams_tenant_id, client_timeout=timeout)

    def _call(self, work: Awaitable[T]) -> T:
        async def run() -> T:
            return await work

        try:
            return self._loop.run(run())
        except (httpx.HTTPError, TimeoutError) as error:
            raise classify(error) from error

    @staticmethod
    def _activity(payload: Mapping[str, Any]) -> MessageActivityInput:
        card = Attachment(
            content_type=CARD_CONTENT_TYPE, content=dialog_buttons(payload_card(payload))
        )
        return MessageActivityInput().add_attachments(card)

    def _conversation_of(self, target: Target, activity_id: str) -> str:
        """The conversation an earlier post of ours lives in: its own thread in a channel."""
        conversation, team = split_channel(target.external_id)
        return f"{conversation};messageid={activity_id}" if team else conversation

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """Post (or reply, or update) the payload's card; the activity id, recorded under key."""
        activity = self._activity(payload)
        conversation, team = split_channel(target.external_id)
        if UPDATE_ID in payload:
            earlier = str(payload[UPDATE_ID])
            self._call(
                self.api.conversations.activities(self._conversation_of(target, earlier)).update(
                    earlier, activity
                )
            )
            # The update's own key is not recorded: updating again is harmless.
            return earlier
        root: str | None = None
        if THREAD_ID in payload:
            root = str(payload[THREAD_ID])
            sent = self._call(
                self.api.conversations.activities(self._conversation_of(target, root)).reply(
                    root, activity
                )
            )
            activity_id = sent.id
        elif team is not None:
            params = CreateConversationParams(
                isGroup=True,
                channel_data={"channel": {"id": conversation}},
                activity=activity,
                tenant_id=self.tenant_id,
            )
            created = self._call(self.api.conversations.create(params))
            activity_id = created.activity_id or created.id.rpartition("=")[2]
        else:
            sent = self._call(self.api.conversations.activities(conversation).create(activity))
            activity_id = sent.id
        # Recorded at once: the connector cannot be searched for it later.
        self.register.remember(self.platform, target.external_id, activity_id, key, thread_id=root)
        return activity_id

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """The activity id recorded when the post under `key` succeeded, if it did."""
        found = self.register.find(self.platform, target.external_id, key)
        return found.message_id if found is not None else None
