"""Latency of a signed `/scrutiny` slash command: our endpoint against a bare Bolt app, to the
acknowledgement and (ours) to the reply.

Both apps run under uvicorn on 127.0.0.1 behind the same Starlette routing, each in its own
process; Slack's Web API and the response_url are played by the fake from tests/fakes, in a
third process. The client (this process) sends requests signed exactly as Slack signs them,
from a real seeded member (Torfaen's, in Torfaen's channel) running a real command, 10 at a
time, alternating rounds between the two apps so drift hits both alike. It reports:

- ack: request sent → HTTP answer, p50/p99, ours and bare, and their ratio (target 1.2x);
- reply (ours): request sent → the reply's POST reaching the fake's response_url, p50/p99/max
  (target p99 under 1 s). Every request has a response_url of its own; the fake notes when
  each first received a post, by the machine's monotonic clock, which on Linux is one clock for
  every process (CLOCK_MONOTONIC).

Two workloads run at each count: `single`, the one command above, and `mixed`, eleven read-only
commands (lists, single refs, a search, meetings, home, help) from six askers of different
partners and clearances (in their channels, in direct messages, one in another partner's
channel), round-robin. For each, the share of answers our answer cache served is read from our
/healthz; `--answer-cache 1000 0` runs ours with and without it side by side.

Each count (1,000 and 3,000 by default) is sent as `--rounds` bursts per app; after each burst
of ours the client waits for every reply before the next burst, so no reply work overlaps the
bare app's turn. With `--runs 3` the servers stay up and the whole measurement is repeated;
the min–max over the runs is printed at the end.

    .venv/bin/python bench/slack_ack.py [--requests 1000 3000] [--runs 3] [--concurrency 10]
        [--text "actions overdue torfaen"] [--processes 0 2] [--workload single mixed]
        [--answer-cache 1000 0] [--timeout 1800]

It never hangs: servers that do not start within a minute, replies that do not all arrive
within `--reply-timeout` and a whole run past `--timeout` stop it with a message saying what
was missing; the servers exit with this process.

`SLACK_ACK_PROFILE=/tmp/ack` profiles the thread that serves each app (its event loop, which
acknowledges and, in ours, sends the replies) with cProfile and writes the stats to
/tmp/ack.ours and /tmp/ack.bare when the run ends; read them with `python -m pstats`. The
figures printed with it are slower than without.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import itertools
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.report import latency_line, percentile, ratio_line, ratios, spread_line  # noqa: E402

SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
MEMBER, CHANNEL = "U0TOR00001", "C0TOR00001"
"""Torfaen's seeded member, asking in Torfaen's registered channel."""
MIXED_ASKERS = (
    (MEMBER, CHANNEL, "srs-torfaen"),
    ("U0POL00001", "C0POL00001", "srs-police"),
    ("U0SEC00001", "C0SEC00001", "srs-secretariat"),
    ("U0MON00001", "D0MON00001", "directmessage"),
    ("U0NEW00001", "D0NEW00001", "directmessage"),
    ("U0POL00001", CHANNEL, "srs-torfaen"),
)
"""The mixed workload's askers: members of five partners, cleared OFFICIAL or OFFICIAL-
SENSITIVE, in their partners' channels, in direct messages, and one in another's channel."""
MIXED_COMMANDS = (
    "actions overdue torfaen",
    "actions",
    "actions due soon",
    "action TP-001",
    "decisions",
    "decisions strategic",
    "decision SB-2026-031",
    "find data centre",
    "meetings",
    "home",
    "help",
)
"""Read-only commands of every kind the answer cache keeps, taken round-robin with the askers
(their counts are coprime, so every asker asks every command)."""
STARTUP_TIMEOUT = 60.0
ACK_TARGET = 1.2
REPLY_TARGET = 1.0
"""Seconds: the reply p99 the issue asks for."""


class GaveUp(Exception):
    """The benchmark stopped waiting; the message says for what."""


def _until_parent_ends() -> None:
    # The parent holds our stdin open; when it closes it or ends (even killed), this returns.
    sys.stdin.read()


def _serve(kind: str, api_url: str, database_url: str, processes: int, cache: int) -> None:
    """Child process: serve one app (or the fake API), print its port, run until the parent
    ends; then stop as the app stops (its reply processes with it)."""
    from tests.fakes.slack_api import FakeSlackApi, ServedApp

    if kind == "fake":
        with FakeSlackApi() as fake:
            print(f"PORT {fake.port}", flush=True)
            _until_parent_ends()
        return
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
        slack_reply_processes=processes,
        answer_cache_size=cache,
    )
    if kind == "ours":
        app = create_app(settings)
        asgi = create_web_app(app, [build_slack(app)])
    else:
        asgi = bare_web_app(settings)
    profile_to = os.environ.get("SLACK_ACK_PROFILE")
    if profile_to:
        import cProfile

        import uvicorn

        plain_run = uvicorn.Server.run
        profiler = cProfile.Profile()

        def profiled_run(server: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
            # Only the thread that serves (the event loop that acknowledges) is profiled.
            profiler.enable()
            try:
                plain_run(server, *args, **kwargs)
            finally:
                profiler.disable()
                profiler.dump_stats(f"{profile_to}.{kind}")

        uvicorn.Server.run = profiled_run  # type: ignore[method-assign]
    with ServedApp(asgi) as served:
        print(f"PORT {served.port}", flush=True)
        _until_parent_ends()


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


def _start(
    kind: str, api_url: str, database_url: str, processes: int = 0, cache: int = 0
) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, __file__, "--serve", kind, "--api-url", api_url]
    command += ["--db", database_url, "--processes", str(processes)]
    command += ["--answer-cache", str(cache)]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], STARTUP_TIMEOUT)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("PORT "):
        process.kill()
        process.wait(10)
        said = repr(line) if ready else f"nothing within {STARTUP_TIMEOUT:g} s"
        raise GaveUp(f"the {kind} server did not start: {said}")
    return process, int(line.split()[1])


@dataclass
class Burst:
    """One burst of requests to one app: each request's response_url path and body."""

    requests: list[tuple[str, str]]
    acks: list[float] = field(default_factory=list)
    sent: dict[str, float] = field(default_factory=dict)
    """response_url path → when its request was sent (monotonic clock)."""


