"""Socket Mode (SLACK_APP_TOKEN set): the app opens a websocket to the fake's
apps.connections.open URL and answers envelopes there; HTTP still serves /healthz, and the
`serve` command refuses to start without Slack or Teams settings."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from bot.app import create_app
from bot.cli import cli
from bot.platforms.slack.app import SlackPlatform, build_slack
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.slack_api import (
    BOT_TOKEN,
    FakeSlackApi,
    ServedApp,
    SlashCommand,
    slack_settings,
)

APP_TOKEN = "xapp-1-A0APP00001-1234-abcdef"


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def socket_platform(database_url: str, engine: Engine, fake: FakeSlackApi) -> SlackPlatform:
    settings = slack_settings(
        database_url, fake, slack_signing_secret=None, slack_app_token=APP_TOKEN
    )
    return build_slack(create_app(settings, engine), clock=lambda: NOW)


def test_socket_mode_connects_and_answers_envelopes(
    socket_platform: SlackPlatform, fake: FakeSlackApi, seed: Seed
) -> None:
    with ServedApp(create_web_app(socket_platform.app, [socket_platform])) as served:
        opened = fake.wait_for("apps.connections.open")[0]
        assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"
        command = SlashCommand("U0TOR00001", "actions overdue", response_url=fake.response_url())
        fake.socket_send(
            {
                "envelope_id": "57d6a792-4d35-4d0b-b6aa-3361493e1caf",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command.form(),
            }
        )
        ack = fake.wait_for_socket_ack("57d6a792-4d35-4d0b-b6aa-3361493e1caf")
        assert "payload" not in ack or not ack["payload"]
        reply = fake.wait_for("response_url")[0]
        assert "TP-001" in json.dumps(reply.body)
        event = {
            "type": "app_home_opened",
            "user": "U0TOR00001",
            "tab": "home",
            "channel": "D0TOR00001",
        }
        fake.socket_send(
            {
                "envelope_id": "e2",
                "type": "events_api",
                "accepts_response_payload": False,
                "payload": {"type": "event_callback", "event_id": "Ev0SOCK001", "event": event},
            }
        )
        fake.wait_for_socket_ack("e2")
        assert fake.wait_for("views.publish")[0].body["user_id"] == "U0TOR00001"
        health = httpx.get(served.url + "/healthz").json()
        assert health["platforms"]["slack"]["mode"] == "socket"
        assert health["platforms"]["slack"]["connected"] is True
        # No public events endpoint in Socket Mode: nothing to sign, nothing to attack.
        assert httpx.post(served.url + "/slack/events", content=b"{}").status_code == 404
    assert fake.violations == []


def test_socket_mode_payloads_of_the_wrong_shape_are_acknowledged_and_ignored(
    socket_platform: SlackPlatform, fake: FakeSlackApi, seed: Seed
) -> None:
    # Socket Mode requests never pass the HTTP endpoint: the listeners check shapes too.
    button = {
        "type": "block_actions",
        "user": {"id": "U0TOR00001"},
        "response_url": fake.response_url("button"),
        "actions": [{"action_id": "page", "value": "help", "selected_date_time": "abc"}],
    }
    command = {**SlashCommand("U0TOR00001", "help").form(), "text": ["help"]}
    with ServedApp(create_web_app(socket_platform.app, [socket_platform])):
        for number, (kind, payload) in enumerate(
            [("interactive", button), ("slash_commands", command)]
        ):
            envelope = {"envelope_id": f"bad{number}", "type": kind, "payload": payload}
            fake.socket_send({**envelope, "accepts_response_payload": False})
            fake.wait_for_socket_ack(f"bad{number}")
        fake.wait_until(lambda: socket_platform.stats["malformed"] == 2)
        good = SlashCommand("U0TOR00001", "help", response_url=fake.response_url("good"))
        fake.socket_send({"envelope_id": "good", "type": "slash_commands", "payload": good.form()})
        assert fake.wait_for("response_url")[0].path == "/respond/good"
    assert fake.calls_to("response_url")[1:] == []


def test_serve_refuses_to_start_without_slack_teams_or_register_signin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "TEAMS_APP_ID",
        "WEB_ENTRA_CLIENT_ID",
        "WEB_SLACK_CLIENT_ID",
    ):
        monkeypatch.setenv(name, "")
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "SLACK_BOT_TOKEN" in result.output and "SLACK_SIGNING_SECRET" in result.output
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    assert result.exit_code == 2
    assert "SLACK_SIGNING_SECRET" in result.output
