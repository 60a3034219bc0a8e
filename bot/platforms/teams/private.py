"""Private answers in Teams channels, as Slack's ephemeral replies: user-specific views
(Microsoft's Universal Actions for Adaptive Cards).

Teams has no ephemeral messages for bots. A card may instead name, in its `refresh` clause, the
users whose Teams client fetches their own view of it: that client sends an
`adaptiveCard/action` invoke (`trigger: automatic`) with the refresh action's verb and data,
and the card in the bot's invoke response is shown to that user alone; everyone else sees the
card that was posted (the base card). At most 60 users may be named.

- A member who mentions the bot in a new channel post (the thread's first message) and gets a
  reply that is not public (`Reply.public`), for a command that only reads, is answered with
  the base card in the thread: who asked and what, "only they see the answer", a "Show my
  answer" button for clients that do not refresh by themselves, and a refresh clause naming
  the asker. A mention inside a thread is answered publicly in it, as Slack does.
- The refresh (or the button) runs the command again as the asker, where the card is (the
  channel's clearance and the member's together), and answers with the answer card, which
  keeps the refresh clause, so it stays private and shows current data. Anyone else gets the
  base card: anyone can ask for a refresh, so the server's check of the invoker is what keeps
  the answer private, never the card.
- The answer's own buttons (next page, support) carry the asker (`KEY`); pressed by the asker,
  their result is the invoke response (shown to the invoker only) and, when the button only
  reads, it refreshes itself the same way.
- A command that changes something runs once, when the message comes: its answer card (its
  buttons naming the asker) is stored for the asker (`bot.private_answers`, under a random
  token), and the base card's refresh carries that token alone (`STORED_VERB`). The refresh
  shows the asker the stored card, never running the command again; anyone else gets the base
  card; a token that is unknown, expired or from another channel gets a card saying the answer
  is no longer available. A command answering with a form is answered in the thread as before
  (the form opens as a dialog).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from microsoft_teams.api.models.account import Account
from microsoft_teams.api.models.activity import Activity

from bot.app import Outcome
from bot.domain import Platform
from bot.i18n import LANGUAGES, Translator
from bot.messages import Reply
from bot.rendering import Renderer
from bot.rendering.teams_cards import MAX_BODY_BYTES, Card, card_bytes, join_cards, text_card

VERB = "teams.private_answer"
"""The refresh action's verb (and the "Show my answer" button's) of a command that only reads."""
STORED_VERB = "teams.stored_answer"
"""The refresh action's verb (and the button's) of a command that changes something: its data
is the stored answer's token alone (`TOKEN`)."""
TOKEN = "answer"
KEY = "asker"
"""The key in a private answer's button data naming the asker (their `from.id` and Entra id)."""
TEMPLATE = "private/asked"
FORMAT = "teams.json"
MAX_WORDS = 1000
"""Longest command answered privately: the words travel in the card's data, twice."""
_MESSAGE_ID = ";messageid="


@dataclass(frozen=True)
class Asked:
    """A private question: who asked (their Teams id, Entra object id and name), their words,
    and the languages the base card is shown in. It travels as the refresh action's data."""

    user: str
    aad: str
    name: str
    words: str
    languages: tuple[str, ...]

    def data(self) -> dict[str, Any]:
        """The refresh action's data."""
        return {**asdict(self), "languages": list(self.languages)}

    @classmethod
    def from_data(cls, data: Any) -> Asked | None:
        """The question in a refresh action's data, or None when the data is not one."""
        if not isinstance(data, dict):
            return None
        texts = [data.get(key) for key in ("user", "aad", "name", "words")]
        languages = data.get("languages")
        if not all(isinstance(text, str) for text in texts) or not isinstance(languages, list):
            return None
        known = tuple(str(lang) for lang in languages if lang in LANGUAGES)
        if not known or len(known) != len(languages):
            return None
        user, aad, name, words = (str(text) for text in texts)
        return cls(user, aad, name, words, known)

    def asked_by(self, account: Account) -> bool:
        """Whether `account` (an invoke's sender) is the asker: both ids must match."""
        return is_asker(self.marker(), account)

    def marker(self) -> dict[str, str]:
        """The asker, as a private answer's buttons carry them (`KEY`)."""
        return {"user": self.user, "aad": self.aad}


def is_asker(marker: Any, account: Account) -> bool:
    """Whether `account` is the member a button's `KEY` names (both their ids, never empty)."""
    if not isinstance(marker, dict):
        return False
    user, aad = marker.get("user"), marker.get("aad")
    return bool(user and aad) and account.id == user and account.aad_object_id == aad


def thread_root(activity: Activity) -> bool:
    """Whether a channel message starts its thread: Teams names the thread by its first
    message (`<channel>;messageid=<id>`), so a new post's id is its own thread's."""
    _, found, thread = activity.conversation.id.partition(_MESSAGE_ID)
    return not found or thread == activity.id


