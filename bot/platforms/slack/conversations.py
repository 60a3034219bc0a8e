"""What the bot asks Slack about a conversation before answering in it.

- Group DMs (multi-person direct messages, "mpim"): a reply there is read by every member of
  the conversation, so the bot lists them (`conversations.members`, scope `mpim:read`) and
  the reply is filtered for all of them together (`Request.readers`). Whether a conversation
  is a group DM comes with `message` events (`channel_type`); an `app_mention` does not say,
  so the bot asks once per conversation (`conversations.info`) and remembers the answer.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

GROUP_DM = "mpim"
MEMBERS_PAGE = 200
"""Members asked for per `conversations.members` page (a group DM has at most nine)."""
MAX_MEMBER_PAGES = 10
KNOWN_KINDS = 4096
"""Conversations whose kind (group DM or not) is remembered."""
_DIRECT_ID = re.compile(r"^D[A-Z0-9]+$")


class MembersUnknown(Exception):
    """The members of a group DM could not be listed, so nothing may be answered there."""


def mentions(text: str, user_id: str | None) -> bool:
    """Whether `text` @mentions `user_id` (Slack writes `<@U123>` or `<@U123|name>`)."""
    return (
        bool(user_id) and re.search(rf"<@{re.escape(user_id or '')}(\|[^>]*)?>", text) is not None
    )


class Conversations:
    """Looks up group DMs and their members through the Web API."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client
        self._kinds: OrderedDict[str, bool] = OrderedDict()
        self._bot: str | None = None

    async def bot_user_id(self) -> str | None:
        """The bot's own user id (`auth.test`, asked once), for a delivery that does not name it."""
        if self._bot is None:
            try:
                response = await self.client.auth_test()
            except (SlackApiError, aiohttp.ClientError, TimeoutError) as problem:
                log.warning("Slack: auth.test failed: %r", problem)
                return None
            user = response.get("user_id")
            self._bot = user if isinstance(user, str) and user else None
        return self._bot

    async def is_group_dm(self, channel: str | None, channel_type: str | None) -> bool:
        """Whether `channel` is a group DM: from the event's `channel_type` when it has one,
        else asked once (`conversations.info`). A conversation Slack will not describe is
        taken as a channel (the bot then answers only what an unregistered channel may read)."""
        if channel_type is not None:
            return channel_type == GROUP_DM
        if not channel or _DIRECT_ID.match(channel):
            return False
        known = self._kinds.get(channel)
        if known is not None:
            return known
        try:
            response = await self.client.conversations_info(channel=channel)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as problem:
            log.warning(
                "Slack: could not tell what kind of conversation %s is: %r", channel, problem
            )
            return False
        info = response.get("channel")
        group = isinstance(info, dict) and info.get("is_mpim") is True
        self._kinds[channel] = group
        while len(self._kinds) > KNOWN_KINDS:
            self._kinds.popitem(last=False)
        return group

    async def members(self, channel: str, *, leaving_out: tuple[str, ...] = ()) -> tuple[str, ...]:
        """Every member of a group DM (all pages) but those in `leaving_out` (the asker, the bot);
        MembersUnknown when Slack does not list them all."""
        found: list[str] = []
        cursor: str | None = None
        try:
            for _ in range(MAX_MEMBER_PAGES):
                response = await self.client.conversations_members(
                    channel=channel, limit=MEMBERS_PAGE, cursor=cursor
                )
                page = response.get("members")
                if not isinstance(page, list) or not all(isinstance(m, str) for m in page):
                    raise MembersUnknown(f"{channel}: conversations.members gave no member list")
                found += page
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if cursor is None:
                    break
            else:
                raise MembersUnknown(f"{channel}: more than {MAX_MEMBER_PAGES} pages of members")
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as problem:
            raise MembersUnknown(f"{channel}: {problem!r}") from problem
        return tuple(dict.fromkeys(m for m in found if m not in leaving_out))
