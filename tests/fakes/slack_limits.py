"""The fake Slack API with what the outbox needs on top (kept apart from H4's `slack_api.py`).

- rate limits on chat.postMessage: per channel (Slack's "1 message per second per channel")
  and workspace-wide, as token buckets; over the limit it answers 429 with Retry-After;
- message metadata kept with each post (the bot has no scope to read histories, so the fake
  offers none: `conversations.history` and `conversations.replies` answer `unknown_method`);
- failures *after* posting: a response held back past the client's timeout, a 500 sent after
  the message was stored, or the connection closed without an answer, the ambiguous cases the
  outbox must not turn into duplicates;
- file uploads as `files_upload_v2` makes them (files.getUploadURLExternal, the upload URL,
  files.completeUploadExternal into a thread);
- `answer_randomly`: a seeded share of posts answered slowly but accepted (stored, answered
  after the client's timeout), 429 with Retry-After, or 500 before or after storing;
- `deliver_events`: each post carrying metadata is reported, after a delay, as Slack's
  `message_metadata_posted` event, signed, to the app's events URL.
Message timestamps follow the program's clock (`bot.clock.CLOCK`, which tests set), so Slack and
the bot agree on the time whatever the machine's date.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.clock import CLOCK
from tests.fakes.slack_api import BOT_USER_ID, Call, FakeSlackApi, slack_signature

APP_ID = "A0APP00001"
"""The app id Slack gives the bot (the envelope's `api_app_id`, and `app_id` on its posts)."""


@dataclass
class Posted:
    """A message the fake accepted."""

    channel: str
    ts: str
    text: str
    blocks: Any
    metadata: dict[str, Any] | None

    @property
    def key(self) -> str | None:
        """The outbox idempotency key carried in the metadata, if any."""
        payload = (self.metadata or {}).get("event_payload") or {}
        key = payload.get("key")
        return str(key) if key is not None else None


@dataclass
class Uploaded:
    """A file shared through files.completeUploadExternal."""

    channel: str
    thread_ts: str | None
    file_id: str
    name: str
    title: str
    content: bytes
    ts: str


@dataclass
class _Bucket:
    rate: float
    capacity: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float, tolerance: float) -> float:
        """0 and a token taken when one is available, else seconds until one will be."""
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1 - tolerance:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class RandomAnswers:
    """Shares of chat.postMessage calls answered badly, drawn from a seeded generator."""

    rng: random.Random
    slow: float = 0.0
    """Stored, then answered only after `slow_seconds` (past the client's timeout)."""
    slow_seconds: float = 1.0
    rate_limited: float = 0.0
    """429 with `retry_after`; nothing stored."""
    retry_after: int = 1
    server_error: float = 0.0
    """500 before storing (nothing posted)."""
    server_error_after_post: float = 0.0
    """500 after storing (posted, but the client cannot know)."""

    def draw(self) -> str:
        """One outcome: "slow", "429", "500", "500-after" or "ok"."""
        roll = self.rng.random()
        for outcome, share in (
            ("429", self.rate_limited),
            ("500", self.server_error),
            ("500-after", self.server_error_after_post),
            ("slow", self.slow),
        ):
            if roll < share:
                return outcome
            roll -= share
        return "ok"


@dataclass
class EventDelivery:
    """Where and how the fake reports posts as `message_metadata_posted` events."""

    url: str
    signing_secret: str
    delay: tuple[float, float]
    rng: random.Random


def direct_conversation(channel: str) -> str:
    """The conversation a post to `channel` lands in: a user id's is its direct conversation."""
    return "D" + channel[1:] if channel[:1] in ("U", "W") else channel


