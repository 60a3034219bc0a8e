"""Adaptive Cards (1.5) for Teams: the card a template renders, one card for every language of
a bilingual reader, the text-to-card fallback, and cutting a card to fit a Teams message.

Pure Python (no Teams SDK): a card is a plain dict, so the outbox can store it and any Teams
sender (the Bot Connector's, bot.platforms.teams.connector_messenger) can post it as it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.i18n import Translator
from bot.rendering.escapes import markdown_escape

Card = dict[str, Any]

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_VERSION = "1.5"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_MESSAGE_BYTES = 28_000
"""Teams refuses messages over about 28 KB, envelope included."""
MAX_BODY_BYTES = 26_000
"""What the card itself may take, leaving room for the envelope."""


def card(body: Sequence[dict[str, Any]]) -> Card:
    """An Adaptive Card 1.5 with these body elements."""
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": list(body),
    }


def _text_elements(lines: list[str]) -> list[dict[str, Any]]:
    elements: list[dict[str, Any]] = []
    gap = False
    for line in lines:
        if not line.strip():
            gap = True
            continue
        # TextBlocks read Markdown: every line is escaped, so user text stays inert.
        element: dict[str, Any] = {
            "type": "TextBlock",
            "text": markdown_escape(line.strip()),
            "wrap": True,
        }
        if not elements:
            element.update(weight="Bolder", size="Medium")
        else:
            element["spacing"] = "Medium" if gap else "None"
        elements.append(element)
        gap = False
    return elements


def _shortened(t: Translator, shown: int, total: int) -> str:
    return t._("Shortened to fit Teams: showing {shown} of {total} lines.").format(
        shown=shown, total=total
    )


def card_bytes(value: Card) -> int:
    """What `value` takes in a message, as UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False).encode())


def text_card(text: str, t: Translator, limit: int = MAX_BODY_BYTES) -> Card:
    """An Adaptive Card showing `text`, a TextBlock per line (the first bold), cut to fit a
    Teams message with a note saying how much is shown: the card of a template without a
    `.teams.json.j2` variant."""
    lines = text.strip("\n").split("\n") or [""]
    shown_card = card(_text_elements(lines) or [{"type": "TextBlock", "text": " ", "wrap": True}])
    shown = len(lines)
    while card_bytes(shown_card) > limit and shown > 1:
        shown = shown * 9 // 10 if shown > 20 else shown - 1
        note = {
            "type": "TextBlock",
            "text": _shortened(t, shown, len(lines)),
            "wrap": True,
            "isSubtle": True,
            "spacing": "Medium",
        }
        shown_card = card([*_text_elements(lines[:shown]), note])
    return shown_card


def join_cards(cards: Sequence[Card]) -> Card:
    """One card holding every language's card in turn (Welsh first), a rule between them; the
    card's own buttons (support, accept, next page) once, in the first language."""
    body: list[dict[str, Any]] = []
    for index, one in enumerate(cards):
        elements = [dict(element) for element in one.get("body", [])]
        if index and elements:
            elements[0].update(separator=True, spacing="ExtraLarge")
        body.extend(elements)
    joined = card(body or [{"type": "TextBlock", "text": " ", "wrap": True}])
    actions = cards[0].get("actions") if cards else None
    if actions:
        joined["actions"] = list(actions)
    return joined


def fit_card(rendered: Card, text: str, t: Translator, limit: int = MAX_BODY_BYTES) -> Card:
    """`rendered` if it fits in a Teams message, else the text rendering as a card, cut to fit."""
    return rendered if card_bytes(rendered) <= limit else text_card(text, t, limit)
