"""Ready or not: `serve` and `worker` bring a fresh or old schema up to date at start, and
GET /healthz answers 503 with the reason while the schema is behind or the database is away."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import cli
from bot.db import head_revision, make_engine, migrate, schema_revision
from bot.web import create_web_app
from tests.conftest import settings_without_platforms
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.outbox_support import add_post
from tests.support.teams import activity, post

PROJECT = Path(__file__).resolve().parent.parent
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"
"""Port 1 on this machine: the connection is refused at once."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_on_a_fresh_database_migrates_and_answers_a_signed_activity(
    tmp_path: Path,
) -> None:
    database = f"sqlite:///{tmp_path / 'fresh.db'}"
    port = _free_port()
    with FakeTokenIssuer(tmp_path) as issuer, FakeBotConnector() as connector:
        env = {
            **os.environ,
            "DATABASE_URL": database,
            **{name.upper(): str(value) for name, value in issuer.settings().items()},
            # MSAL (through requests) trusts the fake Entra ID's certificate.
            "REQUESTS_CA_BUNDLE": str(issuer.entra.ca_file),
            "SLACK_BOT_TOKEN": "",
            "SLACK_SIGNING_SECRET": "",
            "SLACK_APP_TOKEN": "",
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "scrutiny-bot"), "serve", "--port", str(port)],
            env=env,
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            health = None
            while health is None:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "serve did not start"
                try:
                    health = httpx.get(base + "/healthz", timeout=2)
                except httpx.TransportError:
                    time.sleep(0.1)
            assert health.status_code == 200 and health.json()["status"] == "ok"
            body = activity(connector, "personal", "help")
            answer = post(base, body, issuer.token(connector.service_url))
            assert answer.status_code == 200, answer.text
            # An unknown member on an empty register gets the polite refusal, not a 500.
            connector.wait_until(lambda: bool(connector.calls))
            [sent] = connector.calls
            assert "secretariat" in " ".join(
                block["text"] for block in sent.cards[0]["body"] if block["type"] == "TextBlock"
            )
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    assert schema_revision(make_engine(database)) == head_revision()


def test_worker_once_on_a_fresh_database_migrates_first(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(cli, ["worker", "--once"], env={"DATABASE_URL": database})
    assert result.exit_code == 0, result.output
    assert "Sent 0" in result.output
    assert schema_revision(make_engine(database)) == head_revision()


def test_healthz_is_503_with_the_reason_while_the_schema_is_behind(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(database)
    migrate(engine, "0002")
    app = create_app(settings_without_platforms(database), engine)
    with ServedApp(create_web_app(app)) as served:
        behind = httpx.get(served.url + "/healthz")
        assert behind.status_code == 503
        found = behind.json()
        assert found["status"] == "unavailable" and found["database"] == "schema behind"
        assert "0002" in found["reason"] and "scrutiny-bot db upgrade" in found["reason"]
        migrate(engine)
        ready = httpx.get(served.url + "/healthz")
        assert ready.status_code == 200 and "reason" not in ready.json()
    engine.dispose()


def test_healthz_warns_of_posts_waiting_for_a_platform_without_credentials(
    database_url: str, engine: Engine, seed: Seed, session: Session
) -> None:
    app = create_app(settings_without_platforms(database_url), engine)
    with ServedApp(create_web_app(app)) as served:
        # A generous timeout: on a loaded machine the first request also opens the pool.
        first = httpx.get(served.url + "/healthz", timeout=30)
        assert "posts_waiting_without_credentials" not in first.json()
        add_post(session, app, seed.channels["srs-torfaen"], "k-waiting")
        health = httpx.get(served.url + "/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json()["posts_waiting_without_credentials"] == {"slack": 1}


def test_healthz_is_503_when_the_database_cannot_be_reached() -> None:
    app = create_app(settings_without_platforms(UNREACHABLE))
    with ServedApp(create_web_app(app)) as served:
        away = httpx.get(served.url + "/healthz")
    assert away.status_code == 503
    found = away.json()
    assert found["database"] == "unreachable" and "DATABASE_URL" in found["reason"]
    app.engine.dispose()


def test_the_worker_refuses_to_start_on_a_database_it_cannot_reach() -> None:
    result = CliRunner().invoke(cli, ["worker", "--once"], env={"DATABASE_URL": UNREACHABLE})
    assert result.exit_code == 1
    assert "Check DATABASE_URL" in result.output and "Traceback" not in result.output
