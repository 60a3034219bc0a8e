"""The Teams app's bot at POST /api/messages, on Microsoft's Teams SDK (`microsoft_teams.apps`).

The SDK's `App` does the Bot Framework's part: it checks each activity's bearer token (see
`bot.platforms.teams.auth`) and answers 401 before any handler runs when the token is missing
or bad, routes the activity to its handler, and posts replies through its API client to the
Bot Connector at the activity's `serviceUrl`. This module does ours:

- It is the SDK's HTTP adapter (`RouteAdapter`): the SDK registers its messaging endpoint with
  it, and the serve process's Starlette app (bot/web.py) mounts that as a route, so Slack, Teams
  and the register share one server. A request with no bearer token is refused (401) before
  its body is read. Before the SDK sees a request its body is read within a cap (413) and
  decoded safely (400), as for Slack (bot/platforms/inbound.py); an activity
  without a `serviceUrl` is refused (401), since its token's service URL could not be checked;
  one whose token holds but that is no activity the SDK can read gets 400 naming the fields,
  where the SDK itself would answer 500 (tests/test_teams_bot_fuzz.py).
- A message (personal chat, group chat or channel) becomes a neutral `Request` and goes through
  `ScrutinyApp.dispatch`, like Slack and the console; the bot's own @mention is dropped and
  other people's are kept as their names. Members are found by their Entra object id.
- The reply goes back in the same conversation (a channel's thread) as an Adaptive Card, tried
  again after a transient failure or a 429 (`bot.platforms.teams.delivery.send_direct`); a
  new channel post's private reply is a card whose answer only the asker sees
  (`bot.platforms.teams.private`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from microsoft_teams.api.activities import ActivityTypeAdapter
from microsoft_teams.api.activities.message.message import MessageActivity, MessageActivityInput
from microsoft_teams.api.activities.utils.strip_mentions_text import (
    StripMentionsTextOptions,
    strip_mentions_text,
)
from microsoft_teams.api.models.activity import Activity
from microsoft_teams.api.models.attachment.attachment import Attachment
from microsoft_teams.apps import ActivityContext, App
from microsoft_teams.apps.events import CoreActivity
from microsoft_teams.apps.http.adapter import HttpMethod, HttpRequest, HttpRouteHandler
from pydantic import ValidationError
from starlette.requests import Request as HttpRequestIn
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

import bot.platforms.teams.private as private
from bot import private_answers
from bot.app import Outcome, ScrutinyApp
from bot.db import unit_of_work
from bot.domain import Platform
from bot.i18n import Translator
from bot.messages import Request
from bot.outbox import SendError
from bot.platforms.inbound import (
    MAX_PROBLEMS,
    BodyRefused,
    ShapeError,
    load_json,
    read_capped_body,
)
from bot.platforms.teams.activities import MAX_REQUEST_BYTES, message_words, readable_invoke
from bot.platforms.teams.auth import app_options
from bot.platforms.teams.delivery import send_direct
from bot.platforms.teams.invokes import Clock, Invokes, message_card
from bot.rendering.teams_cards import CARD_CONTENT_TYPE, Card, text_card
from bot.reply_pool import ReplyPool, failed_reply_text

log = logging.getLogger(__name__)

MESSAGES_PATH = "/api/messages"
FORMAT = "teams.json"
"""Replies are Adaptive Cards from each feature's `.teams.json.j2` template."""


class RouteAdapter:
    """The Teams SDK's HTTP server adapter, serving nothing itself: it keeps the handlers the
    SDK registers so the serve process's Starlette app can mount them."""

    def __init__(self) -> None:
        self.handlers: dict[str, HttpRouteHandler] = {}

    def register_route(self, method: HttpMethod, path: str, handler: HttpRouteHandler) -> None:
        """Called by the SDK for its messaging endpoint."""
        if method != "POST":
            raise ValueError(f"unsupported method {method} for {path}")
        self.handlers[path] = handler

    def serve_static(self, path: str, directory: str) -> None:
        """The bot serves no static pages through the SDK."""
        raise NotImplementedError(f"static pages ({path}) are not served through the Teams SDK")

    async def start(self, port: int) -> None:
        """Never called: `scrutiny-bot serve` runs the server."""
        raise NotImplementedError("the Teams SDK's routes are served by scrutiny-bot serve")

    async def stop(self) -> None:
        """Nothing to stop: the serve process owns the server."""


