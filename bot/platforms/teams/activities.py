"""What the Teams bot reads from an activity before any handler sees it: the cap on its size,
and the words of a message (Teams sends HTML: mentions as `<at>name</at>`, entities, markup)."""

from __future__ import annotations

import html
import re
from typing import Any

MAX_REQUEST_BYTES = 256 * 1024
"""Largest activity body read: Teams' messages hold about 28 KB, so this leaves ample room."""

_MENTION = re.compile(r"<at[^>]*>(.*?)</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def named_mentions(text: str) -> str:
    """`text` with each `<at>name</at>` mention replaced by the name it shows."""
    return _MENTION.sub(lambda mention: mention.group(1), text)


def plain_words(text: str) -> str:
    """The words of an HTML message: tags and HTML entities removed, white space folded."""
    words = _TAG.sub(" ", text or "")
    return " ".join(html.unescape(words).replace("\xa0", " ").split())


def message_words(content: str | None) -> str:
    """A message's words from its HTML body: mentions kept as the names they show, tags and
    entities removed."""
    return plain_words(named_mentions(content or ""))


def readable_invoke(body: Any) -> Any:
    """`body` as the Teams SDK can read it. A card's automatic refresh (a user-specific view)
    is an `adaptiveCard/action` invoke with `trigger: "automatic"`, which the SDK's model
    (2.1) refuses, knowing only "manual"; no handler reads the trigger, so it is dropped."""
    if not isinstance(body, dict) or body.get("name") != "adaptiveCard/action":
        return body
    value = body.get("value")
    if not isinstance(value, dict) or value.get("trigger") in (None, "manual"):
        return body
    return {**body, "value": {key: v for key, v in value.items() if key != "trigger"}}
