"""A fake Slack Web API on 127.0.0.1: records every call and checks Block Kit limits.

An aiohttp server in its own thread, in the spirit of bolt-python's `tests/mock_web_api_server`:
it answers the Web API methods the bot uses, a `response_url` endpoint, and the Socket Mode
websocket. It validates every posted message and view against Slack's limits on its own
(independently of `bot.rendering.slack_blocks`) and answers `invalid_blocks` when one is broken.
Tests can make it answer 429 with Retry-After, or 500, for the next calls to a method.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from aiohttp import WSMsgType, web

from bot.clock import CLOCK
from bot.settings import Settings, load_settings

BOT_USER_ID = "U0BOT00001"
BOT_TOKEN = "xoxb-17653672481-19874698323-test"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class Call:
    """One request the fake received."""

    method: str
    """Web API method (`chat.postMessage`), or `response_url` for a response URL post."""
    body: dict[str, Any]
    headers: dict[str, str]
    status: int = 200
    ok: bool = True
    error: str = ""
    path: str = ""
    at: float = field(default_factory=time.monotonic)
    """When it arrived, by the machine's monotonic clock (comparable across processes on
    Linux, where it is CLOCK_MONOTONIC): the benchmark's reply latency ends here."""


@dataclass
class _Failure:
    status: int
    times: int
    retry_after: int | None = None
    error: str | None = None


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_of(obj: Any) -> str | None:
    return obj.get("text") if isinstance(obj, dict) and isinstance(obj.get("text"), str) else None


def _check_text(
    problems: list[str], where: str, obj: Any, limit: int, required: bool = True
) -> None:
    text = _text_of(obj)
    if text is None:
        if required:
            problems.append(f"{where}: missing text")
        return
    if not text.strip():
        problems.append(f"{where}: empty text")
    if _units(text) > limit:
        problems.append(f"{where}: text {_units(text)} > {limit}")


def _check_element(problems: list[str], where: str, element: Any) -> None:
    if not isinstance(element, dict):
        problems.append(f"{where}: not an object")
        return
    if element.get("type") == "button":
        _check_text(problems, f"{where}.text", element.get("text"), 75)
    if isinstance(element.get("value"), str) and _units(element["value"]) > 2000:
        problems.append(f"{where}: value longer than 2000")
    if len(str(element.get("action_id", ""))) > 255:
        problems.append(f"{where}: action_id longer than 255")
    if "placeholder" in element:
        _check_text(problems, f"{where}.placeholder", element["placeholder"], 150)
    groups = element.get("option_groups", [])
    if groups and "options" in element:
        problems.append(f"{where}: both options and option_groups")
    if len(groups) > 100:
        problems.append(f"{where}.option_groups: more than 100 groups")
    lists = [(key, element.get(key, [])) for key in ("options", "initial_options")]
    for g, group in enumerate(groups):
        _check_text(problems, f"{where}.option_groups[{g}].label", group.get("label"), 75)
        lists.append((f"option_groups[{g}].options", group.get("options", [])))
    for key, options in lists:
        if len(options) > 100:
            problems.append(f"{where}.{key}: more than 100 options")
        for i, option in enumerate(options):
            _check_text(problems, f"{where}.{key}[{i}]", option.get("text"), 75)
            if len(str(option.get("value", ""))) > 150:
                problems.append(f"{where}.{key}[{i}]: value longer than 150")