class LimitedSlackApi(FakeSlackApi):
    """FakeSlackApi enforcing rate limits, keeping metadata, and failing after posting on demand."""

    def __init__(
        self,
        *,
        per_channel: float | None = None,
        per_workspace: float | None = None,
        workspace_burst: float | None = None,
        tolerance: float = 0.1,
    ) -> None:
        super().__init__()
        self.per_channel = per_channel
        self.per_workspace = per_workspace
        self.workspace_burst = workspace_burst
        self.tolerance = tolerance
        self.posted: list[Posted] = []
        self.rate_limited = 0
        self._limits_lock = threading.Lock()
        self._channel_buckets: dict[str, _Bucket] = {}
        self._workspace: _Bucket | None = None
        self._hang: list[float] = []
        self._after_post_status: list[int] = []
        self._drop_after_post = 0
        self._last_ts = 0
        self._released: asyncio.Event | None = None
        self.uploads: list[Uploaded] = []
        self._pending_names: dict[str, str] = {}
        self._file_ids = itertools.count(1)
        self._random: RandomAnswers | None = None
        self.outcomes: Counter[str] = Counter()
        """How chat.postMessage calls were answered under `answer_randomly`."""
        self._events: EventDelivery | None = None
        self._event_tasks: set[asyncio.Task[None]] = set()
        self._event_ids = itertools.count(1)
        self.events_sent: list[int] = []
        """HTTP status of each metadata event delivered to the app."""
        self._recorded: Callable[[], int] | None = None

    def __exit__(self, *exc: object) -> None:
        # Answer held-back requests now, so the server can shut down.
        def release() -> None:
            if self._released is not None:
                self._released.set()

        self._loop.call_soon_threadsafe(release)

        async def cancel_events() -> None:
            for task in list(self._event_tasks):
                task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_events(), self._loop).result(10)
        super().__exit__(*exc)

    # -- what tests use ----------------------------------------------------------------------
    def answer_randomly(self, seed: int, **shares: Any) -> None:
        """Answer chat.postMessage calls badly in the given shares (see `RandomAnswers`)."""
        with self._limits_lock:
            self._random = RandomAnswers(random.Random(seed), **shares)

    def deliver_events(
        self,
        url: str,
        signing_secret: str,
        delay: tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        recorded: Callable[[], int] | None = None,
    ) -> None:
        """Report every post with metadata to `url` as a signed `message_metadata_posted`
        event, a random delay in `delay` (seconds) after it was stored. `recorded` counts the
        events the receiver has stored, for `wait_for_events`."""
        self._events = EventDelivery(url, signing_secret, delay, random.Random(seed))
        self._recorded = recorded

    def wait_for_events(self, timeout: float = 15.0) -> None:
        """Block until every scheduled event has been delivered and, when the receiver can be
        asked, recorded: the bot acknowledges an event before it stores it, and a test that
        moves the clock past the settle delay must not outrun that."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            future = asyncio.run_coroutine_threadsafe(self._events_pending(), self._loop)
            if not future.result(timeout):
                accepted = sum(1 for status in self.events_sent if status == 200)
                if self._recorded is None or self._recorded() >= accepted:
                    return
            time.sleep(0.05)
        recorded = self._recorded() if self._recorded is not None else None
        raise AssertionError(
            f"metadata events still pending or not yet recorded: sent {self.events_sent}, "
            f"recorded {recorded}"
        )

    async def _events_pending(self) -> int:
        return len(self._event_tasks)

    def hang_after_post(self, seconds: float, times: int = 1) -> None:
        """Store the next `times` posts, then answer only after `seconds` (past the timeout)."""
        with self._limits_lock:
            self._hang.extend([seconds] * times)

    def fail_after_post(self, status: int = 500, times: int = 1) -> None:
        """Store the next `times` posts, then answer `status` as if something broke after."""
        with self._limits_lock:
            self._after_post_status.extend([status] * times)

    def drop_after_post(self, times: int = 1) -> None:
        """Store the next `times` posts, then close the connection without answering (a
        server or proxy that died mid-request: the client cannot know the post landed)."""
        with self._limits_lock:
            self._drop_after_post += times

    def keys(self) -> Counter[str | None]:
        """How many stored messages carry each idempotency key."""
        with self._limits_lock:
            return Counter(p.key for p in self.posted)

    def duplicates(self) -> dict[str, int]:
        """Keys posted more than once (should always be empty)."""
        return {k: n for k, n in self.keys().items() if k is not None and n > 1}

    def uploads_in(self, channel: str) -> list[Uploaded]:
        """Files shared in one channel, oldest first."""
        with self._limits_lock:
            return [u for u in self.uploads if u.channel == channel]

    def messages_in(self, channel: str) -> list[Posted]:
        """Messages stored for one channel, oldest first."""
        with self._limits_lock:
            return [p for p in self.posted if p.channel == channel]

    # -- rate limits -------------------------------------------------------------------------
    def _wait_needed(self, channel: str) -> float:
        now = time.monotonic()
        with self._limits_lock:
            if self.per_workspace is not None:
                if self._workspace is None:
                    burst = self.workspace_burst or self.per_workspace
                    self._workspace = _Bucket(self.per_workspace, burst, burst, now)
                wait = self._workspace.take(now, self.tolerance)
                if wait:
                    return wait
            if self.per_channel is not None:
                bucket = self._channel_buckets.setdefault(
                    channel, _Bucket(self.per_channel, 1.0, 1.0, now)
                )
                wait = bucket.take(now, self.tolerance)
                if wait:
                    if self._workspace is not None:
                        self._workspace.tokens += 1  # the refused post used no workspace capacity
                    return wait
        return 0.0

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method != "chat.postMessage":
            return await super()._api(request)
        body = await self._body(request)
        outcome, drawn_hang, drawn_after = "ok", 0.0, 0
        with self._limits_lock:
            if self._random is not None:
                outcome = self._random.draw()
                self.outcomes[outcome] += 1
                drawn_hang = self._random.slow_seconds if outcome == "slow" else 0.0
                drawn_after = 500 if outcome == "500-after" else 0
        if outcome in ("429", "500"):
            assert self._random is not None
            status = int(outcome)
            error = "ratelimited" if status == 429 else "internal_error"
            self._record(
                Call(method, body, dict(request.headers), status, False, error, request.path)
            )
            headers = {"Retry-After": str(self._random.retry_after)} if status == 429 else {}
            return web.json_response({"ok": False, "error": error}, status=status, headers=headers)
        wait = self._wait_needed(str(body.get("channel", "")))
        if wait:
            with self._limits_lock:
                self.rate_limited += 1
            self._record(
                Call(method, body, dict(request.headers), 429, False, "ratelimited", request.path)
            )
            retry_after = str(max(1, math.ceil(wait)))
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": retry_after},
            )
        response = await super()._api(request)
        with self._limits_lock:
            hang = self._hang.pop(0) if self._hang and response.status == 200 else 0.0
            after = (
                self._after_post_status.pop(0)
                if self._after_post_status and response.status == 200
                else 0
            )
        if response.status == 200:
            hang, after = hang or drawn_hang, after or drawn_after
        with self._limits_lock:
            drop = response.status == 200 and self._drop_after_post > 0
            self._drop_after_post -= drop
        if drop and request.transport is not None:
            request.transport.close()
            return response
        if hang:
            if self._released is None:
                self._released = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._released.wait(), hang)
        if after:
            return web.json_response({"ok": False, "error": "internal_error"}, status=after)
        return response

    # -- answers -----------------------------------------------------------------------------
    def _next_ts(self) -> str:
        # Whole microseconds: a float this size cannot hold one more millionth reliably, and
        # two messages must never share a ts.
        with self._limits_lock:
            micros = max(round(CLOCK.now().timestamp() * 1_000_000), self._last_ts + 1)
            self._last_ts = micros
            return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _answer(self, method: str, body: dict[str, Any], auth: str) -> dict[str, Any]:
        if auth.startswith("Bearer xoxb-"):
            if method == "files.getUploadURLExternal":
                return self._upload_url(body)
            if method == "files.completeUploadExternal":
                return self._complete_upload(body)
        answer = super()._answer(method, body, auth)
        if method == "chat.postMessage" and answer.get("ok"):
            answer["ts"] = self._next_ts()
            # As Slack does, a post to a user id lands in the app's direct conversation with
            # them, which has an id of its own (D...): the answer and the event report that.
            channel = direct_conversation(str(body["channel"]))
            answer["channel"] = channel
            metadata = body.get("metadata")
            posted = Posted(
                channel=channel,
                ts=answer["ts"],
                text=str(body.get("text", "")),
                blocks=body.get("blocks"),
                metadata=metadata if isinstance(metadata, dict) else None,
            )
            with self._limits_lock:
                self.posted.append(posted)
            if self._events is not None and posted.metadata is not None:
                task = asyncio.get_running_loop().create_task(self._report(posted, self._events))
                self._event_tasks.add(task)
                task.add_done_callback(self._event_tasks.discard)
        return answer

    async def _report(self, posted: Posted, events: EventDelivery) -> None:
        # Slack reports metadata on the Events API a moment after the message is stored.
        await asyncio.sleep(events.rng.uniform(*events.delay))
        body = json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": "T0SRS00001",
                "api_app_id": APP_ID,
                "type": "event_callback",
                "event_id": f"EvMETA{next(self._event_ids):08d}",
                "event_time": int(time.time()),
                "authorizations": [
                    {"team_id": "T0SRS00001", "user_id": BOT_USER_ID, "is_bot": True}
                ],
                "event": {
                    "type": "message_metadata_posted",
                    "app_id": APP_ID,
                    "bot_id": "B0BOT00001",
                    "user_id": BOT_USER_ID,
                    "team_id": "T0SRS00001",
                    "channel_id": posted.channel,
                    "metadata": posted.metadata,
                    "message_ts": posted.ts,
                    "event_ts": posted.ts,
                },
            }
        )
        stamp = int(CLOCK.now().timestamp())  # Slack and the bot share the test's clock
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": str(stamp),
            "X-Slack-Signature": slack_signature(events.signing_secret, stamp, body),
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(events.url, data=body.encode(), headers=headers) as response,
        ):
            self.events_sent.append(response.status)

    # -- files -------------------------------------------------------------------------------
    def _upload_url(self, body: dict[str, Any]) -> dict[str, Any]:
        if not body.get("filename") or not str(body.get("length", "")).isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F0FILE{next(self._file_ids):05d}"
        with self._limits_lock:
            self._pending_names[file_id] = str(body["filename"])
        url = f"http://127.0.0.1:{self.port}/upload/{file_id}"
        return {"ok": True, "upload_url": url, "file_id": file_id}

    def _complete_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            files = json.loads(str(body.get("files") or "[]"))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        channel = str(body.get("channel_id") or "")
        thread_ts = str(body.get("thread_ts") or "") or None
        shared = []
        ts = self._next_ts()
        with self._limits_lock:
            for item in files:
                file_id = str(item.get("id", ""))
                if file_id not in self._pending_names or file_id not in self.uploaded_bytes:
                    return {"ok": False, "error": "file_not_found"}
                name = self._pending_names.pop(file_id)
                upload = Uploaded(
                    channel,
                    thread_ts,
                    file_id,
                    name,
                    str(item.get("title") or name),
                    self.uploaded_bytes[file_id],
                    ts,
                )
                self.uploads.append(upload)
                shared.append({"id": file_id, "name": name, "title": upload.title})
        return {"ok": True, "files": shared}