async def _send(client: httpx.AsyncClient, url: str, burst: Burst, concurrency: int) -> None:
    from tests.fakes.slack_api import slack_signature

    queue = list(reversed(burst.requests))

    async def worker() -> None:
        while queue:
            path, body = queue.pop()
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(stamp),
                "X-Slack-Signature": slack_signature(SECRET, stamp, body),
            }
            started = time.monotonic()
            burst.sent[path] = started
            response = await client.post(url, content=body, headers=headers)
            burst.acks.append(time.monotonic() - started)
            if response.status_code != 200:
                raise GaveUp(f"{url} answered {response.status_code}: {response.text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _replies(
    client: httpx.AsyncClient, api_port: int, burst: Burst, timeout: float
) -> list[float]:
    """Wait until the fake received a reply at every response_url of the burst; the time from
    each request to its reply."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(f"http://127.0.0.1:{api_port}/_received")
        received: dict[str, float] = response.json()
        missing = [path for path in burst.sent if path not in received]
        if not missing:
            return [received[path] - sent for path, sent in burst.sent.items()]
        if time.monotonic() > deadline:
            raise GaveUp(
                f"{len(missing)} of {len(burst.sent)} replies had not reached the fake "
                f"response_url {timeout:g} s after the burst (first missing: {missing[0]})"
            )
        await asyncio.sleep(0.05)


@dataclass
class Measured:
    """One run at one count: ack times of both apps, reply times of ours."""

    count: int
    workload: str
    acks: dict[str, list[float]] = field(default_factory=dict)
    """App (`bare`, or a variant of ours) → ack times."""
    replies: dict[str, list[float]] = field(default_factory=dict)
    busy: dict[str, float] = field(default_factory=dict)
    """Variant of ours → seconds from the first request of its bursts to their last reply."""
    kept: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Variant of ours → (answers from its answer cache, answers) in this run."""


