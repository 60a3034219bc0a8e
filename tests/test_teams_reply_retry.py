"""The bot's direct replies survive the Bot Connector's transient failures, end to end: the real
web app under uvicorn answers signed activities and replies to the local Bot Connector, which
drops a connection (reset, or closed without an answer) or answers 500, 429 or 400 on demand.
A transient failure or a 429 is sent again and arrives once; a 4xx is never retried; giving up
is logged. The same rules serve a dialog's confirmation and the welcome."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from bot.platforms.teams.delivery import ATTEMPTS
from bot.platforms.teams.sdk_bot import TeamsBot
from tests.fakes.bot_connector import DROPPED, FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.teams import BOT, PERSONAL, activity, post
from tests.test_teams_invokes import CERI, dialog_card, invoke, opener_of, submitted, task

DELIVERY = "bot.platforms.teams.delivery"


Reply = Callable[[], list[logging.LogRecord]]
"""Ask the bot a question in a personal chat, wait until it has answered or given up; what
the delivery logged meanwhile."""


@pytest.fixture
def reply(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    bot: TeamsBot,
    caplog: pytest.LogCaptureFixture,
) -> Reply:
    caplog.set_level(logging.WARNING, logger=DELIVERY)

    def run() -> list[logging.LogRecord]:
        asked = activity(connector, "personal", "help")
        response = post(served, asked, issuer.token(connector.service_url))
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 20
        while bot.stats["answered"] + bot.stats["failed"] < 1:
            assert time.monotonic() < deadline, "the bot neither answered nor gave up"
            time.sleep(0.02)
        return [record for record in caplog.records if record.name == DELIVERY]

    return run


def statuses(connector: FakeBotConnector) -> list[int]:
    return [call.status for call in connector.calls]


def delivered_once(connector: FakeBotConnector) -> None:
    [sent] = connector.calls_of("send")
    assert sent.conversation_id == PERSONAL
    assert list(connector.posted.values()) == [sent.body]


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
def test_a_reply_after_a_dropped_connection_arrives_exactly_once(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply, reset: bool
) -> None:
    connector.drop_next("send", reset=reset)
    logged = reply()
    assert statuses(connector) == [DROPPED, 201]
    delivered_once(connector)
    [warned] = logged
    assert "may have arrived" in warned.getMessage()  # the request was written: it may have
    assert (bot.stats["answered"], bot.stats["failed"]) == (1, 0)


def test_a_reply_after_a_server_error_arrives_once(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply
) -> None:
    connector.fail_next("send", 500)
    logged = reply()
    assert statuses(connector) == [500, 201]
    delivered_once(connector)
    assert [record.levelno for record in logged] == [logging.WARNING]


def test_a_rate_limited_reply_waits_its_retry_after_then_arrives_once(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply
) -> None:
    connector.fail_next("send", 429, retry_after=1)
    logged = reply()
    assert statuses(connector) == [429, 201]
    delivered_once(connector)
    [waited] = [record.getMessage() for record in logged]
    assert "rate limit (429)" in waited and "trying again in 1s" in waited


def test_a_refused_reply_is_not_retried_and_the_give_up_is_logged(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply
) -> None:
    connector.fail_next("send", 400)
    logged = reply()
    assert statuses(connector) == [400]
    assert connector.posted == {}
    assert (bot.stats["answered"], bot.stats["failed"]) == (0, 1)
    [gave_up] = logged
    assert gave_up.levelno == logging.ERROR
    assert "giving up after 1 attempt(s)" in gave_up.getMessage()
    assert PERSONAL in gave_up.getMessage()


def test_a_reply_that_keeps_failing_is_given_up_after_its_attempts(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply
) -> None:
    connector.drop_next("send", times=ATTEMPTS + 1)
    logged = reply()
    assert statuses(connector) == [DROPPED] * ATTEMPTS
    assert connector.posted == {}
    assert [record.levelno for record in logged] == [logging.WARNING] * (ATTEMPTS - 1) + [
        logging.ERROR
    ]
    assert "may have arrived" in logged[0].getMessage()


def test_a_rate_limit_longer_than_the_cap_is_given_up_at_once(
    connector: FakeBotConnector, bot: TeamsBot, reply: Reply
) -> None:
    connector.fail_next("send", 429, retry_after=60)
    logged = reply()
    assert statuses(connector) == [429]
    assert bot.stats["failed"] == 1
    [gave_up] = logged
    assert "giving up after 1 attempt(s): Bot Connector rate limit" in gave_up.getMessage()


def _welcome(served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector) -> None:
    body = activity(connector, "personal", "")
    del body["text"], body["textFormat"], body["entities"]
    added = {**body, "type": "conversationUpdate", "membersAdded": [{"id": BOT}]}
    assert post(served, added, issuer.token(connector.service_url)).status_code == 200


def _confirm(
    served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector
) -> Callable[[], dict[str, object]]:
    """Open the reminder dialog and fill it in; submitting it (the returned call) sets a
    reminder, whose confirmation is posted in the chat."""
    token = issuer.token(connector.service_url)
    ask = post(served, activity(connector, "personal", "remind", user=CERI), token)
    assert ask.status_code == 200, ask.text
    connector.wait_until(lambda: bool(connector.calls_of("send")))
    data = opener_of(connector.calls[-1].cards[0])
    fetched = post(served, invoke(connector, "task/fetch", task(data), user=CERI), token)
    values = {"channel": "srs-torfaen", "text": "Papers", "when": "every monday 9am"}
    good = submitted(dialog_card(fetched), values)

    def submit() -> dict[str, object]:
        response = post(served, invoke(connector, "task/submit", task(good), user=CERI), token)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    return submit


def test_the_welcome_after_a_server_error_arrives_once(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    connector.fail_next("send", 502)
    _welcome(served, issuer, connector)
    assert statuses(connector) == [502, 201]
    delivered_once(connector)


def test_a_dialogs_confirmation_after_a_dropped_connection_arrives_once(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    submit = _confirm(served, issuer, connector)
    connector.drop_next("send")
    assert submit() == {}
    assert statuses(connector)[-2:] == [DROPPED, 201]
    assert len(connector.calls_of("send")) == 2  # the offer of the dialog, the confirmation


def test_a_confirmation_that_cannot_be_posted_is_shown_in_the_dialog(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    submit = _confirm(served, issuer, connector)
    connector.fail_next("send", 403)
    shown = submit()
    assert shown["task"] == {"type": "message", "value": shown["task"]["value"]}  # type: ignore[index]
    assert "Reminder 1 set" in str(shown["task"]["value"])  # type: ignore[index]
    assert statuses(connector)[-1] == 403
