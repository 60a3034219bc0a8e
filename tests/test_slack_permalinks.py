"""Posts link the earlier post they follow up: an answer in a partner channel links that
channel's call for questions (Slack permalinks built from the stored channel and ts)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.permalinks import PostLinks, PostRef
from tests import test_slack_questions as slack_questions
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.slack_api import SlackSender, slack_settings
from tests.fakes.slack_limits import LimitedSlackApi
from tests.test_questions import add_meeting, add_partner_channels
from tests.test_slack_http import texts
from tests.test_slack_questions import (
    BUSINESS,
    SECRETARIAT_CHANNEL,
    SECRETARY,
    SPEC,
    TORFAEN,
    TORFAEN_CHANNEL,
    command,
    ref_in,
    worker,
)

fake, platform, slack, db = (
    slack_questions.fake,
    slack_questions.platform,
    slack_questions.slack,
    slack_questions.db,
)
WORKSPACE = "https://srs.slack.com"


@pytest.fixture
def slack_app(database_url: str, engine: Engine, fake: LimitedSlackApi) -> ScrutinyApp:
    settings = slack_settings(database_url, fake, slack_workspace_url=WORKSPACE + "/")
    return create_app(settings, engine)


def test_an_answer_links_the_channels_call_for_questions(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
) -> None:
    meeting = add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    worker(slack_app, fake, NOW)
    [call] = [
        m
        for m in fake.messages_in(TORFAEN_CHANNEL)
        if m.key == f"window-open:{meeting.id}:srs-torfaen"
    ]
    asked = ref_in(command(slack, TORFAEN, f"ask {SPEC} Is the data centre move on budget?"))
    command(slack, SECRETARY, f"accept {asked}", channel=SECRETARIAT_CHANNEL)
    command(slack, SECRETARY, f"answer {asked} Yes, within 2%.", channel=SECRETARIAT_CHANNEL)
    worker(slack_app, fake, NOW)
    [answer] = [
        m for m in fake.messages_in(TORFAEN_CHANNEL) if m.key == f"answer:{asked}:srs-torfaen"
    ]
    link = f"{WORKSPACE}/archives/{TORFAEN_CHANNEL}/p{call.ts.replace('.', '')}"
    shown = texts(answer.blocks)
    assert re.search(rf"<{re.escape(link)}\|[^>]+>", shown), shown
    assert "Yes, within 2%." in shown
    # An extension of the window links the same announcement.
    extend = f"window extend {SPEC} until 2026-12-14 17:00"
    command(slack, SECRETARY, extend, channel=SECRETARIAT_CHANNEL)
    worker(slack_app, fake, NOW)
    [extension] = [
        m
        for m in fake.messages_in(TORFAEN_CHANNEL)
        if (m.key or "").startswith(f"window-extend:{meeting.id}:srs-torfaen")
    ]
    assert f"<{link}|" in texts(extension.blocks)


def test_post_links_need_the_workspace_and_a_real_timestamp() -> None:
    post = PostRef("slack", "C0TOR00001", "1700000000.000100")
    assert PostLinks(WORKSPACE).url(post) == f"{WORKSPACE}/archives/C0TOR00001/p1700000000000100"
    assert PostLinks(None).url(post) is None
    assert PostLinks(WORKSPACE).url(PostRef("slack", "C0TOR00001", "not-a-ts")) is None
    assert PostLinks(WORKSPACE).url(PostRef("teams", "19:abc", "1700000000.000100")) is None
    assert PostLinks(WORKSPACE).url(None) is None
