"""The bot in Slack: a Bolt `AsyncApp` turning Slack payloads into neutral requests.

Slack's rules kept here:
- The endpoint checks every request before Bolt parses anything (`slack_inbound`): a body
  over the cap gets 413; a missing or wrong signature, or a timestamp that is not a number or
  is more than five minutes from the clock, gets 401; a signed body that is not one of the
  requests the bot handles, field by field, gets 400. No listener runs for any of them.
- Every request is acknowledged at once, with no database work on the way; the work
  (`ScrutinyApp.dispatch`, which is synchronous and touches the database) starts straight
  after the ack in a reply worker process (SLACK_REPLY_PROCESSES, `bot.reply_pool`; or in a
  worker thread when that is 0), and the reply goes back through the `response_url` or the
  Web API. Nothing holds a reply back for other requests' acks (a
  read-only command takes no write lock, so it waits on no one). Replies to one response_url
  (buttons on one message) go in the order the requests came. Modal submissions are the
  exception: their ack must carry any field errors, so they are checked before acknowledging,
  for at most FORM_CHECK_BUDGET seconds; a check that takes longer closes the form and its
  outcome (field errors too) comes as a message, as Slack refuses an ack later than 3 seconds.
- Events are claimed by `event_id` in the `processed_events` table before any work, so a
  retried delivery (`X-Slack-Retry-Num`) or a duplicate is never answered twice.
- Every message and view passes `slack_blocks` (Block Kit limits, paging, escaping).
- Every reply arrives or is reported: when the response_url fails in any way (refused,
  timed out, an error status), the reply goes by the Web API instead; a reply no route
  reaches is logged once, naming the member and what they asked.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

import aiohttp
from pydantic import Field
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import (
    AsyncSlackRequestHandler,
    to_starlette_response,
)
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot import posted_messages
from bot.app import Outcome, ScrutinyApp
from bot.db import unit_of_work
from bot.domain import Platform
from bot.i18n import Translator
from bot.messages import Request
from bot.models import ProcessedEvent
from bot.platforms.inbound import BodyRefused, Shape, ShapeError, load_json, read_capped_body
from bot.platforms.slack.conversations import Conversations, MembersUnknown, mentions
from bot.platforms.slack.inbound import (
    MAX_BODY_BYTES,
    BlockActions,
    EventCallback,
    GlobalShortcut,
    HomeOpenedEvent,
    MentionEvent,
    MessageEvent,
    MessageShortcut,
    MetadataPostedEvent,
    SlackEvent,
    SlashCommand,
    View,
    ViewClosed,
    ViewMetadata,
    ViewSubmission,
    decode_body,
    parse_inbound,
    signature_problem,
)
from bot.platforms.slack.messenger import METADATA_EVENT
from bot.rendering.slack_blocks import (
    MORE_ACTION_ID,
    Block,
    cut,
    fit_message,
    fit_view,
    join_bodies,
    text_blocks,
)
from bot.reply_pool import ReplyPool, Work, failed_reply_text
from bot.settings import Settings
from handlers.welcome import WELCOME

log = logging.getLogger(__name__)

FORMAT = "slack.json"
COMMAND = "/scrutiny"
EVENTS = ("app_mention", "app_home_opened", "message", "message_metadata_posted")
"""Events the bot subscribes to (the manifest lists `message` as `message.im`)."""
DRAFT_SHORTCUT = "question.draft"
"""Callback id of the message shortcut "Ask as a scrutiny question" (the manifest's too)."""
ASK_SHORTCUT = "question.ask"
"""Callback id of the global shortcut "Ask a scrutiny question" (the manifest's too): the same
ask form as the message shortcut, empty."""
PAGE_ACTION_ID = "page"
"""Buttons whose value is the command text of the next page of a list."""
RETRIES = 3
"""How many times a Web API call is retried after a 429, a 500/503 or a dropped connection."""
RESPONSE_URL_TIMEOUT = 10.0
"""Seconds a response_url (with its retries) may take before the reply goes by the Web API."""
FORM_CHECK_BUDGET = 2.0
"""Seconds a form submission's check may hold its ack back. Bolt answers 404 ("listener didn't
call ack") after 3 seconds and Slack shows the member an error, so a check still waiting (on a
busy machine, or on another writer's lock) is not waited for: the form closes, and the outcome,
field errors too, comes as a message."""
FIELD_ERROR_MAX = 150
KEEP_EVENT_IDS = timedelta(days=2)
MAX_KEY = 255
"""Longest idempotency key an outbox row can have (and so a metadata event can carry)."""
PRUNE_EVERY = 500
"""Every so many events, event ids older than KEEP_EVENT_IDS are forgotten."""
WORKERS = 2
"""Threads running database work after the ack (event claims; dispatches too when there are
no reply processes). Few on purpose: each competes with the event loop for the GIL, and the
loop must stay free to acknowledge within Slack's 3 seconds (bench/slack_ack.py measures
both)."""

Clock = Callable[[], datetime]
Ack = Callable[..., Awaitable[Any]]
_T = TypeVar("_T")
_S = TypeVar("_S", bound=Shape)
_E = TypeVar("_E", bound=SlackEvent)
_M = TypeVar("_M", bound=MentionEvent)


def retry_handlers() -> list[AsyncRetryHandler]:
    """Retries for rate limits (waiting Retry-After), server errors and dropped connections."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=RETRIES),
        AsyncConnectionErrorRetryHandler(max_retry_count=RETRIES),
    ]


def response_url_retry_handlers() -> list[AsyncRetryHandler]:
    """Retries for a response_url: rate limits and server errors only. A URL that cannot be
    reached (a proxy allowing only some hosts) is left at once for the Web API."""
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=RETRIES),
    ]


class RouteFailed(Exception):
    """One way of delivering a reply failed (the next is tried)."""


def _failure(problem: Exception) -> str:
    if isinstance(problem, SlackApiError):
        return cut(str(problem.response.get("error") or problem), 200)
    return cut(f"{type(problem).__name__} {problem}".strip(), 200)


# -- mapping Slack payloads to neutral requests ---------------------------------------------
_LEADING_MENTIONS = re.compile(r"^(\s*<@[A-Z0-9]+(\|[^>]*)?>[\s,:]*)+")


def strip_mention(text: str) -> str:
    """The words after the leading @mention(s) of a message addressed to the bot."""
    return _LEADING_MENTIONS.sub("", text or "").strip()


def is_direct(channel_id: str | None, channel_type: str | None = None) -> bool:
    """Whether a conversation is a direct message with the bot (its reader is the member alone)."""
    return channel_type in ("im", "directmessage") or bool(
        channel_id and channel_id.startswith("D")
    )


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,40}$")
_MESSAGE_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")


@dataclass(frozen=True)
class PostedDelivery:
    """What a `message_metadata_posted` event says about one of our scheduled posts."""

    channel: str
    ts: str
    key: str
    files: tuple[str, ...]


def posted_delivery(event: Any, *, app_id: Any) -> PostedDelivery | None:
    """The delivery a `message_metadata_posted` event reports, if it is well formed, posted by
    this app (`app_id`, the envelope's `api_app_id`) and carries our metadata; else None."""
    if not isinstance(event, dict) or not isinstance(app_id, str) or not app_id:
        return None
    metadata = event.get("metadata")
    channel, ts = event.get("channel_id"), event.get("message_ts")
    if (
        event.get("app_id") != app_id
        or not isinstance(metadata, dict)
        or metadata.get("event_type") != METADATA_EVENT
        or not isinstance(channel, str)
        or not _CHANNEL_ID.match(channel)
        or not isinstance(ts, str)
        or not _MESSAGE_TS.match(ts)
    ):
        return None
    payload = metadata.get("event_payload")
    if not isinstance(payload, dict):
        return None
    key, files = payload.get("key"), payload.get("files", [])
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY:
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        return None
    return PostedDelivery(channel, ts, key, tuple(files))


def field_errors_for(view: View, errors: dict[str, str]) -> dict[str, str]:
    """Errors keyed by the view's input block ids; errors for other names go on the first input."""
    block_ids = view.input_block_ids()
    mapped: dict[str, str] = {}
    stray: list[str] = []
    for name, message in errors.items():
        if name in block_ids:
            mapped[name] = cut(message, FIELD_ERROR_MAX)
        else:
            stray.append(f"{name}: {message}")
    if stray and block_ids:
        first = block_ids[0]
        mapped[first] = cut(
            "; ".join([*stray, *([mapped[first]] if first in mapped else [])]), FIELD_ERROR_MAX
        )
    return mapped


def outcome_blocks(outcome: Outcome) -> list[Block]:
    """One list of blocks from every language's document (bilingual: split by a divider)."""
    bodies: list[list[Block]] = []
    for document in outcome.documents:
        if isinstance(document, dict) and isinstance(document.get("blocks"), list):
            bodies.append(document["blocks"])
        elif isinstance(document, list):
            bodies.append(document)
        else:
            # A reply rendered as text (`dispatch` with the text format).
            bodies.append(text_blocks(str(document)))
    return join_bodies(bodies)


def outcome_view(outcome: Outcome, surface: str) -> dict[str, Any] | None:
    """The view a modal or home reply renders to, or None when it has no view of that type."""
    data = outcome.documents[0] if outcome.documents else None
    if isinstance(data, dict) and data.get("type") == surface:
        return dict(data)
    if surface == "home":
        return {"type": "home", "blocks": outcome_blocks(outcome)}
    return None


class _NextPart(Shape):
    """The value of a "show the next part" button: which kept reply, and from which block."""

    k: str
    o: Annotated[int, Field(ge=0)] = 0


@dataclass
class _Part:
    blocks: list[Block]
    text: str
    language: str
    stored: float


class _Parts:
    """Long replies cut by `fit_message`, kept for an hour so "show the next part" works.

    Kept in memory rather than re-running the command: a command may change data, and
    running it again to page its reply could change it twice.
    """

    def __init__(self, size: int = 256, ttl: float = 3600.0) -> None:
        self.size, self.ttl = size, ttl
        self._parts: OrderedDict[str, _Part] = OrderedDict()

    def put(self, blocks: list[Block], text: str, language: str) -> str:
        key = secrets.token_urlsafe(9)
        self._parts[key] = _Part(blocks, text, language, time.monotonic())
        while len(self._parts) > self.size:
            self._parts.popitem(last=False)
        return key

    def get(self, key: str) -> _Part | None:
        part = self._parts.get(key)
        if part is None or time.monotonic() - part.stored > self.ttl:
            self._parts.pop(key, None)
            return None
        return part


@dataclass
class _Where:
    """Where a reply goes: the member, their conversation, and how to reach it."""

    user_id: str
    channel_id: str | None
    direct: bool
    asked: str
    """What the member did (the command, button or form), named when a reply cannot be delivered."""
    response_url: str | None = None
    trigger_id: str | None = None
    thread_ts: str | None = None
    replace: bool = False
    readers: tuple[str, ...] | None = None
    """Everyone else in a group DM, who read the reply too."""


@dataclass
class _Turn:
    """The queue for one response_url: its lock, and how many requests hold or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    holders: int = 0


class Undeliverable(Exception):
    """A reply that no route reached (the response_url and the Web API all failed)."""


@dataclass(frozen=True)
class EventListener(Generic[_E]):
    """An Events API listener: the shape its event must have, and the work it does."""

    shape: type[_E]
    handle: Callable[[EventCallback[_E], Any], Awaitable[None]]


class SlackPlatform:
    """The Bolt app, its HTTP route and (when SLACK_APP_TOKEN is set) its Socket Mode link."""

    name = "slack"

    def __init__(
        self,
        app: ScrutinyApp,
        bolt: AsyncApp,
        *,
        signing_secret: str = "",
        app_token: str | None = None,
        clock: Clock | None = None,
        response_url_timeout: float = RESPONSE_URL_TIMEOUT,
        processes: int = 0,
        form_check_budget: float = FORM_CHECK_BUDGET,
    ) -> None:
        """`processes`: build replies in that many worker processes (0: in worker threads)."""
        self.app = app
        self.bolt = bolt
        self.client: AsyncWebClient = bolt.client
        self.signing_secret = signing_secret
        self.app_token = app_token
        self.clock = clock or app.clock.now
        self.response_url_timeout = response_url_timeout
        self.form_check_budget = form_check_budget
        self.parts = _Parts()
        self.conversations = Conversations(self.client)
        self._socket: AsyncSocketModeHandler | None = None
        self.stats: Counter[str] = Counter()
        """Events handled and duplicates skipped, requests refused (401), too large (413) and
        malformed (400) since start (shown by /healthz)."""
        self._executor: ThreadPoolExecutor | None = None
        self._replies = ReplyPool.maybe(app.settings, processes)
        self._busy = 0
        self._turns: dict[str, _Turn] = {}
        self._session: aiohttp.ClientSession | None = None
        self.events: dict[str, EventListener[Any]] = {
            "app_mention": EventListener(MentionEvent, self._on_mention),
            "app_home_opened": EventListener(HomeOpenedEvent, self._on_home_opened),
            "message": EventListener(MessageEvent, self._on_message),
            "message_metadata_posted": EventListener(MetadataPostedEvent, self._on_metadata_posted),
        }
        """The events listened for (each of EVENTS), with the shape each must have."""
        self._register()

    # -- web app hooks -----------------------------------------------------------------
    @property
    def socket_mode(self) -> bool:
        """Whether events arrive over Socket Mode instead of HTTP."""
        return bool(self.app_token)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """POST /slack/events (requests, commands and interactions), unless in Socket Mode."""
        if self.socket_mode:
            return []
        return [Route("/slack/events", self._endpoint, methods=["POST"])]

    async def _endpoint(self, request: HttpRequest) -> Response:
        """Check a request in the order that costs an attacker most: size, signature, then body
        and shape (see `slack_inbound`); only a request that passed reaches Bolt."""
        try:
            body = await read_capped_body(request, MAX_BODY_BYTES)
        except BodyRefused as refused:
            self.stats["too_large" if refused.status == 413 else "malformed"] += 1
            return refused.response()
        headers = request.headers
        problem = (
            signature_problem(
                self.signing_secret,
                body,
                headers.get("x-slack-request-timestamp"),
                headers.get("x-slack-signature"),
                self.clock(),
            )
            if self.signing_secret
            else "no signing secret is set"
        )
        if problem is not None:
            self.stats["refused"] += 1
            log.warning("Slack: request refused (%s)", problem)
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            inbound = parse_inbound(
                decode_body(body, headers.get("content-type")),
                {name: listener.shape for name, listener in self.events.items()},
            )
            self._check_served(inbound)
        except ShapeError as malformed:
            self.stats["malformed"] += 1
            log.warning("Slack: signed request refused: %s", malformed)
            return malformed.response()
        if inbound is None:
            return Response(status_code=200)
        checked = AsyncBoltRequest(
            body=inbound.model_dump_json(exclude_unset=True),
            query=dict(request.query_params),
            headers={**dict(headers), "content-type": "application/json"},
        )
        return to_starlette_response(await self.bolt.async_dispatch(checked))

    def health(self) -> dict[str, Any]:
        """The mode, and whether Socket Mode is connected."""
        facts: dict[str, Any] = {
            "mode": "socket" if self.socket_mode else "http",
            "working": self._busy,
            "reply_processes": self._replies.processes if self._replies else 0,
            "reply_processes_restarted": self._replies.restarts if self._replies else 0,
            **self.stats,
        }
        if self._socket is not None:
            facts["connected"] = bool(self._socket.client.current_session is not None)
        return facts

    async def startup(self) -> None:
        """Open one HTTP session for every Slack call; connect Socket Mode if configured."""
        # One pooled session instead of slack_sdk's new session (and connection) per call.
        self._session = aiohttp.ClientSession()
        self.client.session = self._session
        if self._replies is not None:
            self._replies.start()
        if self.app_token:
            self._socket = AsyncSocketModeHandler(self.bolt, self.app_token)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]
            log.info("Slack: connected in Socket Mode")

    async def shutdown(self) -> None:
        """Close Socket Mode and the HTTP session."""
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]
            self._socket = None
        if self._session is not None:
            self.client.session = None
            await self._session.close()
            self._session = None
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True)
        if self._replies is not None:
            await self._replies.stop()

    async def _in_worker(self, function: Callable[..., _T], *args: Any, urgent: bool = False) -> _T:
        """Run blocking work (database, rendering) in the platform's worker threads; `urgent`
        work (a form submission, whose ack waits for it) skips their queue."""
        if urgent:
            return await asyncio.to_thread(function, *args)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="slack")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _reply_work(self, work: Work, *args: Any) -> Outcome:
        """`app.dispatch` or `app.interact`: in the reply processes when there are any (they
        cannot hold the GIL the loop acknowledges with), else in the worker threads."""
        if self._replies is not None:
            return await self._replies.run(work, *args)
        method = self.app.dispatch if work == "dispatch" else self.app.interact
        return await self._in_worker(method, *args)

    @asynccontextmanager
    async def _turn(self, response_url: str | None) -> AsyncIterator[None]:
        """Hold the turn of one response_url: work for the same URL (clicks on one message)
        runs, and replies, in the order the requests came; other work does not wait."""
        if response_url is None:
            yield
            return
        turn = self._turns.setdefault(response_url, _Turn())
        turn.holders += 1
        try:
            async with turn.lock:  # asyncio.Lock wakes its waiters first come, first served
                yield
        finally:
            turn.holders -= 1
            if not turn.holders:
                del self._turns[response_url]

    @staticmethod
    def _check_served(inbound: Shape | None) -> None:
        """ShapeError for a well-formed command or shortcut that is not the bot's."""
        if isinstance(inbound, SlashCommand) and inbound.command != COMMAND:
            raise ShapeError(f"command: only {COMMAND} is served here")
        if isinstance(inbound, MessageShortcut) and inbound.callback_id != DRAFT_SHORTCUT:
            raise ShapeError(f"callback_id: only the shortcut {DRAFT_SHORTCUT} is served here")
        if isinstance(inbound, GlobalShortcut) and inbound.callback_id != ASK_SHORTCUT:
            raise ShapeError(f"callback_id: only the shortcut {ASK_SHORTCUT} is served here")

    # -- listeners ---------------------------------------------------------------------
    def _register(self) -> None:
        bolt = self.bolt
        bolt.command(COMMAND)(self._listener(SlashCommand, self._on_command))
        for event in EVENTS:
            bolt.event(event)(self._event_listener(self.events[event]))
        bolt.shortcut({"type": "message_action", "callback_id": DRAFT_SHORTCUT})(
            self._listener(MessageShortcut, self._on_message_shortcut)
        )
        bolt.shortcut({"type": "shortcut", "callback_id": ASK_SHORTCUT})(
            self._listener(GlobalShortcut, self._on_global_shortcut)
        )
        bolt.block_action(re.compile(".*"))(self._listener(BlockActions, self._on_block_action))
        bolt.view_submission(re.compile(".*"))(
            self._listener(ViewSubmission, self._on_view_submission, ack_first=False)
        )
        bolt.view_closed(re.compile(".*"))(self._listener(ViewClosed, self._on_view_closed))

    def _refuse_shape(self, problem: ShapeError) -> None:
        self.stats["malformed"] += 1
        log.warning("Slack: malformed request ignored: %s", problem)

    def _listener(
        self,
        shape: type[_S],
        handle: Callable[[_S, Ack], Awaitable[None]],
        *,
        ack_first: bool = True,
    ) -> Callable[..., Awaitable[None]]:
        """A Bolt listener that acknowledges (unless the work must answer in the ack), checks
        the body's shape, and hands the typed request to `handle`."""

        async def listener(ack: Ack, body: dict[str, Any]) -> None:
            with self._working():
                if ack_first:
                    await ack()
                try:
                    payload = shape.parse(body)
                except ShapeError as problem:
                    self._refuse_shape(problem)
                    if not ack_first:
                        await ack()
                    return
                await handle(payload, ack)

        return listener

    def _event_listener(self, listener: EventListener[Any]) -> Callable[..., Awaitable[None]]:
        """A Bolt event listener (Bolt has acknowledged already) checking the event's shape."""

        async def on_event(body: dict[str, Any], request: Any) -> None:
            with self._working():
                try:
                    delivery = EventCallback[listener.shape].parse(body)  # type: ignore[name-defined]
                except ShapeError as problem:
                    self._refuse_shape(problem)
                    return
                await listener.handle(delivery, request)

        return on_event

    @contextmanager
    def _working(self) -> Iterator[None]:
        """Count a listener's work while it runs (/healthz shows how many are working)."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1

    def _request(self, where: _Where, text: str, values: dict[str, Any] | None = None) -> Request:
        return Request(
            platform=Platform.SLACK,
            user_id=where.user_id,
            text=text,
            channel_id=where.channel_id,
            is_direct=where.direct,
            now=self.clock(),
            values=values or {},
            readers=where.readers,
        )

    async def _on_command(self, command: SlashCommand, _ack: Ack) -> None:
        where = _Where(
            user_id=command.user_id,
            channel_id=command.channel_id,
            direct=is_direct(command.channel_id, command.channel_name),
            asked=f"{COMMAND} {command.text}".strip(),
            response_url=command.response_url or None,
            trigger_id=command.trigger_id,
        )
        await self._guard(where, self._dispatch_and_deliver(where, command.text))

    async def _on_mention(self, delivery: EventCallback[_M], request: Any) -> None:
        event = delivery.event
        if event.bot_id:
            return  # a bot's message (our own included) is never a member's question
        text = strip_mention(event.text)
        where = _Where(
            user_id=event.user,
            channel_id=event.channel,
            direct=is_direct(event.channel, event.channel_type),
            asked=f"@mention {text}",
            thread_ts=event.thread_ts or event.ts,
        )
        if not where.user_id:
            return
        bot = delivery.bot_user_id
        await self._once(
            delivery, request, lambda: self._guard(where, self._answer_mention(where, event, bot))
        )

    async def _on_message(self, delivery: EventCallback[MessageEvent], request: Any) -> None:
        # Direct messages to the bot (App Home's Messages tab); channel chatter is not for us.
        event = delivery.event
        if (
            event.channel_type == "mpim"
            and not event.subtype
            and mentions(event.text, delivery.bot_user_id)
        ):
            await self._on_mention(delivery, request)  # a group DM's twin of app_mention
            return
        if event.channel_type != "im" or event.subtype or event.bot_id or not event.user:
            return
        text = strip_mention(event.text)
        where = _Where(
            user_id=event.user,
            channel_id=event.channel,
            direct=True,
            asked=f"message {text}",
            thread_ts=event.thread_ts,  # a message in a thread is answered in that thread
        )
        await self._once(
            delivery, request, lambda: self._guard(where, self._dispatch_and_deliver(where, text))
        )

    async def _on_metadata_posted(
        self, delivery: EventCallback[MetadataPostedEvent], _request: Any
    ) -> None:
        # One of our own scheduled posts landed: remember it, so the outbox finds it before any
        # retry. Only posts by this app count; another app could reuse our event type.
        posted = posted_delivery(delivery.event.model_dump(), app_id=delivery.api_app_id)
        if posted is None:
            log.info("Slack: ignored a message_metadata_posted event not about our posts")
            return
        # Urgent: the outbox waits only a settle delay for this record before it retries.
        await self._in_worker(self._record_posted, posted, urgent=True)

    def _record_posted(self, posted: PostedDelivery) -> None:
        with unit_of_work(self.app.sessions) as session:
            posted_messages.record(
                session,
                platform=Platform.SLACK,
                channel=posted.channel,
                message_id=posted.ts,
                key=posted.key,
                files=posted.files,
                at=self.clock(),
            )

    async def _on_home_opened(self, delivery: EventCallback[HomeOpenedEvent], request: Any) -> None:
        user = delivery.event.user
        if delivery.event.tab == "messages" and user:
            where = _Where(
                user_id=user, channel_id=delivery.event.channel, direct=True, asked="Messages tab"
            )
            await self._once(
                delivery, request, lambda: self._guard(where, self._welcome(where), tell=False)
            )
            return
        if delivery.event.tab != "home" or not user:
            return
        where = _Where(user_id=user, channel_id=None, direct=True, asked="App Home")
        await self._once(
            delivery, request, lambda: self._guard(where, self.publish_home(user), tell=False)
        )

    async def _on_block_action(self, actions: BlockActions, _ack: Ack) -> None:
        action = actions.actions[0]
        if action.url:
            return  # a link button: Slack opens the link, there is nothing to do
        channel = actions.channel.id if actions.channel else None
        where = _Where(
            user_id=actions.user.id,
            channel_id=channel,
            direct=channel is None or is_direct(channel),
            asked=f"button {action.action_id}",
            response_url=actions.response_url or None,
            trigger_id=actions.trigger_id,
            replace=bool(actions.container and actions.container.is_ephemeral),
        )
        value = action.chosen()
        if action.action_id == MORE_ACTION_ID:
            await self._guard(where, self._next_part(where, value))
        elif action.action_id == PAGE_ACTION_ID and PAGE_ACTION_ID not in self.app.interactions:
            await self._guard(where, self._dispatch_and_deliver(where, value))
        else:
            work = self._interact_and_deliver(where, action.action_id, value, {"value": value})
            await self._guard(where, work)

    async def _on_message_shortcut(self, shortcut: MessageShortcut, _ack: Ack) -> None:
        """ "Ask as a scrutiny question" on a message: the ask form, filled with its words."""
        channel = shortcut.channel.id if shortcut.channel else None
        where = _Where(
            user_id=shortcut.user.id,
            channel_id=channel,
            direct=is_direct(channel),
            asked=f"shortcut {shortcut.callback_id}",
            response_url=shortcut.response_url or None,
            trigger_id=shortcut.trigger_id,
        )
        text = shortcut.message.text if shortcut.message else ""
        await self._guard(where, self._interact_and_deliver(where, DRAFT_SHORTCUT, text, {}))

    async def _on_global_shortcut(self, shortcut: GlobalShortcut, _ack: Ack) -> None:
        """ "Ask a scrutiny question" from anywhere: the message shortcut's form, empty."""
        where = _Where(
            user_id=shortcut.user.id,
            channel_id=None,
            direct=True,
            asked=f"shortcut {shortcut.callback_id}",
            trigger_id=shortcut.trigger_id,
        )
        await self._guard(where, self._interact_and_deliver(where, DRAFT_SHORTCUT, "", {}))

    async def _on_view_submission(self, submission: ViewSubmission, ack: Ack) -> None:
        view = submission.view
        metadata = ViewMetadata.of(view)
        channel = metadata.channel
        where = _Where(
            user_id=submission.user.id,
            channel_id=channel,
            direct=metadata.direct if metadata.direct is not None else channel is None,
            asked=f"form {view.callback_id}",
        )
        values: dict[str, Any] = {**view.form_values(), "metadata": metadata.data}
        request = self._request(where, metadata.data, values)
        check = asyncio.ensure_future(
            self._in_worker(self.app.interact, view.callback_id, request, FORMAT, urgent=True)
        )
        done, _ = await asyncio.wait({check}, timeout=self.form_check_budget)
        if not done:
            await ack()
            log.warning(
                "Slack: form %s from %s not checked within %.1f s; closed, outcome sent later",
                view.callback_id,
                where.user_id,
                self.form_check_budget,
            )
            await self._guard(where, self._deliver_when_done(check, where))
            return
        try:
            outcome = check.result()
        except Exception:
            await ack()
            raise
        if outcome.reply.field_errors:
            errors = field_errors_for(view, outcome.reply.field_errors)
            if errors:
                await ack(response_action="errors", errors=errors)
                return
        await ack()
        await self._guard(where, self.deliver(outcome, where))

    async def _deliver_when_done(self, check: Awaitable[Outcome], where: _Where) -> None:
        """Deliver a form's outcome that came after its ack (as a message: the form is closed)."""
        await self.deliver(await check, where)

    async def _on_view_closed(self, _closed: ViewClosed, _ack: Ack) -> None:
        return  # acknowledged; a closed form changes nothing

    # -- work after the ack --------------------------------------------------------------
    async def _guard(self, where: _Where, work: Awaitable[None], *, tell: bool = True) -> None:
        """Run the work; on failure log it and (when `tell`) tell the member nothing was done.
        A reply that cannot be delivered at all is logged once, naming the member and what they
        asked. Work for one response_url waits its turn (`_turn`)."""
        async with self._turn(where.response_url):
            await self._tell_on_failure(where, work, tell=tell)

    async def _tell_on_failure(self, where: _Where, work: Awaitable[None], *, tell: bool) -> None:
        try:
            await work
            return
        except Undeliverable as lost:
            self._lost(where, lost)
            return
        except Exception:
            log.exception("Slack: work for %s (%r) failed", where.user_id, cut(where.asked, 200))
        if not tell:
            return
        t = Translator(self.app.settings.scrutiny_language)
        text = failed_reply_text(t)
        try:
            await self._send(fit_message(text_blocks(text), text, t), where)
        except Undeliverable as lost:
            self._lost(where, lost)

    def _lost(self, where: _Where, lost: Undeliverable) -> None:
        self.stats["replies_lost"] += 1
        log.error(
            "Slack: a reply to %s for %r could not be delivered: %s",
            where.user_id,
            cut(where.asked, 200),
            lost,
        )

    async def _once(
        self, delivery: EventCallback[Any], request: Any, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run an event's work once per event_id, however often Slack delivers it.

        The id is claimed (committed) before the work starts, so a retry arriving while the
        first delivery is still being answered is skipped too.
        """
        event_id = delivery.event_id
        headers = getattr(request, "headers", None) or {}
        retry = headers.get("x-slack-retry-num")
        if event_id and not await self._in_worker(self._claim, f"slack:{event_id}"):
            log.info("Slack: event %s already handled (retry %s); skipped", event_id, retry)
            self.stats["events_skipped"] += 1
            return
        self.stats["events_handled"] += 1
        await work()

    def _claim(self, key: str) -> bool:
        now = self.clock()
        try:
            with unit_of_work(self.app.sessions) as session:
                session.add(ProcessedEvent(key=key, at=now))
        except IntegrityError:
            return False
        if self.stats["events_handled"] % PRUNE_EVERY == 0:
            # Slack stops retrying within hours; older ids only take space.
            with unit_of_work(self.app.sessions) as session:
                session.execute(
                    delete(ProcessedEvent).where(
                        ProcessedEvent.key.startswith("slack:"),
                        ProcessedEvent.at < now - KEEP_EVENT_IDS,
                    )
                )
        return True

    async def _answer_mention(self, where: _Where, event: MentionEvent, bot: str | None) -> None:
        """Answer an @mention; in a group DM for everyone in it, and once per message (Slack
        may send the message as both `app_mention` and `message.mpim`)."""
        text = strip_mention(event.text)
        if not where.direct and await self.conversations.is_group_dm(
            event.channel, event.channel_type
        ):
            claim = f"slack:message:{event.channel}:{event.ts}"
            if event.ts and not await self._in_worker(self._claim, claim):
                return
            if not bot:
                bot = await self.conversations.bot_user_id()
            try:
                where.readers = await self.conversations.members(
                    event.channel or "", leaving_out=(where.user_id, bot or "")
                )
            except MembersUnknown as problem:
                # Default deny: without the readers nothing is answered there.
                log.warning("Slack: group DM members unknown, not answered: %s", problem)
                t = Translator(self.app.settings.scrutiny_language)
                said = t._(
                    "I could not see who is in this conversation, so I have not answered here. "
                    "Ask me in a direct message instead."
                )
                await self._send(fit_message(text_blocks(said), said, t), where)
                return
        await self._dispatch_and_deliver(where, text)

    async def _dispatch_and_deliver(self, where: _Where, text: str) -> None:
        outcome = await self._reply_work("dispatch", self._request(where, text), FORMAT)
        # For /healthz (and the benchmark): how many answers the answer cache served.
        self.stats["answers"] += 1
        self.stats["answers_kept"] += outcome.cached
        await self.deliver(outcome, where)

    async def _interact_and_deliver(
        self, where: _Where, action_id: str, text: str, values: dict[str, Any]
    ) -> None:
        request = self._request(where, text, values)
        outcome = await self._reply_work("interact", action_id, request, FORMAT)
        await self.deliver(outcome, where)

    async def _next_part(self, where: _Where, value: str) -> None:
        try:
            pointer: _NextPart | None = _NextPart.parse(load_json(value, "value"), "value")
        except ShapeError:
            pointer = None  # not a value this bot made
        part = self.parts.get(pointer.k) if pointer else None
        t = Translator(part.language if part else self.app.settings.scrutiny_language)
        if part is None or pointer is None:
            text = t._("That reply has expired. Please run the command again.")
            await self._send(fit_message(text_blocks(text), text, t), where)
            return
        key = pointer.k
        message = fit_message(
            part.blocks,
            part.text,
            t,
            start=pointer.o,
            more=lambda end: json.dumps({"k": key, "o": end}),
        )
        await self._send(message, where)

    async def _welcome(self, where: _Where) -> None:
        """The welcome, the first time a member opens the Messages tab (the handler remembers)."""
        outcome = await self._reply_work("interact", WELCOME, self._request(where, ""), FORMAT)
        # Nothing on later visits, nor for someone the bot does not know (it cannot remember
        # them, and would tell them who to ask on every visit).
        if outcome.reply.surface == "message" and outcome.reply.template == "welcome/welcome":
            await self.deliver(outcome, where)

    async def publish_home(self, user_id: str) -> None:
        """Render the member's App Home and publish it."""
        where = _Where(user_id=user_id, channel_id=None, direct=True, asked="App Home")
        outcome = await self._reply_work("dispatch", self._request(where, "home"), FORMAT)
        view = outcome_view(outcome, "home") or {"type": "home", "blocks": outcome_blocks(outcome)}
        t = Translator(outcome.languages[0])
        await self.client.views_publish(user_id=user_id, view=fit_view(view, t, outcome.text))

    def message(self, outcome: Outcome) -> dict[str, Any]:
        """The outcome as a message body within limits; a long one gets a next-part button."""
        blocks = outcome_blocks(outcome)
        language = outcome.languages[0]
        key: list[str] = []

        def more(end: int) -> str:
            if not key:
                key.append(self.parts.put(blocks, outcome.text, language))
            return json.dumps({"k": key[0], "o": end})

        return fit_message(blocks, outcome.text, Translator(language), more=more)

    async def deliver(self, outcome: Outcome, where: _Where) -> None:
        """Show an outcome: a modal when asked for and possible, else a message."""
        reply = outcome.reply
        t = Translator(outcome.languages[0])
        if reply.surface == "modal" and where.trigger_id:
            view = outcome_view(outcome, "modal")
            if view is not None:
                wrapped = {
                    "channel": where.channel_id,
                    "direct": where.direct,
                    "data": view.get("private_metadata", ""),
                }
                view["private_metadata"] = json.dumps(wrapped)
                try:
                    await self.client.views_open(
                        trigger_id=where.trigger_id, view=fit_view(view, t, outcome.text)
                    )
                    return
                except SlackApiError as problem:
                    log.warning("Slack: could not open a form: %s", problem.response.get("error"))
                except (aiohttp.ClientError, TimeoutError) as problem:
                    log.warning("Slack: could not open a form: %r", problem)
        if reply.surface == "modal":
            # No form here (an @mention, or the form failed): show the text, which says how
            # to give the same values inline.
            await self._send(
                fit_message(text_blocks(outcome.text), outcome.text, t), where, public=False
            )
            return
        await self._send(self.message(outcome), where, public=reply.public)

    async def _send(self, message: dict[str, Any], where: _Where, *, public: bool = False) -> None:
        """Deliver a reply by the first route that works: the response_url when there is one,
        then the Web API (in the thread, by direct message, in the channel, or ephemeral and
        then by direct message). Undeliverable when every route failed."""
        failures: list[str] = []
        for name, route in self._routes(message, where, public):
            try:
                await route()
                return
            except Exception as problem:  # any failure on one route: try the next
                failures.append(f"{name}: {_failure(problem)}")
                log.warning("Slack: reply to %s failed (%s)", where.user_id, failures[-1])
        raise Undeliverable("; ".join(failures) or "no route to the member")

    def _routes(
        self, message: dict[str, Any], where: _Where, public: bool
    ) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
        """The ways to reach the member, best first."""
        routes: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        client = self.client
        if where.response_url:
            url = where.response_url
            routes.append(("response_url", lambda: self._respond(url, message, where, public)))
        dm = functools.partial(client.chat_postMessage, channel=where.user_id, **message)
        if where.thread_ts and where.channel_id:
            thread = functools.partial(
                client.chat_postMessage,
                channel=where.channel_id,
                thread_ts=where.thread_ts,
                **message,
            )
            routes.append(("chat.postMessage in the thread", thread))
        elif where.direct or not where.channel_id:
            routes.append(("chat.postMessage to the member", dm))
        elif public:
            channel = functools.partial(
                client.chat_postMessage, channel=where.channel_id, **message
            )
            routes.append(("chat.postMessage in the channel", channel))
        else:
            ephemeral = functools.partial(
                client.chat_postEphemeral, channel=where.channel_id, user=where.user_id, **message
            )
            # Not in that channel any more (or the bot is not): say it privately instead.
            routes += [("chat.postEphemeral", ephemeral), ("chat.postMessage to the member", dm)]
        return routes

    async def _respond(
        self, url: str, message: dict[str, Any], where: _Where, public: bool
    ) -> None:
        body = {**message, "response_type": "in_channel" if public else "ephemeral"}
        if where.replace:
            body["replace_original"] = True
        webhook = AsyncWebhookClient(
            url, session=self._session, retry_handlers=response_url_retry_handlers()
        )
        # One budget for the post and its retries (the shared session sets no timeout).
        async with asyncio.timeout(self.response_url_timeout):
            response = await webhook.send_dict(body)
        if response.status_code != 200:
            raise RouteFailed(f"answered HTTP {response.status_code} {cut(response.body, 100)}")


def build_slack(app: ScrutinyApp, *, clock: Clock | None = None) -> SlackPlatform:
    """The Slack platform for `app`, from SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_API_URL
    and (for Socket Mode) SLACK_APP_TOKEN."""
    settings = app.settings
    if not settings.slack_bot_token:
        raise ValueError("SLACK_BOT_TOKEN is not set; Slack cannot start")
    socket_mode = bool(settings.slack_app_token)
    if not socket_mode and not settings.slack_signing_secret:
        raise ValueError("SLACK_SIGNING_SECRET is not set; Slack requests cannot be verified")
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(),
    )
    bolt = AsyncApp(
        name="scrutiny-bot",
        client=client,
        signing_secret=settings.slack_signing_secret or "",
        # The endpoint checks signatures itself, before anything parses the body; Socket Mode
        # messages arrive on an authenticated websocket and need none.
        request_verification_enabled=False,
        # Bolt would drop the metadata events of our own posts (their user is the bot); the
        # message listeners skip messages from bots themselves instead.
        ignoring_self_events_enabled=False,
    )
    return SlackPlatform(
        app,
        bolt,
        signing_secret=settings.slack_signing_secret or "",
        app_token=settings.slack_app_token,
        clock=clock,
        processes=settings.slack_reply_processes,
    )


def bare_web_app(settings: Settings) -> Starlette:
    """A Bolt app that only acknowledges `/scrutiny`, served the same way as ours: the
    baseline `bench/slack_ack.py` measures our endpoint against."""
    client = AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    bolt = AsyncApp(name="bare", client=client, signing_secret=settings.slack_signing_secret or "")

    @bolt.command(COMMAND)
    async def acknowledge(ack: Callable[..., Awaitable[Any]]) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(bolt)

    async def endpoint(request: HttpRequest) -> Response:
        return await handler.handle(request)

    return Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
