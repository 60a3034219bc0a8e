"""Latency of a Teams message activity: our POST /api/messages against a bare Teams SDK app.

Both apps run under uvicorn on 127.0.0.1, each in its own process, on the same Teams SDK
settings: the local token issuer (OpenID metadata, keys; Entra ID for the outbound sign-in) and
the local Bot Connector from tests/fakes, run in this process's threads. The bare app answers
every message with a fixed Adaptive Card; ours dispatches it through the handlers and answers
with the reply's card. The client sends activities with tokens signed as the Bot Framework
signs them, 10 at a time, alternating rounds between the two apps, and reports p50/p99 of the
time to the HTTP answer. The bare app answers after its reply reached the connector (the SDK's
way); ours answers first and sends the reply after, as Slack's acknowledgement does; every round
waits for all replies to arrive before the next is measured.

    .venv/bin/python bench/teams_ack.py [--requests 1000] [--concurrency 10] [--text "help"]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import latency_line, ratio_line  # noqa: E402

SIAN = "00000000-0000-0000-0000-000000R00001"


def _serve(kind: str, config: dict[str, Any]) -> None:
    """Child process: serve one app, print its port, run until killed."""
    from microsoft_teams.api.activities.message.message import MessageActivityInput
    from microsoft_teams.api.models.attachment.attachment import Attachment
    from microsoft_teams.apps import App

    from bot.app import create_app
    from bot.platforms.teams.auth import app_options
    from bot.platforms.teams.sdk_bot import build_teams_bot
    from bot.rendering.teams_cards import CARD_CONTENT_TYPE
    from bot.settings import load_settings
    from bot.web import create_web_app
    from tests.fakes.slack_api import ServedApp

    settings = load_settings(database_url=config["db"], log_level="WARNING", **config["teams"])
    asgi: Any
    if kind == "ours":
        app = create_app(settings)
        asgi = create_web_app(app, [build_teams_bot(app)])
    else:
        bare = App(**app_options(settings))
        card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock"}]}
        card["body"][0]["text"] = "Hello from a bare Teams SDK app"

        @bare.on_message
        async def echo(ctx: Any) -> None:
            attachment = Attachment(content_type=CARD_CONTENT_TYPE, content=card)
            await ctx.send(MessageActivityInput().add_attachments(attachment))

        asyncio.run(bare.initialize())
        asgi = bare.server.adapter.app  # type: ignore[attr-defined]
    with ServedApp(asgi) as served:
        print(f"PORT {served.port}", flush=True)
        while True:
            time.sleep(3600)


REPLY_WAIT = 120.0
"""Seconds a round waits for all its replies; a reply still missing then fails the run."""


def _prepare_database(path: Path) -> str:
    from bot.db import make_engine, make_session_factory, migrate
    from tests.factories import seed_collaboration

    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        seed_collaboration(session)
        session.commit()
    engine.dispose()
    return url


def _start(kind: str, config: dict[str, Any], env: dict[str, str]) -> tuple[Any, int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--config", json.dumps(config)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"{kind} did not start: {line!r}")
    return process, int(line.split()[1])


async def _round(
    client: httpx.AsyncClient, url: str, requests: list[tuple[bytes, str]], concurrency: int
) -> list[float]:
    queue: asyncio.Queue[tuple[bytes, str]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            body, token = queue.get_nowait()
            headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _measure(
    args: argparse.Namespace, issuer: Any, connector: Any, ports: dict[str, int]
) -> None:
    app_id = issuer.app_id
    token = issuer.token(connector.service_url)

    def requests(count: int) -> list[tuple[bytes, str]]:
        body = {
            "type": "message",
            "id": "1700000000050",
            "channelId": "msteams",
            "serviceUrl": connector.service_url,
            "from": {"id": "29:1sian", "name": "Sian Hughes", "aadObjectId": SIAN},
            "recipient": {"id": f"28:{app_id}", "name": "Scrutiny"},
            "conversation": {"id": "a:1bench-personal", "conversationType": "personal"},
            "text": args.text,
        }
        return [(json.dumps(body).encode(), token)] * count

    results: dict[str, list[float]] = {"ours": [], "bare": []}
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    sent = 0

    def delivered() -> int:
        return len(connector.calls_of("send"))

    async def replied() -> None:
        # Ours answers the HTTP request before its reply is sent: each round waits for every
        # reply, so none is still being worked on while the other app is measured.
        await asyncio.to_thread(connector.wait_until, lambda: delivered() >= sent, REPLY_WAIT)

    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for port in ports.values():  # warm up: imports, keys, the outbound sign-in
            await _round(client, f"http://127.0.0.1:{port}/api/messages", requests(50), 10)
            sent += 50
            await replied()
        rounds = 4
        for _ in range(rounds):
            for kind, port in ports.items():
                url = f"http://127.0.0.1:{port}/api/messages"
                share = requests(args.requests // rounds)
                results[kind] += await _round(client, url, share, args.concurrency)
                sent += len(share)
                await replied()
    errors = len(connector.calls) - delivered()
    print(f"replies delivered: {delivered()} of {sent} (calls answered with an error: {errors})")
    print(
        f"Teams message {args.text!r}: {args.requests} activities per app, "
        f"{args.concurrency} concurrent"
    )
    print(latency_line("bare Teams SDK App", results["bare"]))
    print(latency_line("scrutiny-bot", results["ours"]))
    print(ratio_line(results["ours"], results["bare"], 1.5))


def main() -> None:
    """Run the benchmark (or, with --serve, one of its servers)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--text", default="actions overdue torfaen")
    parser.add_argument(
        "--processes",
        type=int,
        help="TEAMS_REPLY_PROCESSES for ours (default: the setting's own, as in production)",
    )
    parser.add_argument("--serve", choices=("ours", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--config", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, json.loads(args.config))
        return
    from tests.fakes.bot_connector import FakeBotConnector
    from tests.fakes.token_issuer import FakeTokenIssuer

    with tempfile.TemporaryDirectory() as folder:
        database = _prepare_database(Path(folder) / "bench.db")
        with FakeTokenIssuer(Path(folder)) as issuer, FakeBotConnector() as connector:
            teams = issuer.settings()
            # The issuer's settings are the tests' (replies in threads); ours runs as deployed.
            teams.pop("teams_reply_processes")
            if args.processes is not None:
                teams["teams_reply_processes"] = args.processes
            config = {"db": database, "teams": teams}
            env = {**os.environ, "REQUESTS_CA_BUNDLE": str(issuer.entra.ca_file)}
            started: list[Any] = []
            try:
                ports = {}
                for kind in ("ours", "bare"):
                    process, ports[kind] = _start(kind, config, env)
                    started.append(process)
                asyncio.run(_measure(args, issuer, connector, ports))
            finally:
                for process in started:
                    process.kill()
                    process.wait()


if __name__ == "__main__":
    main()
