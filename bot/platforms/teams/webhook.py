"""The bot in Microsoft Teams: an outgoing webhook (@mention in a channel) and Teams rendering.

Teams' rules kept here:
- Every request is signed: `Authorization: HMAC <base64 HMAC-SHA256 of the raw body>`, keyed
  with the base64-decoded security token Teams showed when the webhook was created
  (TEAMS_WEBHOOK_SECRET). A missing or wrong signature gets 401 and nothing runs. The body
  is read within a cap first (413 beyond it) and parsed only once the signature holds; a
  signed body that is not a Teams activity, field by field, gets 400.
- Outgoing webhooks fire only in channels, so nothing is ever answered as a direct message:
  a conversation whose kind or channel Teams does not give gets the narrowest audience.
- The answer is the HTTP response, and Teams waits 5 seconds for it. The command runs in a
  worker thread; if it is not done within REPLY_WITHIN seconds the member is told it is on its
  way, and the reply is queued in the outbox (posted by the worker through the channel's
  Workflows webhook or Graph) when the command finishes.
- A message id is claimed in `processed_events` before any work, so a replayed request (the
  signature has no timestamp) is never run twice.
- Replies are Adaptive Cards (`bot.rendering.teams_cards`) rendered from `*.teams.json.j2`
  templates; Teams' messages hold about 28 KB, so longer replies are cut and say so.

Channel.external_id of a Teams channel is "<team id>/<channel id>": the team's Microsoft 365
group id, which Graph needs to post, then the channel's thread id (19:…@thread.tacv2), which
is what Teams sends with an @mention. A channel that only posts through a webhook_url may
give the thread id alone.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import html
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import Outcome, ScrutinyApp
from bot.db import unit_of_work
from bot.domain import Platform
from bot.i18n import N_, Translator
from bot.messages import Request
from bot.models import Channel, ProcessedEvent
from bot.outbox import enqueue
from bot.platforms.inbound import BodyRefused, Shape, ShapeError, load_json, read_capped_body
from bot.rendering import PAYLOAD_VERSION, Payload
from bot.rendering.teams_cards import Card, card_message, fit_card, join_cards

log = logging.getLogger(__name__)

FORMAT = "teams.json"
MAX_REQUEST_BYTES = 256 * 1024
"""Largest request body read: Teams' messages hold about 28 KB, so this leaves ample room."""
UNKNOWN_CONVERSATION = "teams:unknown-conversation"
"""The conversation a message is answered in when Teams did not say which channel it is in:
no stored channel has this id, so the narrowest audience (an unregistered channel's) applies."""
REPLY_WITHIN = 4.0
"""Seconds to wait for a command before answering "working on it" (Teams gives up at 5)."""
WORKERS = 4
REPLY_KIND = "reply"

Clock = Callable[[], datetime]


# -- verifying and reading requests ---------------------------------------------------------
def signature(secret: str, body: bytes) -> str:
    """The signature Teams sends for `body`: base64 HMAC-SHA256 keyed with the decoded secret."""
    key = base64.b64decode(secret)
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, authorization: str | None) -> bool:
    """Whether `Authorization: HMAC <signature>` matches the raw body (constant-time)."""
    scheme, _space, given = (authorization or "").strip().partition(" ")
    if scheme.upper() != "HMAC" or not given:
        return False
    try:
        expected = signature(secret, body)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(expected.encode(), given.strip().encode())


