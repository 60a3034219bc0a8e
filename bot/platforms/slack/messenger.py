"""Slack's sender for the outbox, through `slack_sdk`'s WebClient (over kept-alive
connections: `keepalive`).

It implements `bot.outbox.Messenger` and turns the platform's failures into the outbox's
three kinds: RateLimited (429, with Retry-After), TransientError (5xx, timeouts, dropped
connections; `maybe_posted` unless the request provably never left) and PermanentError.
The SDK's own retries are switched off: the outbox retries, after looking in the channel for
the delivery's key, so an SDK retry after a timeout cannot post twice.
An earlier post is found among those Slack reported through message metadata events
(`bot.posted_messages`), not by reading the channel's history.
"""

from __future__ import annotations

import base64
import http.client
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.error import HTTPError, URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.domain import Platform
from bot.outbox import THREAD_ID, UPDATE_ID, PermanentError, RateLimited, Target, TransientError
from bot.platforms.slack.keepalive import KeepAliveWebClient
from bot.posted_messages import PostedRegister
from bot.rendering.slack_blocks import fallback_text, text_blocks
from bot.settings import Settings

METADATA_EVENT = "scrutiny_delivery"
"""Slack message metadata event type carrying a delivery's idempotency key."""
CLIENT_TIMEOUT = 15
"""Seconds the Web API client waits for an answer; the outbox's settle delay is well past it."""

PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "no_text",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "restricted_action",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
    }
)


@dataclass(frozen=True)
class PostFile:
    """A file a post carries (a question pack as Word and Markdown, say)."""

    filename: str
    title: str
    content: bytes


def payload_files(payload: Mapping[str, Any]) -> list[PostFile]:
    """The files stored with a post: `{"filename", "title", "base64"}` or `"content"` (text)."""
    files = []
    for item in payload.get("files") or []:
        raw = item.get("base64")
        content = base64.b64decode(raw) if raw is not None else str(item["content"]).encode()
        files.append(PostFile(str(item["filename"]), str(item.get("title") or ""), content))
    return files


def _retry_after(error: SlackApiError) -> float:
    headers = getattr(error.response, "headers", {}) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(value if isinstance(value, str) else value[0])
            except (TypeError, ValueError, IndexError):
                break
    return 1.0


def _never_sent(error: BaseException) -> bool:
    """True when the request cannot have reached Slack (the connection was refused)."""
    reason = getattr(error, "reason", error)
    return isinstance(reason, ConnectionRefusedError)


def _classify(error: SlackApiError) -> Exception:
    status = getattr(error.response, "status_code", 200)
    code = str(error.response.get("error", "")) if error.response is not None else ""
    if status == 429 or code == "ratelimited":
        return RateLimited(_retry_after(error), f"Slack rate limit ({code or status})")
    if code in PERMANENT_SLACK_ERRORS:
        return PermanentError(f"Slack error {code}")
    # 5xx, internal_error, fatal_error, request_timeout, unknown codes: Slack may have posted.
    return TransientError(f"Slack error {code or status}", maybe_posted=True)


