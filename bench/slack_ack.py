"""Latency of a signed `/scrutiny` slash command: our endpoint against a bare Bolt app.

Both apps run under uvicorn on 127.0.0.1 behind the same Starlette routing, each in its own
process; Slack's Web API and the response_url are played by the fake from tests/fakes, in a
third process. The client (this process) sends requests signed exactly as Slack signs them,
10 at a time, alternating rounds between the two apps so drift hits both alike, and reports
p50/p99 of the time to the acknowledgement.

    .venv/bin/python bench/slack_ack.py [--requests 1000] [--concurrency 10] [--text "help"]

Our app keeps working after the ack (dispatch in a worker thread, reply to the response_url),
so the figure includes the cost of that work competing with later acknowledgements.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"


def _serve(kind: str, api_url: str, database_url: str) -> None:
    """Child process: serve one app (or the fake API), print its port, run until killed."""
    from tests.fakes.slack_api import FakeSlackApi, ServedApp

    if kind == "fake":
        with FakeSlackApi() as fake:
            print(f"PORT {fake.port}", flush=True)
            while True:
                time.sleep(3600)
    from bot.app import create_app
    from bot.platforms.slack.app import bare_web_app, build_slack
    from bot.settings import load_settings
    from bot.web import create_web_app

    settings = load_settings(
        database_url=database_url,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_api_url=api_url,
        log_level="WARNING",
    )
    if kind == "ours":
        app = create_app(settings)
        asgi = create_web_app(app, [build_slack(app)])
    else:
        asgi = bare_web_app(settings)
    with ServedApp(asgi) as served:
        print(f"PORT {served.port}", flush=True)
        while True:
            time.sleep(3600)


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


def _start(kind: str, api_url: str, database_url: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--api-url", api_url, "--db", database_url],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"{kind} did not start: {line!r}")
    return process, int(line.split()[1])


async def _round(
    client: httpx.AsyncClient, url: str, bodies: list[str], concurrency: int
) -> list[float]:
    from tests.fakes.slack_api import slack_signature

    queue: asyncio.Queue[str] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": slack_signature(SECRET, stamp, body),
            }
            started = time.perf_counter()
            response = await client.post(url, content=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: {response.text}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def _drained(client: httpx.AsyncClient, api_port: int) -> None:
    """Wait until the fake API has had a reply for every command our app acknowledged."""
    previous = -1
    while True:
        counts = (await client.get(f"http://127.0.0.1:{api_port}/_counts")).json()
        done = counts.get("response_url", 0)
        if done == previous:
            return
        previous = done
        await asyncio.sleep(0.5)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def _measure(args: argparse.Namespace, api_port: int, ports: dict[str, int]) -> None:
    from tests.fakes.slack_api import SlashCommand

    def bodies(count: int) -> list[str]:
        response_url = f"http://127.0.0.1:{api_port}/respond/bench"
        form = SlashCommand("U0TOR00001", args.text, response_url=response_url).form()
        return [urlencode(form)] * count

    results: dict[str, list[float]] = {"ours": [], "bare": []}
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        for port in ports.values():  # warm up: imports, auth.test, connections
            await _round(client, f"http://127.0.0.1:{port}/slack/events", bodies(50), 10)
        await _drained(client, api_port)
        rounds = 4
        for _ in range(rounds):
            for kind, port in ports.items():
                url = f"http://127.0.0.1:{port}/slack/events"
                share = bodies(args.requests // rounds)
                results[kind] += await _round(client, url, share, args.concurrency)
                # Our replies are still being sent after the last ack: let them finish so
                # they do not slow the next round (the two servers share the machine).
                await _drained(client, api_port)
    print(
        f"/scrutiny {args.text!r}: {args.requests} signed requests per app, "
        f"{args.concurrency} concurrent"
    )
    for kind, label in (("bare", "bare Bolt AsyncApp"), ("ours", "scrutiny-bot")):
        values = results[kind]
        print(
            f"  {label:<20} p50 {_percentile(values, 0.5) * 1000:7.2f} ms   "
            f"p99 {_percentile(values, 0.99) * 1000:7.2f} ms   "
            f"mean {statistics.fmean(values) * 1000:7.2f} ms   n={len(values)}"
        )
    ratio50 = _percentile(results["ours"], 0.5) / _percentile(results["bare"], 0.5)
    ratio99 = _percentile(results["ours"], 0.99) / _percentile(results["bare"], 0.99)
    verdict = "within" if ratio99 <= 1.5 else "OUTSIDE"
    print(
        f"  ratio ours/bare      p50 {ratio50:.2f}x   p99 {ratio99:.2f}x "
        f"({verdict} the 1.5x target)"
    )


def main() -> None:
    """Run the benchmark (or, with --serve, one of its servers)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--text", default="actions overdue torfaen")
    parser.add_argument("--serve", choices=("fake", "ours", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help="DATABASE_URL for our app (default: temp SQLite)")
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.api_url, args.db)
        return
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        try:
            database_url = args.db or _prepare_database(Path(folder) / "bench.db")
            fake, api_port = _start("fake", "", "")
            processes.append(fake)
            api_url = f"http://127.0.0.1:{api_port}/api/"
            ports: dict[str, int] = {}
            for kind in ("bare", "ours"):
                process, ports[kind] = _start(kind, api_url, database_url)
                processes.append(process)
            asyncio.run(_measure(args, api_port, ports))
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
