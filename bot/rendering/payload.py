"""The stored form of an outbox post (`Payload`), rendered once when the post is queued.

Every payload has the plain text in every language; a Slack channel's also has its Block Kit
message (fitted to Slack's limits), a Teams channel's its Adaptive Card (fitted to a Teams
message). Senders post these as they are: no platform renders or parses a post again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired, TypedDict

from bot.domain import Platform
from bot.i18n import Translator
from bot.messages import Reply
from bot.rendering.slack_blocks import fit_message, join_bodies
from bot.rendering.teams_cards import Card, fit_card, join_cards, text_card
from bot.rendering.templates import Renderer

PAYLOAD_VERSION = 1


class SlackMessage(TypedDict):
    """A Block Kit message within Slack's limits, and its notification text."""

    blocks: list[dict[str, Any]]
    text: str


class Payload(TypedDict):
    """What the outbox stores for one post (a JSON column)."""

    v: int
    languages: list[str]
    text: str
    """The text rendering, every language in turn: consoles and notifications show it."""
    items: dict[str, list[str]]
    """Classified items shown, by kind, checked again by the sender before posting."""
    rebuild: NotRequired[dict[str, Any]]
    """How to render the post afresh if one of its items may no longer be shown."""
    slack: NotRequired[SlackMessage]
    teams: NotRequired[Card]
    """The Adaptive Card a Teams channel is sent."""
    files: NotRequired[list[dict[str, Any]]]


def render_payload(
    renderer: Renderer,
    reply: Reply,
    platform: Platform,
    languages: Sequence[str],
    *,
    items: Mapping[str, Sequence[str]] | None = None,
    rebuild: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The stored form of a post (a `Payload`, as the JSON column's plain dict): text for
    every platform, plus Slack blocks or a Teams card.

    Bilingual channels get every language in one message, in the order given (Welsh first).
    `items` names the classified items shown (`{"decisions": [refs], "actions": [refs]}`) so
    the sender can check them again; `rebuild` says how to render the post afresh if one of
    them may no longer be shown.
    """
    text = "\n\n".join(renderer.render(reply, "txt", language, platform) for language in languages)
    payload = Payload(
        v=PAYLOAD_VERSION,
        languages=list(languages),
        text=text,
        items={kind: list(refs) for kind, refs in (items or {}).items()},
    )
    if rebuild is not None:
        payload["rebuild"] = dict(rebuild)
    t = Translator(languages[-1], renderer.tz)
    if platform is Platform.SLACK:
        bodies = [
            renderer.document(reply, "slack.json", language, platform) for language in languages
        ]
        blocks = join_bodies(
            [body["blocks"] if isinstance(body, dict) else body for body in bodies]
        )
        fitted = fit_message(blocks, text, t)
        payload["slack"] = SlackMessage(blocks=fitted["blocks"], text=fitted["text"])
    elif platform is Platform.TEAMS:
        payload["teams"] = post_card(payload, renderer, reply, platform)
    # Callers add to it (files) and the outbox stores it as JSON: a plain dict from here on.
    return dict(payload)


def post_card(
    payload: Payload, renderer: Renderer, reply: Reply, platform: Platform | None
) -> Card:
    """The Teams card of a post: every language's card in one, cut to fit a Teams message."""
    languages = payload["languages"]
    t = Translator(languages[-1], renderer.tz)
    cards = [renderer.document(reply, "teams.json", language, platform) for language in languages]
    return fit_card(join_cards(cards), payload["text"], t)


def payload_card(payload: Mapping[str, Any]) -> Card:
    """The Adaptive Card an outbox payload is posted as: its own, or (a payload queued before
    cards were stored, or one without a chat format) its text in a card."""
    stored = payload.get("teams")
    if isinstance(stored, dict):
        return stored
    languages = payload.get("languages") or ["en"]
    return text_card(str(payload.get("text", "")), Translator(str(languages[-1])))
