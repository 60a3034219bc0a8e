"""Teams renderings: the safe text-to-HTML fallback, the HTML templates, the size limit, and
Adaptive Cards valid against the 1.5 schema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Platform
from bot.i18n import Translator
from bot.messages import Reply, Request
from bot.platforms.teams.webhook import (
    MAX_BODY_BYTES,
    TeamsPlatform,
    card_message,
    fit_html,
    text_card,
    text_to_html,
)
from bot.services.digests import build_digest
from tests.conftest import NOW
from tests.factories import Seed

SCHEMA = Path(__file__).resolve().parent / "data" / "schemas" / "adaptive-card-1.5.json"
EN = Translator("en")


@cache
def card_validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def assert_valid_card(card: dict[str, Any]) -> None:
    """The card validates against Adaptive Cards 1.5 and fits a Teams message."""
    errors = sorted(card_validator().iter_errors(card), key=str)
    assert not errors, [e.message for e in errors[:3]]
    assert len(json.dumps(card_message(card)).encode()) < 28_000


def test_the_fallback_escapes_keeps_line_breaks_and_bolds_the_first_line() -> None:
    html = text_to_html("Actions <overdue> & late\n  TP-001  <script>alert(1)</script>\n\nend")
    assert html == (
        "<b>Actions &lt;overdue&gt; &amp; late</b><br>"
        "&nbsp;&nbsp;TP-001  &lt;script&gt;alert(1)&lt;/script&gt;<br><br>end"
    )


def test_a_long_reply_is_cut_to_fit_and_says_how_much_is_shown() -> None:
    text = "\n".join(f"TP-{n:03}  " + "x" * 200 for n in range(400))
    html = fit_html(text_to_html(text), text, EN)
    assert len(html.encode()) <= MAX_BODY_BYTES
    assert "Shortened to fit Teams: showing" in html and "of 400 lines" in html
    card = text_card(text, EN)
    assert_valid_card(card)
    assert "of 400 lines" in card["body"][-1]["text"]


@pytest.mark.parametrize("text", ["Hello", "Title\n\nA paragraph\n  indented", "", "Ŵ ŷ â\n• x"])
def test_text_cards_are_valid_adaptive_cards(text: str) -> None:
    assert_valid_card(text_card(text, EN))


def test_every_reply_renders_for_teams_with_or_without_its_own_template(
    app: ScrutinyApp, seed: Seed
) -> None:
    TeamsPlatform(app, "c2VjcmV0")  # registers the text-to-HTML fallback
    member = "00000000-0000-0000-0000-000000R00001"
    for text in ("help", "actions overdue torfaen", "decisions", "no-such-command", "find shares"):
        outcome = app.dispatch(Request(Platform.TEAMS, member, text, now=NOW), "teams.html")
        body = outcome.bodies[0]
        assert body and "<script" not in body
        assert len(body.encode()) < MAX_BODY_BYTES


def test_the_digest_renders_as_teams_html(app: ScrutinyApp, session: Session, seed: Seed) -> None:
    content = build_digest(session, seed.channels["srs-torfaen"], now=NOW)
    html = app.renderer.render(Reply("digest/digest", content.context()), "teams.html", "en")
    assert html.startswith("<h3>SRS boards — digest for Torfaen County Borough Council</h3>")
    assert "<li><code>TP-001</code> Migrate file shares to SharePoint Online" in html
    welsh = app.renderer.render(Reply("digest/digest", content.context()), "teams.html", "cy")
    assert "<h3>" in welsh
