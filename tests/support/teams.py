"""The Teams bot's test set-up, shared by every Teams test: a local token issuer (the Bot
Framework's keys and tokens, and Entra ID for the bot's own sign-in), a local Bot Connector, the
app with the bot's settings, the bot served by the real web app under uvicorn, and activities
as Teams sends them.

tests/conftest.py makes the fixtures (`issuer`, `connector`, `teams_app`, `bot`, `served`)
every test's; a module may still define its own of the same name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.domain import Marking, Platform
from bot.models import Channel
from bot.outbox import Pacer, SendReport
from bot.platforms.registry import messengers
from bot.platforms.teams.connector_messenger import ConnectorMessenger
from bot.platforms.teams.sdk_bot import MESSAGES_PATH, TeamsBot, build_teams_bot
from bot.scheduler import make_sender
from bot.settings import Settings, load_settings
from bot.web import create_web_app
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import APP_ID, TENANT_ID, FakeTokenIssuer
from tests.outbox_support import quick_policy

BOT = f"28:{APP_ID}"
SIAN = "00000000-0000-0000-0000-000000R00001"
"""Sian Hughes (Torfaen, scrutiny member), by her Entra object id in the seed."""
TEAM = "19:torfaenteam000000000000000000000@thread.tacv2"
THREAD = "19:torfaen0000000000000000000000000@thread.tacv2"
GROUP_CHAT = "19:meeting-prep-5f0c1a0e9b7d4c2a@thread.v2"
PERSONAL = "a:1personal-chat-with-sian-hughes"


def bot_settings(
    database_url: str,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector | None = None,
    **more: Any,
) -> Settings:
    """Settings of a Teams bot that trusts `issuer` and signs in at it, posting to `connector`
    when given, and no Slack; `more` adds settings or replaces the issuer's (a credential)."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "slack_bot_token": None,
        "slack_signing_secret": None,
        **issuer.settings(),
    }
    if connector is not None:
        values["teams_service_url"] = connector.service_url.rstrip("/")
    return load_settings(**{**values, **more})


def connector_messenger(
    app: ScrutinyApp, issuer: FakeTokenIssuer, connector: FakeBotConnector
) -> ConnectorMessenger:
    """The outbox's Teams sender for a bot signed in at `issuer`, posting to `connector`, as
    the platform registry builds it from the settings."""
    settings = bot_settings(app.settings.database_url, issuer, connector)
    found = messengers(settings, app.sessions)[Platform.TEAMS]
    assert isinstance(found, ConnectorMessenger)
    return found


def send(app: ScrutinyApp, messenger: ConnectorMessenger) -> SendReport:
    """Run the outbox's sender once for Teams, unpaced and with quick retries."""
    sender = make_sender(
        app,
        {Platform.TEAMS: messenger},
        policy=quick_policy(),
        pacer=Pacer(per_channel=0, per_second=0),
    )
    return sender.send_due()


@pytest.fixture
def issuer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTokenIssuer]:
    with FakeTokenIssuer(tmp_path) as fake:
        # MSAL (through requests) trusts the fake Entra ID's certificate and nothing else new.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.entra.ca_file))
        yield fake


@pytest.fixture
def connector() -> Iterator[FakeBotConnector]:
    with FakeBotConnector() as fake:
        yield fake


@pytest.fixture
def teams_app(
    database_url: str, engine: Engine, seed: Seed, issuer: FakeTokenIssuer
) -> ScrutinyApp:
    return create_app(bot_settings(database_url, issuer), engine)


@pytest.fixture
def bot(teams_app: ScrutinyApp) -> TeamsBot:
    # On the app's clock: the program's, standing at NOW in tests.
    return build_teams_bot(teams_app)


@pytest.fixture
def served(teams_app: ScrutinyApp, bot: TeamsBot) -> Iterator[ServedApp]:
    with ServedApp(create_web_app(teams_app, [bot])) as server:
        yield server


def activity(
    connector: FakeBotConnector | str,
    kind: str,
    text: str,
    *,
    user: str = SIAN,
    mentions: tuple[tuple[str, str], ...] = (),
    ident: str = "1700000000050",
    thread: str | None = None,
    sender: tuple[str, str] = ("29:1sian-hughes", "Sian Hughes"),
) -> dict[str, Any]:
    """A message activity as Teams sends one, to the connector (or its service URL);
    `mentions`: (id, name) of each @mention; in a channel, a new post (its own thread) unless
    `thread` names the first post of the thread it replies in; `sender`: the sender's Teams
    id and name (`user` is their Entra object id)."""
    service_url = connector if isinstance(connector, str) else connector.service_url
    conversation = {"personal": PERSONAL, "groupChat": GROUP_CHAT, "channel": THREAD}[kind]
    channel_data: dict[str, Any] = {"tenant": {"id": TENANT_ID}}
    if kind == "channel":
        conversation += f";messageid={thread or ident}"
        channel_data |= {"teamsChannelId": THREAD, "channel": {"id": THREAD}, "team": {"id": TEAM}}
    return {
        "type": "message",
        "id": ident,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": "2026-11-23T09:00:00.000Z",
        "from": {"id": sender[0], "name": sender[1], "aadObjectId": user},
        "recipient": {"id": BOT, "name": "Scrutiny"},
        "conversation": {
            "id": conversation,
            "conversationType": kind,
            "tenantId": TENANT_ID,
            **({"isGroup": True} if kind != "personal" else {}),
        },
        "channelData": channel_data,
        "text": text,
        "textFormat": "plain",
        "entities": [
            {"type": "mention", "mentioned": {"id": who, "name": name}, "text": f"<at>{name}</at>"}
            for who, name in mentions
        ],
    }


def post(
    served: ServedApp | str, body: dict[str, Any] | bytes, token: str | None
) -> httpx.Response:
    """POST an activity to the bot (served, or at a base URL), with `token` as its bearer."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    base = served if isinstance(served, str) else served.url
    return httpx.post(base + MESSAGES_PATH, content=content, headers=headers, timeout=30)


def add_teams_channel(
    session: Session, seed: Seed, partner: str = "torfaen", **given: Any
) -> Channel:
    """`partner`'s Teams channel, the one the test activities come from (TEAM/THREAD), cleared
    for OFFICIAL; `given` sets any other column."""
    found = Channel(
        slug=f"teams-{partner}",
        name=f"{partner.title()} scrutiny",
        platform=Platform.TEAMS,
        external_id=f"{TEAM}/{THREAD}",
        partner=seed.partners[partner],
        clearance=Marking.OFFICIAL,
        **given,
    )
    session.add(found)
    session.commit()
    return found