_MENTION = re.compile(r"<at[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def strip_mention(text: str) -> str:
    """The words of an @mention message without the bot's name, tags or HTML entities."""
    words = _TAG.sub(" ", _MENTION.sub(" ", text or ""))
    return " ".join(html.unescape(words).replace("\xa0", " ").split())


_Id = Annotated[str, StringConstraints(max_length=256)]
"""Teams' ids (a GUID, a message id, a channel's thread id) are far shorter."""


class _Sender(Shape):
    aad_object_id: _Id = Field("", alias="aadObjectId")


class _Conversation(Shape):
    conversation_type: str | None = Field(None, alias="conversationType")


class _ChannelRef(Shape):
    id: _Id | None = None


class _ChannelData(Shape):
    channel: _ChannelRef | None = None
    teams_channel_id: _Id | None = Field(None, alias="teamsChannelId")


class _MessageActivity(Shape):
    """The fields of an outgoing-webhook activity the bot reads, with their types."""

    type: str
    id: _Id = ""
    sender: _Sender = Field(alias="from")
    conversation: _Conversation | None = None
    channel_data: _ChannelData | None = Field(None, alias="channelData")
    text: str = ""


@dataclass(frozen=True)
class Activity:
    """What the bot needs from a Teams outgoing-webhook activity.

    `channel_id` is set only for a message in a channel that names its channel; any other
    conversation (a kind Teams did not say, or a channel without channel data) has None, and
    is answered for the narrowest audience (`UNKNOWN_CONVERSATION`), never as a direct
    message: outgoing webhooks only ever fire in channels.
    """

    id: str
    user_id: str
    channel_id: str | None
    text: str

    @classmethod
    def parse(cls, body: bytes) -> Activity | None:
        """The activity, None when the body is a well-formed activity but not a message, or
        ShapeError when it is not what Teams sends."""
        data = _MessageActivity.parse(load_json(body))
        if data.type != "message":
            return None
        kind = data.conversation.conversation_type if data.conversation else None
        channel: str | None = None
        if kind == "channel" and data.channel_data is not None:
            named = data.channel_data.channel
            channel = (named.id if named else None) or data.channel_data.teams_channel_id
        return cls(
            id=data.id,
            user_id=data.sender.aad_object_id,
            channel_id=channel or None,
            text=strip_mention(data.text),
        )


# -- rendering --------------------------------------------------------------------------------
def outcome_card(outcome: Outcome, t: Translator) -> Card:
    """One Adaptive Card for every language of an outcome (bilingual: Welsh, a rule, English),
    cut to fit a Teams message."""
    return fit_card(join_cards(outcome.documents), outcome.text, t)


# -- the platform -----------------------------------------------------------------------------
def stored_channel_id(sessions: sessionmaker[Session], thread_id: str | None) -> str | None:
    """The external_id a Teams channel is stored under ("team/thread" or the thread id alone)
    for the channel thread id Teams sends, or the thread id itself when none is stored."""
    if not thread_id:
        return None
    with unit_of_work(sessions) as session:
        stored = session.scalar(
            select(Channel.external_id)
            .where(
                Channel.platform == Platform.TEAMS,
                or_(
                    Channel.external_id == thread_id,
                    Channel.external_id.endswith("/" + thread_id, autoescape=True),
                ),
            )
            .order_by(Channel.id)
        )
    return stored or thread_id


def _retrieve(future: asyncio.Future[Any]) -> None:
    # An abandoned command's failure is logged in the worker; mark it seen for asyncio.
    if not future.cancelled():
        future.exception()


class _Pending:
    """One request's work, shared by the endpoint (waiting) and the worker thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gave_up = False


class TeamsPlatform:
    """POST /teams/messages: Teams outgoing-webhook requests answered through the handlers."""

    name = "teams"

    def __init__(
        self,
        app: ScrutinyApp,
        secret: str,
        *,
        clock: Clock | None = None,
        reply_within: float = REPLY_WITHIN,
    ) -> None:
        self.app = app
        self.secret = secret
        self.clock = clock or app.clock.now
        self.reply_within = reply_within
        self.stats: Counter[str] = Counter()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """POST /teams/messages."""
        return [Route("/teams/messages", self._endpoint, methods=["POST"])]

    def health(self) -> dict[str, Any]:
        """Requests answered, late and refused since start."""
        return {"mode": "outgoing-webhook", **self.stats}

    async def startup(self) -> None:
        """Start the worker threads commands run in."""
        self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="teams")

    async def shutdown(self) -> None:
        """Let running commands finish (a late reply is still queued)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="teams")
        return self._executor

    async def _endpoint(self, request: HttpRequest) -> Response:
        # Size, then signature, then shape: nothing parses a body before its signature holds.
        try:
            body = await read_capped_body(request, MAX_REQUEST_BYTES)
        except BodyRefused as refused:
            self.stats["too_large" if refused.status == 413 else "malformed"] += 1
            return refused.response()
        if not verify(self.secret, body, request.headers.get("authorization")):
            self.stats["refused"] += 1
            log.warning("Teams: request with a missing or wrong signature refused")
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            activity = Activity.parse(body)
        except ShapeError as malformed:
            self.stats["malformed"] += 1
            log.warning("Teams: signed request refused: %s", malformed)
            return malformed.response()
        if activity is None:
            return JSONResponse({"error": "not a Teams message activity"}, status_code=400)
        loop = asyncio.get_running_loop()
        pending = _Pending()
        future = loop.run_in_executor(self._pool(), self._work, activity, pending)
        try:
            try:
                outcome = await asyncio.wait_for(asyncio.shield(future), self.reply_within)
            except TimeoutError:
                with pending.lock:
                    finished = future.done()
                    pending.gave_up = not finished
                if not finished:
                    self.stats["late"] += 1
                    future.add_done_callback(_retrieve)
                    return self._say(
                        N_("Working on it: the answer will be posted in this channel shortly.")
                    )
                outcome = future.result()
        except Exception:
            # Logged in the worker; the member still gets an answer, and Teams no error.
            return self._say(
                N_("Something went wrong on our side; nothing was changed. Please try again.")
            )
        if outcome is None:
            return JSONResponse({"type": "message", "text": ""})
        self.stats["answered"] += 1
        t = Translator(outcome.languages[0])
        return JSONResponse(card_message(outcome_card(outcome, t)))

    def _say(self, message: str) -> Response:
        """A one-line reply in the bot's language (`message` is a msgid marked with N_)."""
        t = Translator(self.app.settings.scrutiny_language)
        return JSONResponse({"type": "message", "text": html.escape(t._(message))})

    # -- in a worker thread ----------------------------------------------------------------
    def _work(self, activity: Activity, pending: _Pending) -> Outcome | None:
        try:
            return self._answer(activity, pending)
        except Exception:
            self.stats["failed"] += 1
            log.exception("Teams: message %r from %s failed", activity.id, activity.user_id)
            raise

    def _answer(self, activity: Activity, pending: _Pending) -> Outcome | None:
        if activity.id and not self._claim(f"teams:{activity.id}"):
            log.info("Teams: message %s already handled; skipped", activity.id)
            self.stats["duplicates"] += 1
            return None
        channel_id = self._stored_channel_id(activity.channel_id)
        request = Request(
            platform=Platform.TEAMS,
            user_id=activity.user_id,
            text=activity.text,
            # Fail closed: a conversation Teams did not name is never read as a direct message.
            channel_id=channel_id or UNKNOWN_CONVERSATION,
            is_direct=False,
            now=self.clock(),
        )
        outcome = self.app.dispatch(request, FORMAT)
        with pending.lock:
            late = pending.gave_up
        if late:
            self._post_late(outcome, channel_id, activity.id)
        return outcome

    def _claim(self, key: str) -> bool:
        try:
            with unit_of_work(self.app.sessions) as session:
                session.add(ProcessedEvent(key=key, at=self.clock()))
        except IntegrityError:
            return False
        return True

    def _stored_channel_id(self, thread_id: str | None) -> str | None:
        return stored_channel_id(self.app.sessions, thread_id)

    def _post_late(self, outcome: Outcome, channel_id: str | None, activity_id: str) -> None:
        """Queue a reply that missed Teams' 5 seconds for the worker to post in the channel."""
        with unit_of_work(self.app.sessions) as session:
            channel = session.scalar(
                select(Channel).where(
                    Channel.platform == Platform.TEAMS, Channel.external_id == (channel_id or "")
                )
            )
            if channel is None:
                log.warning("Teams: a late reply for unknown channel %s was dropped", channel_id)
                return
            payload = Payload(
                v=PAYLOAD_VERSION,
                languages=list(outcome.languages),
                text=outcome.text,
                items={},
                teams=outcome_card(outcome, Translator(outcome.languages[-1])),
            )
            enqueue(
                session,
                key=f"teams-reply:{activity_id or id(outcome)}",
                channel=channel,
                kind=REPLY_KIND,
                payload=payload,
            )
        self.stats["queued"] += 1


def build_teams(app: ScrutinyApp, *, clock: Clock | None = None) -> TeamsPlatform:
    """The Teams platform for `app`, from TEAMS_WEBHOOK_SECRET."""
    secret = app.settings.teams_webhook_secret
    if not secret:
        raise ValueError("TEAMS_WEBHOOK_SECRET is not set; Teams requests cannot be verified")
    return TeamsPlatform(app, secret, clock=clock)