def asked_privately(
    activity: Activity, words: str, outcome: Outcome, reads_only: bool
) -> Asked | None:
    """The private question a channel message is, or None when it is answered where it was
    asked (a thread's reply, a chat, a public reply, a form of a command that changes
    something, words too long to travel in a card's data)."""
    sender = activity.from_
    if (
        activity.conversation.conversation_type != "channel"
        or not thread_root(activity)
        or outcome.reply.public
        or not sender.aad_object_id
        or (reads_only and len(words) > MAX_WORDS)
        or (not reads_only and outcome.reply.surface == "modal")
    ):
        return None
    return Asked(sender.id, sender.aad_object_id, sender.name or "", words, outcome.languages)


def refresh(card: Card, verb: str, data: dict[str, Any], user: str) -> Card:
    """`card` refreshed for `user` alone by the action `verb` with `data`."""
    refreshed = dict(card)
    refreshed["refresh"] = {
        "action": {"type": "Action.Execute", "verb": verb, "data": data},
        "userIds": [user],
    }
    return refreshed


def _again(asked: Asked, token: str | None) -> dict[str, Any]:
    """The refresh action (verb and data) of a private question: the question itself when its
    command only reads, the stored answer's `token` alone when it changed something."""
    if token is None:
        return {"verb": VERB, "data": asked.data()}
    return {"verb": STORED_VERB, "data": {TOKEN: token}}


def base_card(renderer: Renderer, asked: Asked, token: str | None = None) -> Card:
    """What everyone sees: who asked what, and that only they see the answer; a button for
    clients that do not refresh by themselves; the refresh naming the asker (carrying the stored
    answer's `token` when there is one)."""
    reply = Reply(TEMPLATE, {"name": asked.name, "words": asked.words})
    cards: Sequence[Card] = [
        renderer.document(reply, FORMAT, language, Platform.TEAMS) for language in asked.languages
    ]
    card = join_cards(cards)
    t = Translator(asked.languages[0])
    again = _again(asked, token)
    card["actions"] = [{"type": "Action.Execute", "title": t._("Show my answer"), **again}]
    return refresh(card, again["verb"], again["data"], asked.user)


def _mark_buttons(card: Card, marker: dict[str, str]) -> Card:
    """`card` with each of its `Action.Execute` buttons naming the asker."""
    marked = copy.deepcopy(card)
    stack: list[Any] = [marked]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "Action.Execute" and isinstance(node.get("data"), dict):
                node["data"][KEY] = marker
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return marked


def _kept_private(
    card: Card, text: str, language: str, marker: dict[str, str], again: dict[str, Any] | None
) -> Card:
    """`card` with its buttons naming the asker and, when `again` is given (the action's verb
    and data), refreshed by it for them alone; over Teams' limit, its `text` cut to fit."""
    shown = _mark_buttons(card, marker)
    if again is not None:
        shown = refresh(shown, again["verb"], again["data"], marker["user"])
    if card_bytes(shown) <= MAX_BODY_BYTES:
        return shown
    # The refresh and the buttons' marks took it over the limit: the text, cut to leave room.
    room = MAX_BODY_BYTES
    if again is not None:
        room -= card_bytes(refresh({}, again["verb"], again["data"], marker["user"]))
    cut = text_card(text, Translator(language), room)
    return cut if again is None else refresh(cut, again["verb"], again["data"], marker["user"])


def answer_card(card: Card, text: str, asked: Asked, token: str | None = None) -> Card:
    """The asker's own view: the answer (`card`, or its `text`), its buttons naming the asker,
    and the same refresh as the base card (`token`: the stored answer's, when there is one)."""
    return _kept_private(card, text, asked.languages[0], asked.marker(), _again(asked, token))


def gone_card(language: str, days: int) -> Card:
    """A stored answer's refresh when it is no longer kept (or never was): say so. No refresh,
    so the client stops asking."""
    t = Translator(language)
    return text_card(
        t._("This answer is no longer available.")
        + "\n"
        + t.ngettext(
            "An answer only its asker sees is kept for {days} day after the question.",
            "An answer only its asker sees is kept for {days} days after the question.",
            days,
        ).format(days=days),
        t,
    )


def button_card(
    card: Card,
    text: str,
    language: str,
    marker: dict[str, str],
    action: tuple[str, dict[str, Any]] | None,
) -> Card:
    """A private answer's button pressed by the asker: its result (`card`, or its `text`), with
    its buttons still naming the asker. A button that only reads (`action`: its verb and data)
    refreshes itself for them; one that changes something does not (None), since a refresh
    must never repeat a change."""
    again = None if action is None else {"verb": action[0], "data": {**action[1], KEY: marker}}
    return _kept_private(card, text, language, marker, again)