class Bench:
    """The client side: signed requests to both apps, replies read back from the fake."""

    def __init__(self, args: argparse.Namespace, api_port: int, ports: dict[str, int]) -> None:
        self.args, self.api_port, self.ports = args, api_port, ports
        self._ids = itertools.count(1)

    def burst(self, count: int, workload: str) -> Burst:
        """`single`: the one command (`--text`) from Torfaen's member in Torfaen's channel;
        `mixed`: the askers and commands above, round-robin."""
        from tests.fakes.slack_api import SlashCommand

        requests = []
        for index in range(count):
            path = f"/respond/b{next(self._ids)}"
            url = f"http://127.0.0.1:{self.api_port}{path}"
            if workload == "single":
                form = SlashCommand(MEMBER, self.args.text, channel_id=CHANNEL, response_url=url)
            else:
                user, channel, name = MIXED_ASKERS[index % len(MIXED_ASKERS)]
                text = MIXED_COMMANDS[index % len(MIXED_COMMANDS)]
                form = SlashCommand(user, text, channel, name, response_url=url)
            requests.append((path, urlencode(form.form())))
        return Burst(requests)

    async def kept(self, client: httpx.AsyncClient, kind: str) -> tuple[int, int]:
        """(answers from the answer cache, answers) so far, from our /healthz."""
        response = await client.get(f"http://127.0.0.1:{self.ports[kind]}/healthz")
        for facts in response.json().get("platforms", {}).values():
            if "answers" in facts:
                return int(facts.get("answers_kept", 0)), int(facts["answers"])
        return 0, 0

    async def run(
        self, client: httpx.AsyncClient, kind: str, count: int, workload: str = "single"
    ) -> Burst:
        """Send `count` requests to one app; for ours, wait for (and time) every reply."""
        url = f"http://127.0.0.1:{self.ports[kind]}/slack/events"
        burst = self.burst(count, workload)
        await _send(client, url, burst, self.args.concurrency)
        return burst

    async def measure(self, client: httpx.AsyncClient, count: int, workload: str) -> Measured:
        """One run at `count` requests per app."""
        measured = Measured(count, workload)
        ours = [kind for kind in self.ports if kind != "bare"]
        before = {kind: await self.kept(client, kind) for kind in ours}
        rounds = self.args.rounds
        for index in range(rounds):
            share = count // rounds + (1 if index < count % rounds else 0)
            for kind in self.ports:
                burst = await self.run(client, kind, share, workload)
                measured.acks.setdefault(kind, []).extend(burst.acks)
                if kind == "bare":
                    continue
                times = await _replies(client, self.api_port, burst, self.args.reply_timeout)
                measured.replies.setdefault(kind, []).extend(times)
                last = max(
                    sent + time for sent, time in zip(burst.sent.values(), times, strict=True)
                )
                busy = last - min(burst.sent.values())
                measured.busy[kind] = measured.busy.get(kind, 0.0) + busy
        for kind in ours:
            kept, answers = await self.kept(client, kind)
            measured.kept[kind] = (kept - before[kind][0], answers - before[kind][1])
        return measured

    async def warm_up(self, client: httpx.AsyncClient) -> None:
        """Imports, auth.test, connections, the first queries: not measured."""
        for kind in self.ports:
            burst = await self.run(client, kind, 50, "mixed")
            if kind != "bare":
                await _replies(client, self.api_port, burst, self.args.reply_timeout)


def _print_run(run: int, measured: Measured, args: argparse.Namespace) -> None:
    asked = (
        f"/scrutiny {args.text!r} from {MEMBER}"
        if measured.workload == "single"
        else f"{len(MIXED_COMMANDS)} read-only commands from {len(MIXED_ASKERS)} askers, "
        "round-robin"
    )
    print(
        f"run {run}, {measured.workload}: {measured.count} signed requests per app "
        f"({args.rounds} bursts, {args.concurrency} concurrent), {asked}"
    )
    bare = measured.acks["bare"]
    print(latency_line("ack   bare Bolt AsyncApp", bare))
    for kind, replies in measured.replies.items():
        print(latency_line(f"ack   {kind}", measured.acks[kind]))
        print(ratio_line(measured.acks[kind], bare, ACK_TARGET))
        print(latency_line(f"reply {kind}", replies))
        p99 = percentile(replies, 0.99)
        verdict = "within" if p99 <= REPLY_TARGET else "OUTSIDE"
        rate = len(replies) / measured.busy[kind]
        print(
            f"  {'reply p99':<26} {p99:.2f} s ({verdict} the {REPLY_TARGET:g} s target); "
            f"{rate:.0f} replies/s while replying"
        )
        kept, answers = measured.kept[kind]
        share = f"{kept / answers:.1%}" if answers else "-"
        print(f"  {'answer cache hits':<26} {share} ({kept} of {answers} answers)")


