"""The Teams app's bot on the real Teams SDK, served by the real web app under uvicorn, against a
local token issuer (OpenID metadata, keys, RS256 tokens; Entra ID for the bot's own sign-in) and
a local Bot Connector: every bad token refused before any handler runs, questions answered in a
personal chat, a group chat and a channel, mentions, and a real Teams activity replayed."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from microsoft_teams.api import MessageActivity
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.domain import Marking, Platform
from bot.messages import Request
from bot.models import Channel
from bot.platforms.teams.sdk_bot import MESSAGES_PATH, TeamsBot, build_teams_bot, message_text
from bot.platforms.teams.webhook import MAX_REQUEST_BYTES
from bot.settings import SettingsError, load_settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import APP_ID, TENANT_ID, FakeTokenIssuer

DATA = Path(__file__).parent / "data" / "teams"
BOT = f"28:{APP_ID}"
SIAN = "00000000-0000-0000-0000-000000R00001"
"""Sian Hughes (Torfaen, scrutiny member), by her Entra object id in the seed."""
TEAM = "19:torfaenteam000000000000000000000@thread.tacv2"
THREAD = "19:torfaen0000000000000000000000000@thread.tacv2"
GROUP_CHAT = "19:meeting-prep-5f0c1a0e9b7d4c2a@thread.v2"
PERSONAL = "a:1personal-chat-with-sian-hughes"


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
    settings = load_settings(
        database_url=database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        **issuer.settings(),
    )
    return create_app(settings, engine)


@pytest.fixture
def bot(teams_app: ScrutinyApp) -> TeamsBot:
    return build_teams_bot(teams_app, clock=lambda: NOW)


@pytest.fixture
def served(teams_app: ScrutinyApp, bot: TeamsBot) -> Iterator[ServedApp]:
    with ServedApp(create_web_app(teams_app, [bot])) as server:
        yield server


@pytest.fixture
def channel(session: Session, seed: Seed) -> Channel:
    found = Channel(
        slug="teams-torfaen",
        name="Torfaen scrutiny",
        platform=Platform.TEAMS,
        external_id=f"{TEAM}/{THREAD}",
        partner=seed.partners["torfaen"],
        clearance=Marking.OFFICIAL,
    )
    session.add(found)
    session.commit()
    return found


def activity(
    connector: FakeBotConnector,
    kind: str,
    text: str,
    *,
    user: str = SIAN,
    mentions: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """A message activity as Teams sends one (`mentions`: (id, name) of each @mention)."""
    conversation = {"personal": PERSONAL, "groupChat": GROUP_CHAT, "channel": THREAD}[kind]
    channel_data: dict[str, Any] = {"tenant": {"id": TENANT_ID}}
    if kind == "channel":
        conversation += ";messageid=1700000000050"
        channel_data |= {"teamsChannelId": THREAD, "channel": {"id": THREAD}, "team": {"id": TEAM}}
    return {
        "type": "message",
        "id": "1700000000050",
        "channelId": "msteams",
        "serviceUrl": connector.service_url,
        "timestamp": "2026-11-23T09:00:00.000Z",
        "from": {"id": "29:1sian-hughes", "name": "Sian Hughes", "aadObjectId": user},
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


def post(served: ServedApp, body: dict[str, Any] | bytes, token: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(served.url + MESSAGES_PATH, content=content, headers=headers, timeout=30)


def card_lines(card: dict[str, Any]) -> list[str]:
    return [block["text"] for block in card["body"] if block["type"] == "TextBlock"]


def expected_lines(app: ScrutinyApp, request: Request) -> list[str]:
    """The reply's card from the feature's template, through the same dispatcher."""
    [card] = app.dispatch(request, "teams.json").documents
    return card_lines(card)


# -- inbound authentication -------------------------------------------------------------------
REFUSALS = {
    "unsigned": lambda issuer, url: None,
    "expired": lambda issuer, url: issuer.token(url, expires_in=-600),
    "wrong audience": lambda issuer, url: issuer.token(url, audience="another-bot-app-id"),
    "wrong issuer": lambda issuer, url: issuer.token(url, issuer="https://api.example.invalid"),
    "wrong key": lambda issuer, url: issuer.token(url, key=issuer.stranger_key()),
    "mismatched service URL": lambda issuer, url: issuer.token(
        "https://smba.trafficmanager.net/emea/"
    ),
    "no service URL claim": lambda issuer, url: issuer.token(None),
    "not a token": lambda issuer, url: "not-a-jwt",
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_missing_or_bad_token_is_refused_before_any_handler(
    case: str,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    bot: TeamsBot,
) -> None:
    body = activity(connector, "personal", "help")
    token = REFUSALS[case](issuer, connector.service_url)

    response = post(served, body, token)

    assert response.status_code == 401
    assert bot.stats["dispatched"] == 0
    assert bot.stats["refused"] == 1
    assert connector.calls == []


def test_an_activity_without_a_service_url_is_refused(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, bot: TeamsBot
) -> None:
    body = activity(connector, "personal", "help")
    del body["serviceUrl"]

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 401
    assert bot.stats["dispatched"] == 0
    assert connector.calls == []


def test_a_body_over_the_cap_is_refused_unread(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, bot: TeamsBot
) -> None:
    body = activity(connector, "personal", "x" * (MAX_REQUEST_BYTES + 1))

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 413
    assert bot.stats["dispatched"] == 0
    assert connector.calls == []


def test_a_body_that_is_not_json_is_refused(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, bot: TeamsBot
) -> None:
    response = post(served, b'{"type": "message", "text": "\xff"}', issuer.token(None))

    assert response.status_code == 400
    assert bot.stats["dispatched"] == 0


# -- answers ------------------------------------------------------------------------------------
def test_a_personal_chat_question_is_answered_as_a_card(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    teams_app: ScrutinyApp,
) -> None:
    body = activity(connector, "personal", "actions overdue torfaen")

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 200
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert sent.kind == "send"
    assert sent.conversation_id == PERSONAL
    assert sent.bearer == issuer.outbound_token
    [card] = sent.cards
    assert card["version"] == "1.5"
    request = Request(Platform.TEAMS, SIAN, "actions overdue torfaen", None, True, NOW)
    assert card_lines(card) == expected_lines(teams_app, request)
    assert any("TP-001" in line for line in card_lines(card))
    # The bot signed in at the fake Entra ID with its client credentials, and nowhere else.
    assert issuer.entra.grants() == ["client_credentials"]


def test_a_group_chat_question_is_answered_in_the_group_chat(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    teams_app: ScrutinyApp,
) -> None:
    body = activity(connector, "groupChat", "<at>Scrutiny</at> help", mentions=((BOT, "Scrutiny"),))

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 200
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert (sent.kind, sent.conversation_id) == ("send", GROUP_CHAT)
    # A group chat is no registered channel: it is read for the narrowest audience.
    request = Request(Platform.TEAMS, SIAN, "help", GROUP_CHAT, False, NOW)
    assert card_lines(sent.cards[0]) == expected_lines(teams_app, request)


def test_a_channel_mention_is_answered_in_its_thread(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    teams_app: ScrutinyApp,
    channel: Channel,
) -> None:
    body = activity(
        connector,
        "channel",
        "<at>Scrutiny</at> actions overdue torfaen",
        mentions=((BOT, "Scrutiny"),),
    )

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 200
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert sent.conversation_id == f"{THREAD};messageid=1700000000050"
    request = Request(
        Platform.TEAMS, SIAN, "actions overdue torfaen", channel.external_id, False, NOW
    )
    assert card_lines(sent.cards[0]) == expected_lines(teams_app, request)


def test_a_stranger_is_told_to_ask_the_secretariat(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    body = activity(connector, "personal", "help", user="11111111-2222-3333-4444-555555555555")

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 200
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert "secretariat" in " ".join(card_lines(sent.cards[0]))


# -- mentions ---------------------------------------------------------------------------------
def _message(connector: FakeBotConnector, text: str, *mentions: tuple[str, str]) -> MessageActivity:
    return MessageActivity.model_validate(activity(connector, "channel", text, mentions=mentions))


def test_the_bots_mention_is_dropped_and_other_peoples_kept_as_names(
    connector: FakeBotConnector,
) -> None:
    message = _message(
        connector,
        "<at>Scrutiny</at> what did <at>Ceri Morgan</at> record about TP-001?&nbsp;",
        (BOT, "Scrutiny"),
        ("29:1ceri-morgan", "Ceri Morgan"),
    )

    assert message_text(message) == "what did Ceri Morgan record about TP-001?"


def test_text_around_a_mention_keeps_its_markup_inert(connector: FakeBotConnector) -> None:
    message = _message(
        connector, "<p><at>Scrutiny</at> find <b>data</b> &amp; centre</p>", (BOT, "Scrutiny")
    )

    assert message_text(message) == "find data & centre"


# -- a real activity ----------------------------------------------------------------------------
def test_a_real_teams_channel_activity_is_answered_in_its_thread(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    recorded = json.loads((DATA / "channel_message_reply_to_thread.json").read_text())
    body = copy.deepcopy(recorded)
    # Only where the reply goes changes: the recorded activity's Bot Connector is Microsoft's.
    body["serviceUrl"] = connector.service_url
    assert recorded["recipient"]["id"] == BOT
    token = issuer.token(connector.service_url)

    response = post(served, body, token)

    assert response.status_code == 200
    assert message_text(MessageActivity.model_validate(recorded)) == "reply to thread"
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert sent.conversation_id == recorded["conversation"]["id"]
    # The sender is no member here, so the answer is the unknown-member card.
    assert "secretariat" in " ".join(card_lines(sent.cards[0]))


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("teams_openid_metadata_url", "https://login.botframework.com/v1/.well-known/keys"),
        ("teams_openid_metadata_url", "http://login.botframework.com/v1/openidconfiguration"),
        ("teams_token_issuer", "http://api.botframework.com"),
        ("teams_authority_host", "http://127.0.0.1:8443"),
        ("teams_service_url", "ftp://smba.trafficmanager.net/teams"),
        ("teams_certificate_path", "/nonexistent/bot-certificate.pem"),
    ],
)
def test_a_malformed_teams_setting_stops_the_bot_naming_it(
    database_url: str, name: str, value: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(database_url=database_url, teams_app_id=APP_ID, **{name: value})

    assert name.upper() in str(refused.value)


def test_the_bot_needs_its_app_id_and_a_credential(database_url: str) -> None:
    assert not load_settings(database_url=database_url, teams_app_id=APP_ID).teams_bot_enabled
    assert not load_settings(database_url=database_url, teams_client_secret="s").teams_bot_enabled
    managed = load_settings(
        database_url=database_url, teams_app_id=APP_ID, teams_managed_identity_client_id="system"
    )
    assert (managed.teams_bot_enabled, managed.teams_credential) == (True, "managed identity")
