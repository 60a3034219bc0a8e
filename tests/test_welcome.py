"""The welcome: sent the first time a member opens the bot's Messages tab in Slack (signed
`app_home_opened` events to our real endpoint), once, in their language; and the same
handler's Adaptive Card for Teams, valid against the Adaptive Cards 1.5 schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Platform
from bot.messages import Request
from bot.models import MemberWelcome
from handlers.welcome import WELCOME
from tests import test_slack_http
from tests.conftest import NOW
from tests.fakes.slack_api import FakeSlackApi, SlackSender
from tests.test_slack_http import texts
from tests.test_teams_render import assert_valid_card

fake, slack_app, platform, slack, db = (
    test_slack_http.fake,
    test_slack_http.slack_app,
    test_slack_http.platform,
    test_slack_http.slack,
    test_slack_http.db,
)
TORFAEN, MONMOUTHSHIRE = "U0TOR00001", "U0MON00001"


def messages_tab(user: str, channel: str = "D0TOR00001") -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": channel, "tab": "messages"}


def welcomes(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(MemberWelcome)) or 0


def test_first_visit_to_the_messages_tab_is_welcomed_once(
    slack: SlackSender, fake: FakeSlackApi, platform: Any, db: Session
) -> None:
    assert slack.event(messages_tab(TORFAEN)).status_code == 200
    call = fake.wait_for("chat.postMessage")[0]
    assert call.body["channel"] == TORFAEN
    out = texts(call.body)
    assert "Welcome to the scrutiny bot, Sian" in out
    for command in ("/scrutiny help", "/scrutiny home", "/scrutiny ask", "/scrutiny find"):
        assert command in out
    assert "record-decision" not in out  # secretariat commands are not hers
    # Later visits (new events, not retries) are not welcomed again.
    slack.event(messages_tab(TORFAEN))
    slack.event(messages_tab(TORFAEN))
    fake.wait_until(lambda: platform.stats["events_handled"] == 3)
    fake.wait_until(lambda: platform.health()["working"] == 0)
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert welcomes(db) == 1


def test_welcome_is_in_the_members_language(slack: SlackSender, fake: FakeSlackApi) -> None:
    slack.event(messages_tab(MONMOUTHSHIRE, "D0MON00001"))
    out = texts(fake.wait_for("chat.postMessage")[0].body)
    assert "Croeso i'r bot craffu, Eleri" in out
    assert "Welcome" not in out


def test_someone_unknown_opening_the_messages_tab_gets_nothing(
    slack: SlackSender, fake: FakeSlackApi, platform: Any, db: Session
) -> None:
    slack.event(messages_tab("U0STRANGER", "D0STRANGE1"))
    fake.wait_until(lambda: platform.stats["events_handled"] == 1)
    fake.wait_until(lambda: platform.health()["working"] == 0)
    assert fake.calls_to("chat.postMessage") == []
    assert welcomes(db) == 0


@pytest.mark.parametrize(
    ("member", "expected"),
    [
        ("00000000-0000-0000-0000-000000R00001", "Welcome to the scrutiny bot"),
        ("00000000-0000-0000-0000-000000N00001", "Croeso i'r bot craffu"),
    ],
)
def test_the_teams_welcome_is_a_valid_adaptive_card(
    app: ScrutinyApp, seed: Any, member: str, expected: str
) -> None:
    outcome = app.interact(WELCOME, Request(Platform.TEAMS, member, "", now=NOW), "teams.json")
    assert outcome.reply.template == "welcome/welcome"
    card = json.loads(outcome.bodies[0])
    assert_valid_card(card)
    assert card["version"] == "1.5"
    assert expected in card["body"][0]["text"]
    facts = card["body"][3]["facts"]
    assert len(facts) == 7 and all(f["title"].startswith("@Scrutiny ") for f in facts)
    # Once per member and platform: a second visit is not welcomed.
    again = app.interact(WELCOME, Request(Platform.TEAMS, member, "", now=NOW), "teams.json")
    assert again.reply.surface == "none"
