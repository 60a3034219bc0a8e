"""slack_sdk's WebClient over kept-alive HTTP connections.

The SDK's sync client sends each call through `urllib.request.urlopen`, which opens a new TCP
(and TLS) connection per call and closes it after: a fan-out of a thousand posts paid for a
thousand handshakes. `KeepAliveWebClient` replaces only the transport step: the SDK still builds
the request (token, JSON body, headers) and still reads the answer (`SlackResponse`,
`SlackApiError`, a 429's Retry-After), but the bytes go over a connection taken from a small pool
of idle ones and put back after a complete answer.

A connection the server has closed while it sat idle is noticed before it is used (its socket is
readable: the server's FIN) and replaced, so nothing was sent on it. A request that fails while it
is being written on a reused connection is sent again once on a new one: the server cannot have
acted on a request it did not receive whole. A failure after the request was written (no answer,
a reset while waiting) is raised as it is; the outbox treats it as "maybe posted" and looks for
the post before trying again, so keep-alive never turns an unknown outcome into a second post.
"""

from __future__ import annotations

import http.client
import io
import select
import threading
from typing import Any
from urllib.error import HTTPError
from urllib.parse import SplitResult, urlsplit
from urllib.request import Request

from slack_sdk import WebClient

MAX_IDLE = 16
"""Idle connections kept per client (the sender posts from a few threads at once)."""


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when an idle connection cannot be used: no socket, or the server has closed it
    (an idle keep-alive socket that is readable holds the server's FIN or unwanted bytes)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


class KeepAliveWebClient(WebClient):
    """A WebClient that reuses HTTP connections; see the module docstring.

    `connections_opened` counts the TCP connections this client has opened (a fan-out should
    open about as many as it posts in parallel, not one per post).
    """

    def __init__(self, *args: Any, max_idle: int = MAX_IDLE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_idle = max_idle
        self.connections_opened = 0
        self._idle: list[tuple[tuple[str, str, int], http.client.HTTPConnection]] = []
        self._idle_lock = threading.Lock()

    def close(self) -> None:
        """Close the idle connections (those in use close when their call ends)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            connection.close()

    def _origin(self, parts: SplitResult) -> tuple[str, str, int]:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.scheme, parts.hostname or "", port

    def _take(self, origin: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to `origin` that is still open, or a new one; whether reused."""
        while True:
            with self._idle_lock:
                index = next((i for i, (o, _) in enumerate(self._idle) if o == origin), None)
                if index is None:
                    break
                _, connection = self._idle.pop(index)
            if not _dropped(connection):
                return connection, True
            connection.close()
        return self._open(origin), False

    def _open(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self.timeout, context=self.ssl
            )
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        with self._idle_lock:
            self.connections_opened += 1
        return connection

    def _give_back(
        self, origin: tuple[str, str, int], connection: http.client.HTTPConnection
    ) -> None:
        with self._idle_lock:
            if len(self._idle) < self.max_idle:
                self._idle.append((origin, connection))
                return
        connection.close()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        """The SDK's transport step, over a pooled connection (a proxy keeps the SDK's own)."""
        parts = urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https"):
            return dict(super()._perform_urllib_http_request_internal(url, req))
        origin = self._origin(parts)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = dict(req.header_items())
        connection, reused = self._take(origin)
        try:
            try:
                connection.request(req.get_method(), target, body=req.data, headers=headers)
            except (ConnectionError, http.client.HTTPException):
                if not reused:
                    raise
                # Closed under us while the request was written: it never arrived whole.
                connection.close()
                connection = self._open(origin)
                connection.request(req.get_method(), target, body=req.data, headers=headers)
            response = connection.getresponse()
            body = response.read()
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            self._give_back(origin, connection)
        if response.status >= 400:
            # As urlopen does, so the SDK's own handling (429 Retry-After, error bodies) applies.
            raise HTTPError(
                url, response.status, response.reason, response.headers, io.BytesIO(body)
            )
        if response.headers.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": response.headers, "body": body}
        charset = response.headers.get_content_charset() or "utf-8"
        return {
            "status": response.status,
            "headers": response.headers,
            "body": body.decode(charset),
        }
