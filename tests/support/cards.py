"""Reading Adaptive Cards in tests: the 1.5 schema check, and a card's text in reading order."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]

from bot.rendering.teams_cards import CARD_CONTENT_TYPE, MAX_MESSAGE_BYTES

SCHEMA = Path(__file__).resolve().parent.parent / "data" / "schemas" / "adaptive-card-1.5.json"


@cache
def card_validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def assert_valid_card(card: dict[str, Any]) -> None:
    """The card validates against Adaptive Cards 1.5 and fits a Teams message."""
    errors = sorted(card_validator().iter_errors(card), key=str)
    assert not errors, [e.message for e in errors[:3]]
    # The message activity the Bot Connector is sent, as the Teams SDK serialises it.
    message = {
        "type": "message",
        "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": card}],
    }
    assert len(json.dumps(message).encode()) < MAX_MESSAGE_BYTES


def card_text(message: dict[str, Any]) -> str:
    """Every TextBlock's text of a message's cards, a line each (a plain message: its text)."""
    cards = [a["content"] for a in message.get("attachments") or []]
    if not cards:
        return str(message.get("text", ""))
    return "\n".join(
        element["text"]
        for card in cards
        for element in card.get("body", [])
        if element.get("type") == "TextBlock"
    )
