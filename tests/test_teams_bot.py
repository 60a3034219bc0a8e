"""The Teams app's bot on the real Teams SDK, served by the real web app under uvicorn, against a
local token issuer (OpenID metadata, keys, RS256 tokens; Entra ID for the bot's own sign-in) and
a local Bot Connector: every bad token refused before any handler runs, questions answered in a
personal chat, a group chat and a channel, mentions, and a real Teams activity replayed."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
from microsoft_teams.api import MessageActivity
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Platform
from bot.messages import Request
from bot.models import Channel
from bot.platforms.teams.activities import MAX_REQUEST_BYTES
from bot.platforms.teams.sdk_bot import TeamsBot, message_text
from bot.settings import SettingsError, load_settings
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import APP_ID, FakeTokenIssuer
from tests.support.teams import (
    BOT,
    GROUP_CHAT,
    PERSONAL,
    SIAN,
    THREAD,
    activity,
    add_teams_channel,
    post,
)
from tests.test_slack_http import _alive

DATA = Path(__file__).parent / "data" / "teams"


@pytest.fixture
def channel(session: Session, seed: Seed) -> Channel:
    return add_teams_channel(session, seed)


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


@pytest.mark.parametrize(
    ("field", "value"),
    [("timestamp", [None, 1]), ("textFormat", ["plain"]), ("conversation", "x"), ("from", None)],
)
def test_a_signed_body_that_is_not_a_teams_activity_gets_400_and_nothing_runs(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    bot: TeamsBot,
    field: str,
    value: object,
) -> None:
    body = {**activity(connector, "personal", "help"), field: value}

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 400
    assert field in response.json()["detail"]
    assert bot.stats["dispatched"] == 0 and bot.stats["malformed"] == 1
    assert connector.calls == []
    # Unsigned, the same body is refused for its token, saying nothing of its shape.
    assert post(served, body, None).status_code == 401


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


def test_reply_processes_build_the_answer_and_stop_with_the_bot(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, teams_app: ScrutinyApp
) -> None:
    """TEAMS_REPLY_PROCESSES: the answer is built in a worker process of its own, so the
    loop that acknowledges activities never waits on the command; the worker stops with it."""
    bot = TeamsBot(teams_app, processes=1)
    with ServedApp(create_web_app(teams_app, [bot])) as served:
        assert bot._workers is not None
        (worker,) = bot._workers.pids()  # started with the app
        assert worker != os.getpid() and _alive(worker)
        body = activity(connector, "personal", "actions overdue torfaen")

        assert post(served, body, issuer.token(connector.service_url)).status_code == 200

        connector.wait_until(lambda: bool(connector.calls), timeout=60)
        [sent] = connector.calls
        request = Request(Platform.TEAMS, SIAN, "actions overdue torfaen", None, True, NOW)
        assert card_lines(sent.cards[0]) == expected_lines(teams_app, request)
        assert bot.health()["reply_processes"] == 1
    assert not _alive(worker)


def test_a_reply_whose_work_fails_tells_the_member(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, teams_app: ScrutinyApp
) -> None:
    """Work that fails after the ack (here the database is gone) is told to the member in
    the conversation, not left unanswered."""
    if teams_app.engine.dialect.name != "sqlite":
        pytest.skip("removes the SQLite file under the app (the platform's part is the same)")
    bot = TeamsBot(teams_app, processes=0)
    with ServedApp(create_web_app(teams_app, [bot])) as served:
        teams_app.engine.dispose()
        Path(teams_app.settings.database_url.removeprefix("sqlite:///")).unlink()
        body = activity(connector, "personal", "actions overdue torfaen")

        assert post(served, body, issuer.token(connector.service_url)).status_code == 200

        connector.wait_until(lambda: bool(connector.calls))
        [sent] = connector.calls
        assert "Something went wrong on our side" in " ".join(card_lines(sent.cards[0]))
        assert bot.health()["work_failed"] == 1


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


def test_a_mention_in_a_channel_thread_is_answered_in_the_thread(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    teams_app: ScrutinyApp,
    channel: Channel,
) -> None:
    # A reply in a thread (not its first post) is answered publicly there, as on Slack; a
    # new post gets a private answer (tests/test_teams_private.py).
    body = activity(
        connector,
        "channel",
        "<at>Scrutiny</at> actions overdue torfaen",
        mentions=((BOT, "Scrutiny"),),
        thread="1700000000001",
    )

    response = post(served, body, issuer.token(connector.service_url))

    assert response.status_code == 200
    connector.wait_until(lambda: bool(connector.calls))
    [sent] = connector.calls
    assert sent.conversation_id == f"{THREAD};messageid=1700000000001"
    assert "refresh" not in sent.cards[0]
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


def test_the_channel_thread_id_teams_sends_finds_the_stored_channel(
    teams_app: ScrutinyApp, session: Session, channel: Channel, seed: Seed
) -> None:
    # Stored as "<team>/<thread>"; Teams names the thread alone. The dispatcher's own lookup
    # matches it, in the unit of work it already has.
    assert teams_app.find_channel(session, Platform.TEAMS, THREAD) is channel
    assert teams_app.find_channel(session, Platform.TEAMS, channel.external_id) is channel
    # A wildcard is no wildcard, a part of the thread id is not the thread, and another
    # platform's channel is never matched by a Teams suffix.
    assert teams_app.find_channel(session, Platform.TEAMS, "%") is None
    assert teams_app.find_channel(session, Platform.TEAMS, THREAD[5:]) is None
    assert teams_app.find_channel(session, Platform.SLACK, THREAD) is None


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
    # The bot's own token source signs in with the managed identity for outbox posts too.
    assert Platform.TEAMS in managed.posting_platforms
