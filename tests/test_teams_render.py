"""Teams renderings: Adaptive Cards from the `*.teams.json.j2` templates and from text, valid
against the 1.5 schema, with user text inert, cut to fit a Teams message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.domain import ChannelLanguage, Platform
from bot.i18n import Translator
from bot.messages import Reply, Request
from bot.rendering import TEMPLATES_DIR, render_payload
from bot.rendering.teams_cards import MAX_BODY_BYTES, text_card
from bot.services.digests import build_digest
from bot.settings import Settings
from tests.conftest import NOW
from tests.factories import Seed
from tests.support.cards import assert_valid_card, card_text

EN = Translator("en")
BASE = "https://register.example.org"
MEMBER = "00000000-0000-0000-0000-000000R00001"


@pytest.fixture
def linked(settings: Settings, engine: object, seed: Seed) -> ScrutinyApp:
    return create_app(settings.model_copy(update={"web_base_url": BASE}), engine)  # type: ignore[arg-type]


def test_the_text_card_escapes_markdown_and_bolds_the_first_line() -> None:
    card = text_card("Actions [x](https://evil.example) & *late*\n  TP-001 <b>\n\nend", EN)
    first, second, third = card["body"]
    assert first["weight"] == "Bolder"
    assert first["text"] == "Actions \\[x\\](https://evil.example) & \\*late\\*"
    assert second["text"] == "TP-001 \\<b\\>" and second["spacing"] == "None"
    assert third["spacing"] == "Medium"
    assert_valid_card(card)


def test_a_long_reply_is_cut_to_fit_and_says_how_much_is_shown() -> None:
    text = "\n".join(f"TP-{n:03}  " + "x" * 200 for n in range(400))
    card = text_card(text, EN)
    assert_valid_card(card)
    assert len(json.dumps(card, ensure_ascii=False).encode()) <= MAX_BODY_BYTES
    assert "of 400 lines" in card["body"][-1]["text"]


@pytest.mark.parametrize("text", ["Hello", "Title\n\nA paragraph\n  indented", "", "Ŵ ŷ â\n• x"])
def test_text_cards_are_valid_adaptive_cards(text: str) -> None:
    assert_valid_card(text_card(text, EN))


def test_every_reply_is_a_valid_card_with_or_without_its_own_template(
    app: ScrutinyApp, seed: Seed
) -> None:
    for text in ("help", "actions overdue torfaen", "decisions", "no-such-command", "find shares"):
        outcome = app.dispatch(Request(Platform.TEAMS, MEMBER, text, now=NOW), "teams.json")
        [card] = outcome.documents
        assert_valid_card(card)
        assert "<script" not in card_text({"attachments": [{"content": card}]})


def _template_contexts(app: ScrutinyApp, session: Session, seed: Seed) -> dict[str, Reply]:
    """A realistic reply for every Teams template: what the handlers and the digest build."""
    replies = {
        "digest/digest": Reply(
            "digest/digest", build_digest(session, seed.channels["srs-torfaen"], now=NOW).context()
        )
    }
    for words in ("actions overdue torfaen", "decisions", "actions nothing-matches-this"):
        reply = app.dispatch(Request(Platform.TEAMS, MEMBER, words, now=NOW), "teams.json").reply
        replies.setdefault(reply.template, reply)
    return replies


def test_every_teams_template_renders_a_valid_card_in_each_language(
    linked: ScrutinyApp, session: Session, seed: Seed
) -> None:
    # The digest and the two lists here; tests/test_teams_cards.py renders every other card
    # from the replies of the question loop, the register forms and reminders.
    templates = {"digest/digest", "actions/list", "decisions/list"}
    assert all((Path(TEMPLATES_DIR) / f"{name}.teams.json.j2").is_file() for name in templates)
    replies = _template_contexts(linked, session, seed)
    assert templates <= set(replies), f"no realistic context for {templates - set(replies)}"
    for template in sorted(templates):
        for language in ChannelLanguage:
            payload = render_payload(
                linked.renderer, replies[template], Platform.TEAMS, language.languages
            )
            assert_valid_card(payload["teams"])


def test_the_digest_card_has_headings_lists_and_links(
    linked: ScrutinyApp, session: Session, seed: Seed
) -> None:
    content = build_digest(session, seed.channels["srs-torfaen"], now=NOW)
    reply = Reply("digest/digest", content.context())
    card = render_payload(linked.renderer, reply, Platform.TEAMS, ("en",))["teams"]
    assert_valid_card(card)
    body = card["body"]
    headings = [e["text"] for e in body if e.get("style") == "heading"]
    assert headings[0] == "SRS boards — digest for Torfaen County Borough Council"
    assert len(headings) >= 3
    lists = [e["text"] for e in body if e["text"].startswith("- ")]
    assert lists and all(line.startswith("- ") for text in lists for line in text.split("\n"))
    text = "\n".join(e["text"] for e in body)
    assert f"[TP-001]({BASE}/actions/TP-001) Migrate file shares to SharePoint Online" in text
    assert f"[SB-2026-031]({BASE}/decisions/SB-2026-031)" in text
    assert f"[in the register]({BASE}/meetings/{seed.meetings[0].id})" in text
    # The same sections and items as the Slack digest.
    slack = render_payload(linked.renderer, reply, Platform.SLACK, ("en",))["slack"]
    slack_text = json.dumps(slack["blocks"], ensure_ascii=False)
    for ref in ("TP-001", "SB-2026-031"):
        assert ref in slack_text and ref in text


def test_a_bilingual_digest_card_is_welsh_then_english_with_a_rule(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    content = build_digest(session, seed.channels["srs-torfaen"], now=NOW)
    reply = Reply("digest/digest", content.context())
    card = render_payload(app.renderer, reply, Platform.TEAMS, ("cy", "en"))["teams"]
    assert_valid_card(card)
    headings = [e for e in card["body"] if e.get("size") == "Large"]
    assert [h.get("separator", False) for h in headings] == [False, True]
    assert headings[0]["text"] != headings[1]["text"]
    assert headings[1]["text"].startswith("SRS boards — digest for Torfaen")


def test_user_text_in_a_card_is_markdown_escaped(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    decision: Any = seed.decisions["SB-2026-031"]
    decision.title = "Papers [click me](https://evil.example/phish) **now** #1"
    session.commit()
    outcome = app.dispatch(
        Request(Platform.TEAMS, MEMBER, "decisions strategic", now=NOW), "teams.json"
    )
    text = card_text({"attachments": [{"content": outcome.documents[0]}]})
    assert "[click me](https" not in text and "**now**" not in text
    assert "\\[click me\\](https://evil.example/phish) \\*\\*now\\*\\* \\#1" in text