def _print_spread(results: list[Measured]) -> None:
    print(
        f"over {len(results)} runs at {results[0].count} requests per app, "
        f"{results[0].workload}, min–max:"
    )
    for kind in results[0].acks:
        for fraction, name in ((0.5, "p50"), (0.99, "p99")):
            values = [percentile(m.acks[kind], fraction) * 1000 for m in results]
            print(spread_line(f"ack {name} {kind}", values))
    for kind in results[0].replies:
        ratio99 = [ratios(m.acks[kind], m.acks["bare"])[1] for m in results]
        print(spread_line(f"ack p99 ratio {kind}/bare", ratio99, "x"))
        for fraction, name in ((0.5, "p50"), (0.99, "p99"), (1.0, "max")):
            values = [percentile(m.replies[kind], fraction) * 1000 for m in results]
            print(spread_line(f"reply {name} {kind}", values))


async def _measure(args: argparse.Namespace, api_port: int, ports: dict[str, int]) -> None:
    bench = Bench(args, api_port, ports)
    results: dict[tuple[int, str], list[Measured]] = {
        (count, workload): [] for count in args.requests for workload in args.workload
    }
    limits = httpx.Limits(max_connections=args.concurrency * 2)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await bench.warm_up(client)
        for run in range(1, args.runs + 1):
            for count in args.requests:
                for workload in args.workload:
                    measured = await bench.measure(client, count, workload)
                    results[count, workload].append(measured)
                    _print_run(run, measured, args)
    if args.runs > 1:
        for measured_runs in results.values():
            _print_spread(measured_runs)


def main() -> None:
    """Run the benchmark (or, with --serve, one of its servers)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=4, help="bursts per app at each count")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--text", default="actions overdue torfaen")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for everything")
    parser.add_argument("--reply-timeout", type=float, default=300.0, help="seconds per burst")
    parser.add_argument(
        "--processes",
        type=int,
        nargs="+",
        default=[2],
        help="SLACK_REPLY_PROCESSES of ours (0: threads); several compare them in one run",
    )
    parser.add_argument(
        "--workload",
        nargs="+",
        choices=("single", "mixed"),
        default=["single", "mixed"],
        help="single: --text from one member; mixed: 11 commands from 6 askers, round-robin",
    )
    parser.add_argument(
        "--answer-cache",
        type=int,
        nargs="+",
        default=[1000],
        help="ANSWER_CACHE_SIZE of ours (0: no cache); several compare them in one run",
    )
    parser.add_argument("--serve", choices=("fake", "ours", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--db", default="", help="DATABASE_URL for our app (default: temp SQLite)")
    args = parser.parse_args()
    if args.serve:
        _serve(args.serve, args.api_url, args.db, args.processes[0], args.answer_cache[0])
        return
    # A last resort should anything block outside the event loop: show where, and exit.
    faulthandler.dump_traceback_later(args.timeout + 120, exit=True)
    processes: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        try:
            database_url = args.db or _prepare_database(Path(folder) / "bench.db")
            fake, api_port = _start("fake", "", "")
            processes.append(fake)
            api_url = f"http://127.0.0.1:{api_port}/api/"
            process, port = _start("bare", api_url, database_url)
            processes.append(process)
            ports = {"bare": port}
            for count in args.processes:
                for cache in args.answer_cache:
                    process, port = _start("ours", api_url, database_url, count, cache)
                    processes.append(process)
                    name = f"ours, {count} processes" if count else "ours, threads"
                    ports[f"{name}, cache {cache}"] = port
            asyncio.run(asyncio.wait_for(_measure(args, api_port, ports), args.timeout))
        except TimeoutError:
            sys.exit(f"gave up: the benchmark took longer than --timeout {args.timeout:g} s")
        except GaveUp as stopped:
            sys.exit(f"gave up: {stopped}")
        finally:
            for process in processes:
                assert process.stdin is not None
                process.stdin.close()  # the servers stop when their stdin closes
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
