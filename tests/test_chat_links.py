"""Chat replies, digests and cards link decisions, actions and meetings to their permalinks in
the register when WEB_BASE_URL is set, and say nothing of the register when it is not."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.models import Delivery
from bot.permalinks import RegisterLinks, linked_ref
from bot.services.digests import run_digest
from bot.settings import Settings
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_handlers import TORFAEN_CHANNEL, blocks, run

BASE = "https://register.example.org"


@pytest.fixture
def linked(settings: Settings, engine: object, seed: Seed) -> ScrutinyApp:
    return create_app(settings.model_copy(update={"web_base_url": BASE}), engine)  # type: ignore[arg-type]


def test_text_replies_show_the_permalink_after_the_ref(linked: ScrutinyApp) -> None:
    detail = run(linked, "sian-hughes", "decision SB-2026-031").text
    assert f"SB-2026-031 <{BASE}/decisions/SB-2026-031>" in detail
    listing = run(linked, "sian-hughes", "actions overdue torfaen").text
    assert f"TP-001 <{BASE}/actions/TP-001>" in listing
    meetings = run(linked, "sian-hughes", "meetings").text
    assert f"in the register <{BASE}/meetings/" in meetings


def test_slack_replies_link_the_ref(linked: ScrutinyApp) -> None:
    out = run(
        linked, "sian-hughes", "decisions strategic", channel=TORFAEN_CHANNEL, fmt="slack.json"
    )
    texts = json.dumps(blocks(out))
    assert f"<{BASE}/decisions/SB-2026-031|SB-2026-031>" in texts
    action = run(linked, "sian-hughes", "action TP-001", channel=TORFAEN_CHANNEL, fmt="slack.json")
    assert f"<{BASE}/actions/TP-001|TP-001>" in json.dumps(blocks(action))


def test_without_web_base_url_nothing_links_to_the_register(app: ScrutinyApp, seed: Seed) -> None:
    assert app.settings.chat_links_base is None
    for text in ("decision SB-2026-031", "actions overdue torfaen", "meetings"):
        out = run(app, "sian-hughes", text)
        assert "http://127.0.0.1:3000" not in out.text and "in the register" not in out.text
    slack = run(app, "sian-hughes", "decisions", channel=TORFAEN_CHANNEL, fmt="slack.json")
    assert "*SB-2026-031*" in json.dumps(blocks(slack))


def test_digest_links_decisions_actions_and_meetings(
    linked: ScrutinyApp, session: Session, seed: Seed
) -> None:
    result = run_digest(session, linked.renderer, seed.channels["srs-torfaen"], now=NOW)
    session.commit()
    delivery = session.get(Delivery, result.delivery_id)
    assert delivery is not None
    posted = json.dumps(delivery.payload)
    assert f"<{BASE}/decisions/SB-2026-031|SB-2026-031>" in posted
    assert f"<{BASE}/actions/TP-001|TP-001>" in posted
    assert f"<{BASE}/meetings/{seed.meetings[0].id}|in the register>" in posted
    text = delivery.payload["text"]
    assert f"  SB-2026-031 <{BASE}/decisions/SB-2026-031>  Strategic Board" in text
    assert f"(/scrutiny ask)  in the register <{BASE}/meetings/{seed.meetings[0].id}>\n" in text


def test_each_format_escapes_the_link() -> None:
    links = RegisterLinks("https://r.example/a&b")
    slack = linked_ref("Q<1>|x", "actions", "slack.json", links)
    assert slack == "<https://r.example/a&amp;b/actions/Q%3C1%3E%7Cx|Q&lt;1&gt;¦x>"
    assert linked_ref("<b>", "actions", "slack.json", None) == "&lt;b&gt;"
    html = linked_ref("A&B", "decisions", "teams.html", links)
    assert html == '<a href="https://r.example/a&amp;b/decisions/A%26B">A&amp;B</a>'
    assert linked_ref("A&B", "decisions", "teams.html", None) == "A&amp;B"
    card = linked_ref("[A](B)", "decisions", "teams.json", links)
    assert card == "[\\[A\\](B)](https://r.example/a&b/decisions/%5BA%5D%28B%29)"
    assert linked_ref("*x*", "decisions", "teams.json", None) == "\\*x\\*"
    assert (
        linked_ref("TP-1", "actions", "txt", links) == "TP-1 <https://r.example/a&b/actions/TP-1>"
    )
    assert linked_ref("TP-1", "actions", "txt", None) == "TP-1"
    with pytest.raises(ValueError, match="unknown register page kind"):
        linked_ref("x", "people", "txt", links)