def message_text(activity: MessageActivity) -> str:
    """The words of a message: the bot's own @mention dropped, other mentions kept as the
    names they show, other markup and HTML entities removed."""
    without_bot = strip_mentions_text(
        activity, StripMentionsTextOptions(account_id=activity.recipient.id)
    )
    return message_words(without_bot)


def activity_problem(body: dict[str, Any]) -> ShapeError | None:
    """Why the Teams SDK cannot read `body` as an activity, checked the way it reads one (the
    core fields, then the activity of its type), or None. Asked before the SDK's own answer,
    which is a 500 for such a body once its token holds."""
    try:
        core = CoreActivity.model_validate(body)
        ActivityTypeAdapter.validate_python(core.model_dump(by_alias=True, exclude_none=True))
    except ValidationError as problem:
        errors = problem.errors(include_url=False, include_input=False)
        where = ", ".join(".".join(str(part) for part in e["loc"]) for e in errors[:MAX_PROBLEMS])
        return ShapeError(f"not a Teams activity ({len(errors)} problems: {where})")
    return None


def activity_request(
    activity: Activity, text: str, values: dict[str, Any], now: datetime
) -> Request:
    """The neutral request for an activity (a message, a button, a dialog): who, where, the
    words and the values. A personal chat is direct; a channel is named by its thread id,
    which the dispatcher matches to the stored channel ("<team id>/<thread id>"); a group
    chat, or a conversation of a kind Teams did not name, is a channel of its own
    (unregistered, so read for the narrowest audience)."""
    conversation = activity.conversation
    kind = conversation.conversation_type
    channel: str | None = conversation.id.split(";", 1)[0]
    if kind == "personal":
        channel = None
    elif kind == "channel":
        data = activity.channel_data
        named = data.channel.id if data and data.channel else None
        channel = named or channel
    return Request(
        platform=Platform.TEAMS,
        user_id=activity.from_.aad_object_id or "",
        text=text,
        channel_id=channel,
        is_direct=kind == "personal",
        now=now,
        values=values,
    )