def block_kit_problems(blocks: Any, max_blocks: int) -> list[str]:
    """Every Block Kit limit `blocks` breaks (empty when Slack would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    problems: list[str] = []
    if len(blocks) > max_blocks:
        problems.append(f"{len(blocks)} blocks > {max_blocks}")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, dict):
            problems.append(f"{where}: not an object")
            continue
        if "block_id" in block:
            if block["block_id"] in block_ids:
                problems.append(f"{where}: duplicate block_id {block['block_id']!r}")
            block_ids.add(block["block_id"])
        kind = block.get("type")
        if kind == "section":
            fields = block.get("fields", [])
            _check_text(problems, f"{where}.text", block.get("text"), 3000, required=not fields)
            if len(fields) > 10:
                problems.append(f"{where}: more than 10 fields")
            for i, item in enumerate(fields):
                _check_text(problems, f"{where}.fields[{i}]", item, 2000)
            if "accessory" in block:
                _check_element(problems, f"{where}.accessory", block["accessory"])
        elif kind == "header":
            _check_text(problems, f"{where}.text", block.get("text"), 150)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                problems.append(f"{where}: {len(elements)} elements (1 to 25 allowed)")
            action_ids = [e.get("action_id") for e in elements if isinstance(e, dict)]
            if len(action_ids) != len(set(action_ids)):
                problems.append(f"{where}: duplicate action_id")
            for i, element in enumerate(elements):
                _check_element(problems, f"{where}.elements[{i}]", element)
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10:
                problems.append(f"{where}: {len(elements)} elements (1 to 10 allowed)")
            for i, element in enumerate(elements):
                if element.get("type") in ("mrkdwn", "plain_text"):
                    _check_text(problems, f"{where}.elements[{i}]", element, 3000)
        elif kind == "input":
            _check_text(problems, f"{where}.label", block.get("label"), 2000)
            _check_element(problems, f"{where}.element", block.get("element"))
        elif kind not in ("divider", "image", "rich_text"):
            problems.append(f"{where}: unknown block type {kind!r}")
    return problems


def message_problems(body: dict[str, Any]) -> list[str]:
    """Problems with a chat message body: limits, and the fallback `text` Slack asks for."""
    problems: list[str] = []
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        problems.append("fallback text missing")
    elif _units(text) > 40000:
        problems.append("fallback text longer than 40000")
    if "blocks" in body:
        problems.extend(block_kit_problems(body["blocks"], 50))
    return problems


def view_problems(view: Any) -> list[str]:
    """Problems with a modal or home view."""
    if not isinstance(view, dict):
        return ["view is not an object"]
    problems = block_kit_problems(view.get("blocks", []), 100)
    if view.get("type") not in ("modal", "home"):
        problems.append(f"view type {view.get('type')!r}")
    if view.get("type") == "modal":
        _check_text(problems, "title", view.get("title"), 24)
        for key in ("submit", "close"):
            if key in view:
                _check_text(problems, key, view[key], 24)
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("private_metadata longer than 3000")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("callback_id longer than 255")
    return problems


def _decode_json_fields(body: dict[str, Any]) -> dict[str, Any]:
    # Form-encoded calls carry blocks and views as JSON strings.
    for key in ("blocks", "view"):
        if isinstance(body.get(key), str):
            with contextlib.suppress(ValueError):
                body[key] = json.loads(body[key])
    return body


class FakeSlackApi:
    """The fake server. Use as a context manager; `url` is the Web API base URL."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.socket_messages: list[dict[str, Any]] = []
        self.uploaded_bytes: dict[str, bytes] = {}
        """File id -> bytes received at its upload URL."""
        self._failures: dict[str, list[_Failure]] = {}
        self._stalls: list[float] = []
        self._closed_port: socket.socket | None = None
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []
        self._ts = itertools.count(1)
        self.port = 0
        self.group_dms: dict[str, list[str]] = {}
        """Group DM (mpim) id -> its members (the bot among them), for conversations.*."""
        self.members_page = 2
        """Members per conversations.members page, whatever limit is asked (to page)."""
        self._connections: dict[int, asyncio.BaseTransport] = {}
        self.connections_seen = 0
        """TCP connections that carried at least one request (keep-alive reuses one)."""

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> FakeSlackApi:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        application = web.Application(middlewares=[self._count_connection])
        application.router.add_route("POST", "/api/{method}", self._api)
        application.router.add_route("GET", "/api/{method}", self._api)
        application.router.add_route("POST", "/respond/{name}", self._respond)
        application.router.add_route("GET", "/socket", self._socket)
        application.router.add_route("GET", "/_counts", self._counts)
        application.router.add_route("GET", "/_received", self._received)
        application.router.add_route("POST", "/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(application, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    @web.middleware
    async def _count_connection(self, request: web.Request, handler: Any) -> web.StreamResponse:
        transport = request.transport
        if transport is not None and id(transport) not in self._connections:
            # Kept (not just its id) so a closed connection's id is never taken for a new one.
            self._connections[id(transport)] = transport
            self.connections_seen += 1
        response: web.StreamResponse = await handler(request)
        return response

    def close_connections(self) -> int:
        """Close every open client connection from the server's side, as an idle timeout
        would; how many were open."""

        async def close() -> int:
            open_ = [t for t in self._connections.values() if not t.is_closing()]
            for transport in open_:
                transport.close()
            # Let the loop finish the closes, so the client's sockets see the FIN.
            for _ in range(3):
                await asyncio.sleep(0)
            return len(open_)

        return asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    async def _stop(self) -> None:
        for websocket in list(self._sockets):
            await websocket.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._closed_port is not None:
            self._closed_port.close()

    # -- what tests use ----------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the Web API, for SLACK_API_URL."""
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        """A response_url as Slack puts in slash commands and interactions."""
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    def unreachable_response_url(self, name: str = "gone") -> str:
        """A response_url nothing listens on: connecting to it is refused at once (a port held
        bound but not listening, as a proxy refusing Slack's host would)."""
        if self._closed_port is None:
            self._closed_port = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._closed_port.bind(("127.0.0.1", 0))
        port = self._closed_port.getsockname()[1]
        return f"http://127.0.0.1:{port}/respond/{name}"

    def stall_next_response(self, seconds: float, times: int = 1) -> None:
        """Answer the next `times` response_url posts only after `seconds` (slower than the
        bot waits: it gives up and uses the Web API)."""
        with self._cond:
            self._stalls.extend([seconds] * times)

    def fail_next(
        self,
        method: str,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        error: str | None = None,
    ) -> None:
        """Answer the next `times` calls to `method` with `status` (429 adds Retry-After;
        `error` names the Slack error, e.g. 200 with `not_in_channel`)."""
        with self._cond:
            failure = _Failure(status, times, retry_after, error)
            self._failures.setdefault(method, []).append(failure)

    def calls_to(self, method: str) -> list[Call]:
        """Calls received so far to one method (or `response_url`)."""
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 15.0, ok: bool = True
    ) -> list[Call]:
        """Block until `count` calls to `method` arrived (only successful ones when `ok`)."""
        deadline = time.monotonic() + timeout

        def matching() -> list[Call]:
            return [c for c in self.calls if c.method == method and (c.ok or not ok)]

        with self._cond:
            while len(matching()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(c.method, c.status, c.error) for c in self.calls]
                    raise AssertionError(f"expected {count} call(s) to {method}; saw {seen}")
                self._cond.wait(remaining)
            return matching()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        """Block until `predicate()` holds; it is re-checked whenever a call arrives."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "condition not met; calls: " + repr([c.method for c in self.calls])
                    )
                self._cond.wait(min(remaining, 0.05))

    def web_api_calls(self) -> list[Call]:
        """Every call except auth.test (which Bolt makes once to learn the bot's id)."""
        with self._cond:
            return [c for c in self.calls if c.method != "auth.test"]

    def reset(self) -> None:
        """Forget the calls recorded so far."""
        with self._cond:
            self.calls.clear()
            self.violations.clear()

    # -- Socket Mode -------------------------------------------------------------------
    def socket_send(self, envelope: dict[str, Any], timeout: float = 10.0) -> None:
        """Push a Socket Mode envelope to the connected app."""
        self.wait_until(lambda: bool(self._sockets), timeout)
        future = asyncio.run_coroutine_threadsafe(self._sockets[-1].send_json(envelope), self._loop)
        future.result(timeout)

    def wait_for_socket_ack(self, envelope_id: str, timeout: float = 15.0) -> dict[str, Any]:
        """The app's acknowledgement of one envelope."""
        found: list[dict[str, Any]] = []

        def acked() -> bool:
            found[:] = [m for m in self.socket_messages if m.get("envelope_id") == envelope_id]
            return bool(found)

        self.wait_until(acked, timeout)
        return found[0]

    # -- server ------------------------------------------------------------------------
    def _record(self, call: Call) -> None:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()

    def _take_failure(self, method: str) -> _Failure | None:
        with self._cond:
            queue = self._failures.get(method, [])
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        if not raw:
            return dict(request.query)
        if request.content_type == "application/json" or raw.lstrip().startswith("{"):
            loaded = json.loads(raw)
            return loaded if isinstance(loaded, dict) else {"_": loaded}
        return _decode_json_fields(dict(parse_qsl(raw, keep_blank_values=True)))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await self._body(request)
        headers = dict(request.headers)
        call = Call(method, body, headers, path=request.path)
        failure = self._take_failure(method)
        if failure is not None:
            call.status, call.ok, call.error = failure.status, False, f"http {failure.status}"
            self._record(call)
            extra = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            error = failure.error or ("ratelimited" if failure.status == 429 else "internal_error")
            return web.json_response(
                {"ok": False, "error": error}, status=failure.status, headers=extra
            )
        answer = self._answer(method, body, headers.get("Authorization", ""))
        call.ok, call.error = bool(answer.get("ok")), str(answer.get("error", ""))
        if call.error == "invalid_blocks":
            self.violations.append(f"{method}: {answer.get('errors')}")
        self._record(call)
        return web.json_response(answer)

    def _answer(self, method: str, body: dict[str, Any], auth: str) -> dict[str, Any]:
        if method == "apps.connections.open":
            if not auth.startswith("Bearer xapp-"):
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/socket"}
        if not auth.startswith("Bearer xoxb-"):
            return {"ok": False, "error": "invalid_auth"}
        ts = f"1700000000.{next(self._ts):06d}"
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://srs.slack.com/",
                "team": "SRS",
                "user": "scrutiny",
                "team_id": "T0SRS00001",
                "user_id": BOT_USER_ID,
                "bot_id": "B0BOT00001",
            }
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            problems = message_problems(body)
            if not body.get("channel"):
                return {"ok": False, "error": "channel_not_found"}
            if problems:
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            key = "message_ts" if method == "chat.postEphemeral" else "ts"
            return {"ok": True, "channel": body["channel"], key: body.get("ts", ts)}
        if method in ("views.publish", "views.open", "views.update", "views.push"):
            if method == "views.publish" and not body.get("user_id"):
                return {"ok": False, "error": "user_not_found"}
            if method in ("views.open", "views.push") and not body.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            problems = view_problems(body.get("view"))
            if problems:
                return {"ok": False, "error": "invalid_blocks", "errors": problems}
            return {"ok": True, "view": {"id": "V0VIEW0001", **body["view"]}}
        if method == "conversations.info":
            channel = str(body.get("channel", ""))
            return {
                "ok": True,
                "channel": {"id": channel, "is_mpim": channel in self.group_dms, "is_im": False},
            }
        if method == "conversations.members":
            members = self.group_dms.get(str(body.get("channel", "")))
            if members is None:
                return {"ok": False, "error": "channel_not_found"}
            start = int(body.get("cursor") or 0)
            end = start + self.members_page
            more = str(end) if end < len(members) else ""
            return {
                "ok": True,
                "members": members[start:end],
                "response_metadata": {"next_cursor": more},
            }
        if method == "conversations.history":
            posted = [
                {"ts": c.body.get("ts", ""), "text": c.body.get("text", "")}
                for c in self.calls
                if c.method == "chat.postMessage" and c.body.get("channel") == body.get("channel")
            ]
            return {"ok": True, "messages": posted, "has_more": False}
        return {"ok": False, "error": "unknown_method"}

    async def _counts(self, _request: web.Request) -> web.Response:
        # For a fake running in another process (the benchmark): calls so far by method.
        with self._cond:
            counts: dict[str, int] = {}
            for call in self.calls:
                counts[call.method] = counts.get(call.method, 0) + 1
        return web.json_response(counts)

    async def _received(self, _request: web.Request) -> web.Response:
        # For the benchmark: when each response_url (by path) first received a post.
        with self._cond:
            received: dict[str, float] = {}
            for call in self.calls:
                if call.method == "response_url":
                    received.setdefault(call.path, call.at)
        return web.json_response(received)

    async def _upload(self, request: web.Request) -> web.Response:
        # The upload URL files.getUploadURLExternal hands out: the file's bytes arrive here.
        data = await request.read()
        with self._cond:
            self.uploaded_bytes[request.match_info["file_id"]] = data
        self._record(
            Call("upload", {"length": len(data)}, dict(request.headers), path=request.path)
        )
        return web.Response(text="OK - " + str(len(data)))

    async def _respond(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        call = Call("response_url", body, dict(request.headers), path=request.path)
        with self._cond:
            stall = self._stalls.pop(0) if self._stalls else None
        if stall is not None:
            call.ok, call.error = False, "stalled"
            self._record(call)
            await asyncio.sleep(stall)
            return web.Response(text="ok")
        failure = self._take_failure("response_url")
        if failure is not None:
            call.status, call.ok, call.error = failure.status, False, f"http {failure.status}"
            self._record(call)
            extra = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            return web.Response(status=failure.status, text="error", headers=extra)
        problems = message_problems(body)
        if problems:
            call.ok, call.status, call.error = False, 400, "invalid_blocks"
            self.violations.append(f"response_url: {problems}")
            self._record(call)
            return web.Response(status=400, text="invalid_blocks")
        self._record(call)
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse()
        await websocket.prepare(request)
        self._sockets.append(websocket)
        await websocket.send_json({"type": "hello", "num_connections": 1, "debug_info": {}})
        async for message in websocket:
            if message.type == WSMsgType.TEXT:
                with self._cond:
                    self.socket_messages.append(json.loads(message.data))
                    self._cond.notify_all()
        self._sockets.remove(websocket)
        return websocket


@dataclass
class SlashCommand:
    """Form fields of a slash command as Slack sends them."""

    user_id: str
    text: str
    channel_id: str = "C0TOR00001"
    channel_name: str = "srs-torfaen"
    command: str = "/scrutiny"
    response_url: str = ""
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0"
    extra: dict[str, str] = field(default_factory=dict)

    def form(self) -> dict[str, str]:
        """The form body."""
        return {
            "token": "legacy-verification-token",
            "team_id": "T0SRS00001",
            "team_domain": "srs",
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "user_id": self.user_id,
            "user_name": self.user_id.lower(),
            "command": self.command,
            "text": self.text,
            "api_app_id": "A0APP00001",
            "response_url": self.response_url,
            "trigger_id": self.trigger_id,
            **self.extra,
        }


def slack_signature(secret: str, timestamp: int | str, body: str) -> str:
    """The `X-Slack-Signature` Slack sends: HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackSender:
    """Plays Slack sending signed requests to the bot's endpoint."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        fake: FakeSlackApi,
        clock: Callable[[], float] = lambda: CLOCK.now().timestamp(),
    ) -> None:
        self.url = url
        self.secret = signing_secret
        self.fake = fake
        self.clock = clock
        """Seconds since the epoch by the bot's clock (requests are signed at this time)."""
        self.http = httpx.Client(timeout=30)
        self._ids = itertools.count(1)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        signed: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a raw body, signed as Slack signs it unless told otherwise."""
        stamp = int(self.clock()) if timestamp is None else timestamp
        sent = {"Content-Type": content_type, **(headers or {})}
        if signed:
            sent["X-Slack-Request-Timestamp"] = str(stamp)
            sent["X-Slack-Signature"] = signature or slack_signature(self.secret, stamp, body)
        return self.http.post(self.url, content=body.encode(), headers=sent)

    def command(self, user_id: str, text: str, **fields: Any) -> httpx.Response:
        """A `/scrutiny` slash command (form-encoded), with a response_url on the fake."""
        name = f"cmd{next(self._ids)}"
        command = SlashCommand(user_id, text, response_url=self.fake.response_url(name), **fields)
        return self.post(urlencode(command.form()), "application/x-www-form-urlencoded")

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> httpx.Response:
        """An Events API callback (JSON); `retry` sets X-Slack-Retry-Num as Slack's retries do."""
        body = json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": "T0SRS00001",
                "api_app_id": "A0APP00001",
                "event": event,
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(self._ids):08d}",
                "event_time": 1700000000,
                "authorizations": [
                    {"team_id": "T0SRS00001", "user_id": BOT_USER_ID, "is_bot": True}
                ],
            }
        )
        headers = {}
        if retry is not None:
            headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return self.post(body, "application/json", headers=headers)

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        """A block action or view submission (form field `payload` holding JSON)."""
        base = {"team": {"id": "T0SRS00001", "domain": "srs"}, "api_app_id": "A0APP00001"}
        body = urlencode({"payload": json.dumps({**base, **payload})})
        return self.post(body, "application/x-www-form-urlencoded")

    def button(
        self,
        user_id: str,
        action_id: str,
        value: str,
        *,
        channel_id: str | None = "C0TOR00001",
        ephemeral: bool = True,
        response_url: str | None = None,
    ) -> httpx.Response:
        """A click on a button in a message (or in the App Home when `channel_id` is None);
        clicks on one message share its `response_url` (by default each click has its own)."""
        name = f"btn{next(self._ids)}"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user_id},
            "trigger_id": f"trigger-{name}",
            "actions": [
                {"type": "button", "action_id": action_id, "block_id": "b", "value": value}
            ],
        }
        if channel_id is None:
            payload["container"] = {"type": "view", "view_id": "V0VIEW0001"}
            payload["view"] = {"id": "V0VIEW0001", "type": "home"}
        else:
            payload["channel"] = {"id": channel_id}
            payload["container"] = {
                "type": "message",
                "channel_id": channel_id,
                "message_ts": "1700000000.000001",
                "is_ephemeral": ephemeral,
            }
            payload["response_url"] = response_url or self.fake.response_url(name)
        return self.interaction(payload)

    def submit(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> httpx.Response:
        """Submit a view the bot opened, with `values` as {block_id: element state}."""
        state = {block_id: {block_id: element} for block_id, element in values.items()}
        submitted = {**view, "id": "V0VIEW0002", "state": {"values": state}}
        return self.interaction(
            {"type": "view_submission", "user": {"id": user_id}, "view": submitted}
        )


class ServedApp:
    """An ASGI app under uvicorn on 127.0.0.1, port 0, in a thread."""

    def __init__(self, asgi_app: Any, listener: socket.socket | None = None) -> None:
        """`listener`: a socket already bound on 127.0.0.1, for an app that must know its own
        URL before it is built (the register's sign-in callback)."""
        config = uvicorn.Config(
            asgi_app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        sockets = {"sockets": [listener]} if listener is not None else {}
        self._thread = threading.Thread(target=self.server.run, kwargs=sockets, daemon=True)
        self.port = 0

    def __enter__(self) -> ServedApp:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    @property
    def url(self) -> str:
        """Base URL of the served app."""
        return f"http://127.0.0.1:{self.port}"


def slack_settings(database_url: str, fake: FakeSlackApi, **overrides: Any) -> Settings:
    """Settings for a bot talking to `fake`: HTTP mode unless `slack_app_token` is given;
    replies built in threads unless `slack_reply_processes` is given (processes take seconds
    to start)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_app_token": None,
        "slack_api_url": fake.url,
        "slack_reply_processes": 0,
        **overrides,
    }
    return load_settings(**values)