def _slack_message(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stored Block Kit message, or (an older payload) its text in blocks."""
    stored: Mapping[str, Any] = payload.get("slack") or {
        "blocks": text_blocks(str(payload.get("text", ""))),
        "text": fallback_text(str(payload.get("text", ""))),
    }
    return stored


class SlackMessenger:
    """Posts through the Web API with the key in message metadata; finds an earlier post by
    its key among those Slack reported to our events endpoint (`message_metadata_posted`),
    so it needs no scope to read channel histories."""

    platform = Platform.SLACK

    def __init__(self, client: WebClient, register: PostedRegister) -> None:
        self.client = client
        self.register = register

    @classmethod
    def connect(
        cls,
        token: str | None,
        base_url: str,
        register: PostedRegister,
        *,
        timeout: float = CLIENT_TIMEOUT,
    ) -> SlackMessenger:
        """A messenger for `token` at the Web API `base_url`, over kept-alive connections
        (`KeepAliveWebClient`), SDK retries off."""
        client = KeepAliveWebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,
            retry_handlers=[],
        )
        return cls(client, register)

    @classmethod
    def from_settings(
        cls, settings: Settings, register: PostedRegister, *, timeout: float = CLIENT_TIMEOUT
    ) -> SlackMessenger:
        """A messenger for the bot token and API URL in the settings."""
        return cls.connect(
            settings.slack_bot_token, settings.slack_api_url, register, timeout=timeout
        )

    @property
    def client_timeout(self) -> float:
        """Seconds the Web API client waits for an answer (the outbox settles past it)."""
        return float(self.client.timeout)

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except SlackApiError as error:
            raise _classify(error) from error
        except SlackRequestError as error:
            # A file upload's bytes were refused by the upload URL: nothing was shared yet.
            raise TransientError(f"Slack upload failed: {error}", maybe_posted=True) from error
        except HTTPError as error:
            # Outside the Web API's JSON answers (a proxy's 502, say).
            if error.code == 429:
                raise RateLimited(float(error.headers.get("Retry-After", 1) or 1)) from error
            raise TransientError(f"HTTP {error.code}", maybe_posted=error.code >= 500) from error
        except (
            TimeoutError,
            URLError,
            http.client.HTTPException,
            ConnectionError,
            OSError,
        ) as error:
            raise TransientError(
                f"{type(error).__name__}: {error}", maybe_posted=not _never_sent(error)
            ) from error

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """chat.postMessage with blocks, fallback text and the key in metadata; the ts.

        Files in the payload (`payload["files"]`) are uploaded into the message's thread
        afterwards, all in one files_upload_v2 call. If that fails the post is retried as
        "maybe posted": the message is found by its key and the files are uploaded again.
        """
        if UPDATE_ID in payload:
            return self._update(target, payload, str(payload[UPDATE_ID]))
        files = payload_files(payload)
        names = [f.filename for f in files]
        found = self.register.find(Platform.SLACK, target.external_id, key) if files else None
        ts = found.message_id if found is not None else None
        if ts is None:
            slack = _slack_message(payload)
            thread = {"thread_ts": str(payload[THREAD_ID])} if THREAD_ID in payload else {}
            event: dict[str, Any] = {"key": key, **({"files": names} if names else {})}
            response = self._call(
                self.client.chat_postMessage,
                channel=target.external_id,
                text=slack["text"],
                blocks=slack["blocks"],
                metadata={"event_type": METADATA_EVENT, "event_payload": event},
                unfurl_links=False,
                unfurl_media=False,
                **thread,
            )
            ts = str(response["ts"])
        if files:
            try:
                self._upload(target, ts, files)
            except TransientError as problem:
                raise TransientError(str(problem), maybe_posted=True) from problem
            except PermanentError as problem:
                # The message is there: retrying (after finding it) can still add the files.
                raise TransientError(str(problem), maybe_posted=True) from problem
        return ts

    def _update(self, target: Target, payload: Mapping[str, Any], ts: str) -> str:
        """chat.update of our earlier message `ts` with the payload's blocks (updating twice is
        harmless, so an update's own key needs no record)."""
        slack = _slack_message(payload)
        self._call(
            self.client.chat_update,
            channel=target.external_id,
            ts=ts,
            text=slack["text"],
            blocks=slack["blocks"],
        )
        return ts

    def _upload(self, target: Target, ts: str, files: list[PostFile]) -> None:
        self._call(
            self.client.files_upload_v2,
            file_uploads=[
                {"filename": f.filename, "title": f.title, "content": f.content} for f in files
            ],
            channel=target.external_id,
            thread_ts=ts,
        )

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """The ts of our message carrying `key` in the channel, as Slack reported it.

        A message that announced files counts as not posted: whether its files reached the
        thread cannot be seen without reading it, so `post` finds the message and uploads
        them again (files_upload_v2 shares them all in one call, so a failed upload left
        none behind; only an upload whose answer was lost can leave a second copy)."""
        found = self.register.find(Platform.SLACK, target.external_id, key)
        if found is None or found.files:
            return None
        return found.message_id
