"""A fake Microsoft Graph on 127.0.0.1 (port 0) for the endpoints the bot reads.

Graph endpoints (under `/v1.0`): a group calendar's `calendarView` and SharePoint list items
with `$expand=fields`. Collections are served
in pages of `page_size` with `@odata.nextLink`. Tests script failures for the next calls whose
path contains a string: 429 or 503 with Retry-After, 500, or "persistent" failures; every call is
recorded. `FakeCredential` stands in for azure-identity so the real msgraph-sdk runs unchanged.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from azure.core.credentials import AccessToken, AccessTokenInfo

FAKE_TOKEN = "fake-graph-token"


class FakeCredential:
    """An azure TokenCredential returning a fixed token; records the scopes asked for."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_kwargs: Any) -> AccessToken:
        """A token valid for an hour."""
        self.scopes.append(scopes)
        return AccessToken(FAKE_TOKEN, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        """The same token in the newer protocol's shape."""
        self.scopes.append(scopes)
        return AccessTokenInfo(FAKE_TOKEN, int(time.time()) + 3600)


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class _Failure:
    contains: str
    status: int
    times: int | None
    retry_after: str | None
    method: str | None


class LocalServer:
    """A fake served over HTTP (HTTPS when `_tls` gives a context) on 127.0.0.1, port 0, while
    its `with` block runs; a subclass answers every request in `_handle`."""

    _server: ThreadingHTTPServer | None = None
    _scheme = "http"

    def _tls(self) -> ssl.SSLContext | None:
        return None

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        tls = self._tls()
        self._scheme = "https" if tls is not None else "http"
        self._server = serve_locally(self._handle, tls)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        """http://127.0.0.1:port (https with TLS)."""
        assert self._server is not None
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"


@dataclass
class FakeGraph(LocalServer):
    """State and scripted behaviour of the fake Graph; run it with `with FakeGraph() as g`."""

    page_size: int = 2
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Group id -> calendar events (Graph JSON)."""
    items: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    """(site id, list id) -> list items (Graph JSON, with `fields`)."""
    calls: list[Call] = field(default_factory=list)
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def root(self) -> str:
        """http://127.0.0.1:port"""
        return self.origin

    @property
    def url(self) -> str:
        """The GRAPH_API_URL to use."""
        return f"{self.root}/v1.0"

    # -- scripting ----------------------------------------------------------------------------
    def fail(
        self,
        contains: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer `status` to the next `times` calls whose path and query contain `contains`
        (times=None: every such call from now on; "$skiptoken" hits every page but the first)."""
        with self._lock:
            self._failures.append(_Failure(contains, status, times, retry_after, method))

    def heal(self) -> None:
        """Forget every scripted failure."""
        with self._lock:
            self._failures.clear()

    def calls_to(self, contains: str, method: str | None = None) -> list[Call]:
        """Recorded calls whose path contains `contains`."""
        with self._lock:
            return [
                c
                for c in self.calls
                if contains in c.path and (method is None or c.method == method)
            ]

    # -- serving ------------------------------------------------------------------------------
    def _take_failure(self, path: str, method: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.contains in path and failure.method in (None, method):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return failure
        return None

    def _handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(request.path)
        path = unquote(parts.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body: Any = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in request.headers.items()}
        failure = self._take_failure(f"{path}?{unquote(parts.query)}", method)
        if failure is not None:
            status, answer, extra = failure.status, {"error": {"code": "scripted"}}, {}
            if failure.retry_after is not None:
                extra["Retry-After"] = failure.retry_after
        else:
            status, answer, extra = self._answer(method, path, query, body, headers)
        with self._lock:
            self.calls.append(Call(method, path, query, headers, body, status))
        send_json(request, status, answer, extra)

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any, dict[str, str]]:
        segments = path.strip("/").split("/")
        if segments[0] != "v1.0":
            return 404, {"error": {"code": "notFound"}}, {}
        if headers.get("authorization") != f"Bearer {FAKE_TOKEN}":
            return 401, {"error": {"code": "InvalidAuthenticationToken"}}, {}
        rest = segments[1:]
        if rest[:1] == ["groups"] and rest[2:] == ["calendar", "calendarView"]:
            if "startDateTime" not in query or "endDateTime" not in query:
                return 400, {"error": {"code": "ErrorInvalidParameter"}}, {}
            start, end = _instant(query["startDateTime"]), _instant(query["endDateTime"])
            chosen = [
                e
                for e in self.events.get(rest[1], [])
                if _instant(e["start"]["dateTime"]) < end and _instant(e["end"]["dateTime"]) > start
            ]
            return 200, self._page(path, query, chosen), {}
        if rest[:1] == ["sites"] and rest[2:3] == ["lists"] and rest[4:] == ["items"]:
            if query.get("$expand") != "fields":
                return 400, {"error": {"code": "invalidRequest", "message": "expand fields"}}, {}
            found = self.items.get((rest[1], rest[3]))
            if found is None:
                return 404, {"error": {"code": "itemNotFound"}}, {}
            return 200, self._page(path, query, found), {}
        return 404, {"error": {"code": "notFound", "message": path}}, {}

    def _page(self, path: str, query: dict[str, str], rows: list[dict[str, Any]]) -> Any:
        skip = int(query.get("$skiptoken", "0"))
        size = min(self.page_size, int(query.get("$top", self.page_size)))
        page: dict[str, Any] = {"value": rows[skip : skip + size]}
        if skip + size < len(rows):
            following = {**query, "$skiptoken": str(skip + size)}
            page["@odata.nextLink"] = f"{self.root}{path}?{urlencode(following)}"
        return page


def send_json(
    request: BaseHTTPRequestHandler,
    status: int,
    answer: Any,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer `request` with `status` and `answer` as JSON (no body when None)."""
    data = json.dumps(answer).encode() if answer is not None else b""
    request.send_response(status)
    request.send_header("Content-Type", "application/json")
    request.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(data)


def serve_locally(
    handle: Callable[[BaseHTTPRequestHandler, str], None], tls: ssl.SSLContext | None = None
) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (port 0; HTTPS with `tls`) in a daemon thread, passing each GET,
    POST and PUT to `handle(request, method)`. Shut it down and close it when done."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handle(self, "GET")

        def do_POST(self) -> None:
            handle(self, "POST")

        def do_PUT(self) -> None:
            handle(self, "PUT")

        def log_message(self, *_args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # The standard library listens with a backlog of 5: a burst of concurrent posts (the
        # benches send 10 at once, plus retries) would wait on SYN retries no real service has.
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def event(
    event_id: str, subject: str, start: str, end: str, *, location: str = "", **extra: Any
) -> dict[str, Any]:
    """A Graph calendar event in UTC, as calendarView returns it."""
    return {
        "id": event_id,
        "iCalUId": f"uid-{event_id}",
        "subject": subject,
        "start": {"dateTime": f"{start}:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": f"{end}:00.0000000", "timeZone": "UTC"},
        "location": {"displayName": location},
        "isCancelled": False,
        **extra,
    }


def list_item(item_id: int, **fields: Any) -> dict[str, Any]:
    """A SharePoint list item as `items?$expand=fields` returns it."""
    return {"id": str(item_id), "fields": {"id": str(item_id), **fields}}
