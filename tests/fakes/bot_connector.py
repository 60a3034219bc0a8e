"""A fake Bot Connector (the Bot Framework v3 conversations API) on 127.0.0.1.

What the Teams SDK's API client calls to post as the bot: create a conversation (a new thread
in a channel), send an activity, reply to one, update one in place. Every call is recorded
with its bearer token; a test can make the next calls of a kind answer 429 with Retry-After,
or 500, or drop the connection without an answer (nothing is posted). Its `service_url` is
what activities carry as `serviceUrl`.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes.graph_api import LocalServer, send_json

SERVICE_PATH = "/amer/"
"""Teams' service URLs carry a region path (https://smba.trafficmanager.net/amer/)."""
_ROUTE = re.compile(r"^/amer/v3/conversations(?:/([^/]+)/activities(?:/([^/]+))?)?/?$")


@dataclass
class ConnectorCall:
    """One request: its kind (`create`, `send`, `reply`, `update`), the conversation and
    activity it named, its JSON body, its bearer token and the status answered (`DROPPED`
    when the connection was closed without one)."""

    kind: str
    conversation_id: str
    activity_id: str
    body: dict[str, Any]
    bearer: str
    status: int

    @property
    def cards(self) -> list[dict[str, Any]]:
        """The Adaptive Cards the activity carries."""
        activity = self.body.get("activity", self.body) if self.kind == "create" else self.body
        return [
            attachment["content"]
            for attachment in activity.get("attachments") or []
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
        ]


DROPPED = 0
"""A call's status when its connection was closed without an answer."""


@dataclass
class _Failure:
    status: int
    times: int
    retry_after: int | None = None
    reset: bool = True


@dataclass
class FakeBotConnector(LocalServer):
    """Use as a context manager; `service_url` is the activities' serviceUrl."""

    calls: list[ConnectorCall] = field(default_factory=list)
    posted: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Activity id -> the activity as last posted or updated."""
    _failures: dict[str, list[_Failure]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1700000000001))
    _cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def service_url(self) -> str:
        """http://127.0.0.1:port/amer/"""
        return self.origin + SERVICE_PATH

    # -- what tests use ---------------------------------------------------------------------
    def fail_next(
        self, kind: str, status: int, times: int = 1, retry_after: int | None = None
    ) -> None:
        """Answer the next `times` calls of `kind` with `status` (429 adds Retry-After)."""
        with self._cond:
            self._failures.setdefault(kind, []).append(_Failure(status, times, retry_after))

    def drop_next(self, kind: str, times: int = 1, *, reset: bool = True) -> None:
        """Read the next `times` calls of `kind`, post nothing and close their connections
        without an answer: reset (the client reads ECONNRESET, httpx's ReadError) or, without
        `reset`, closed (the client reads end of file, httpx's RemoteProtocolError)."""
        with self._cond:
            self._failures.setdefault(kind, []).append(_Failure(DROPPED, times, reset=reset))

    def calls_of(self, kind: str, ok: bool = True) -> list[ConnectorCall]:
        """Calls of one kind so far (only those answered 2xx when `ok`)."""
        with self._cond:
            return [c for c in self.calls if c.kind == kind and (not ok or 200 <= c.status < 300)]

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Block until `predicate()` holds (checked whenever a call arrives)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"the connector did not see it; calls: {self.calls}")
                self._cond.wait(left)

    # -- serving ------------------------------------------------------------------------------
    def _take_failure(self, kind: str) -> _Failure | None:
        with self._cond:
            queue = self._failures.get(kind, [])
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        route = _ROUTE.match(urlsplit(request.path).path)
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else {}
        if route is None or not isinstance(body, dict):
            send_json(request, 404, {"error": {"code": "NotFound", "message": request.path}})
            return
        conversation = unquote(route.group(1) or "")
        activity_id = unquote(route.group(2) or "")
        if method == "PUT" and activity_id:
            kind = "update"
        elif method == "POST" and not conversation:
            kind = "create"
        elif method == "POST" and (activity_id or body.get("replyToId")):
            kind = "reply"
        elif method == "POST":
            kind = "send"
        else:
            send_json(request, 405, {"error": {"code": "MethodNotAllowed"}})
            return
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        failure = self._take_failure(kind)
        if failure is not None and failure.status == DROPPED:
            self._record(ConnectorCall(kind, conversation, activity_id, body, bearer, DROPPED))
            _drop(request, reset=failure.reset)
            return
        status, answer, headers = self._answer(kind, conversation, activity_id, body, failure)
        self._record(ConnectorCall(kind, conversation, activity_id, body, bearer, status))
        send_json(request, status, answer, headers)

    def _record(self, call: ConnectorCall) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _answer(
        self,
        kind: str,
        conversation: str,
        activity_id: str,
        body: dict[str, Any],
        failure: _Failure | None,
    ) -> tuple[int, Any, dict[str, str]]:
        if failure is not None:
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            code = "TooManyRequests" if failure.status == 429 else "ServiceError"
            return failure.status, {"error": {"code": code, "message": "on demand"}}, headers
        if kind == "update":
            with self._cond:
                if activity_id not in self.posted:
                    return 404, {"error": {"code": "ActivityNotFound"}}, {}
                self.posted[activity_id] = body
            return 200, {"id": activity_id}, {}
        new_id = str(next(self._ids))
        with self._cond:
            self.posted[new_id] = body.get("activity", body) if kind == "create" else body
        if kind == "create":
            channel = ((body.get("channelData") or {}).get("channel") or {}).get("id", "")
            thread = f"{channel};messageid={new_id}" if channel else f"a:{new_id}"
            return 201, {"id": thread, "activityId": new_id}, {}
        return 201, {"id": new_id}, {}


def _drop(request: BaseHTTPRequestHandler, *, reset: bool) -> None:
    """Close the request's connection without an answer; with `reset`, abortively (RST)."""
    request.close_connection = True
    if reset:
        # Linger 0: close() sends RST rather than FIN, as a peer that went away does.
        request.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.connection.close()