class TeamsBot:
    """POST /api/messages: the Teams app's bot, answering through the same handlers as Slack."""

    name = "teams-bot"

    def __init__(
        self, app: ScrutinyApp, *, clock: Clock | None = None, processes: int | None = None
    ) -> None:
        """`processes`: build replies in that many worker processes (default
        TEAMS_REPLY_PROCESSES; 0: in worker threads)."""
        self.app = app
        self.clock = clock or app.clock.now
        self.stats: Counter[str] = Counter()
        self.adapter = RouteAdapter()
        self.sdk = App(
            **app_options(app.settings),
            http_server_adapter=self.adapter,
            messaging_endpoint=MESSAGES_PATH,
        )
        self._replies: set[asyncio.Task[None]] = set()
        if processes is None:
            processes = app.settings.teams_reply_processes
        self._workers = ReplyPool.maybe(app.settings, processes)
        self.sdk.on_message(self._on_message)
        Invokes(app, self._request, self.clock).register(self.sdk)

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """POST /api/messages."""
        return [Route(MESSAGES_PATH, self._endpoint, methods=["POST"])]

    def health(self) -> dict[str, Any]:
        """Activities answered and refused since start."""
        processes = self._workers.processes if self._workers else 0
        return {"mode": "teams-app", "reply_processes": processes, **self.stats}

    async def startup(self) -> None:
        """Let the SDK set up its token check and register its endpoint with the adapter."""
        await self.sdk.initialize()
        if self._workers is not None:
            self._workers.start()

    async def shutdown(self) -> None:
        """Let the replies still being worked on finish."""
        if self._replies:
            await asyncio.gather(*self._replies, return_exceptions=True)
        if self._workers is not None:
            await self._workers.stop()

    async def _endpoint(self, request: HttpRequestIn) -> Response:
        handler = self.adapter.handlers.get(MESSAGES_PATH)
        if handler is None:
            return JSONResponse({"error": "starting"}, status_code=503)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # No token at all: refused before the body is read, whatever it holds.
            self.stats["refused"] += 1
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        try:
            body = load_json(await read_capped_body(request, MAX_REQUEST_BYTES))
        except BodyRefused as refused:
            self.stats["too_large" if refused.status == 413 else "malformed"] += 1
            return refused.response()
        except ShapeError as malformed:
            self.stats["malformed"] += 1
            return malformed.response()
        service_url = body.get("serviceUrl") if isinstance(body, dict) else None
        if not isinstance(service_url, str) or not service_url:
            # The SDK checks the token's serviceurl claim only against a serviceUrl it is given.
            self.stats["refused"] += 1
            return JSONResponse({"error": "Unauthorized"}, status_code=401)
        body = readable_invoke(body)
        shape = activity_problem(body)
        answer = await handler(HttpRequest(body=body, headers=dict(request.headers)))
        if answer["status"] == 401:
            self.stats["refused"] += 1
        elif shape is not None:
            # The token held, then the SDK failed on the activity's shape (its answer is a 500)
            # before routing it: no handler ran, and the sender is told what is wrong.
            self.stats["malformed"] += 1
            return shape.response()
        if answer.get("body") is None:
            return Response(status_code=answer["status"])
        return JSONResponse(answer["body"], status_code=answer["status"])

    async def _on_message(self, ctx: ActivityContext[MessageActivity]) -> None:
        """A message is answered after the HTTP request is (acknowledged first, as Slack's
        are), so Teams never waits on the command's work or the Bot Connector."""
        self.stats["dispatched"] += 1
        reply = asyncio.create_task(self._reply(ctx))
        self._replies.add(reply)
        reply.add_done_callback(self._replied)

    async def _reply(self, ctx: ActivityContext[MessageActivity]) -> None:
        activity = ctx.activity
        request = self._request(activity, message_text(activity), {})
        try:
            outcome = await self._dispatch(request)
        except Exception:
            log.exception("Teams: the work for %s's message failed", request.user_id)
            self.stats["work_failed"] += 1
            t = Translator(self.app.settings.scrutiny_language)
            content = text_card(failed_reply_text(t), t)
        else:
            content = await asyncio.to_thread(self._card, activity, request, outcome)
        card = Attachment(content_type=CARD_CONTENT_TYPE, content=content)
        await send_direct(
            lambda: ctx.send(MessageActivityInput().add_attachments(card)),
            f"the answer to {request.user_id} in {activity.conversation.id}",
        )
        self.stats["answered"] += 1

    async def _dispatch(self, request: Request) -> Outcome:
        """`app.dispatch`: in the reply processes when there are any (they cannot hold the GIL
        the loop acknowledges with), else in a worker thread."""
        if self._workers is not None:
            return await self._workers.run("dispatch", request, FORMAT)
        outcome: Outcome = await asyncio.to_thread(self.app.dispatch, request, FORMAT)
        return outcome

    def _card(self, activity: MessageActivity, request: Request, outcome: Outcome) -> Card:
        """The card a message is answered with: in a channel's new post, a private answer's
        base card (`private`), its answer stored for the asker when the command changed
        something; anywhere else the answer itself."""
        words = request.text
        reads_only = self.app.reads_only(words)
        asked = private.asked_privately(activity, words, outcome, reads_only)
        if asked is None:
            return message_card(outcome, words)
        if reads_only:
            return private.base_card(self.app.renderer, asked)
        token = private_answers.new_token()
        answer = private.answer_card(message_card(outcome, words), outcome.text, asked, token)
        base = private.base_card(self.app.renderer, asked, token)
        try:
            with unit_of_work(self.app.sessions) as session:
                private_answers.store(
                    session,
                    token,
                    platform=Platform.TEAMS,
                    conversation=activity.conversation.id,
                    asker=private_answers.Asker(asked.user, asked.aad),
                    card=answer,
                    base=base,
                    now=self.clock(),
                )
        except Exception:
            # The command's change is made: its answer goes in the thread rather than be lost.
            log.exception("Teams: a private answer could not be stored; answered in the thread")
            return message_card(outcome, words)
        return base

    def _replied(self, reply: asyncio.Task[None]) -> None:
        self._replies.discard(reply)
        if not reply.cancelled() and (problem := reply.exception()) is not None:
            self.stats["failed"] += 1
            if not isinstance(problem, SendError):  # send_direct has said why it gave up
                log.error("Teams: a reply could not be made", exc_info=problem)

    def _request(self, activity: Activity, text: str, values: dict[str, Any]) -> Request:
        return activity_request(activity, text, values, self.clock())


def build_teams_bot(app: ScrutinyApp, *, clock: Clock | None = None) -> TeamsBot:
    """The Teams app's bot for `app`, from the TEAMS_* settings."""
    return TeamsBot(app, clock=clock)
