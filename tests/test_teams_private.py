"""Private answers in Teams channels (user-specific views), end to end through the real Teams
SDK, the real web app, signed activities and the fake Bot Connector: a new channel post gets a
base card naming the asker in its refresh and holding no answer; the asker's automatic refresh
gets the answer, read for the channel and the member together; anyone else (or a forged
invoke) gets the base card; the answer's next-page button stays private; a thread reply is
answered publicly, as on Slack."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from microsoft_teams.api import MessageActivity
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import ChannelLanguage, Marking
from bot.models import Channel
from bot.platforms.teams import private
from bot.platforms.teams.activities import readable_invoke
from bot.platforms.teams.private import KEY, VERB
from bot.rendering.teams_cards import MAX_BODY_BYTES, card, card_bytes
from tests.factories import Seed, add_action
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import BOT, SIAN, THREAD, activity, add_teams_channel
from tests.test_teams_invokes import CARD, ELERI, elements, say, send, text_of

SIAN_MRI = "29:1sian-hughes"
ELERI_MRI = "29:1eleri-jones"
ASKED = "<at>Scrutiny</at> actions quasar"
SHARED = [f"TP-9{n:02}" for n in range(1, 13)]
"""Actions both the channel and Sian may see: twelve, so the answer has a next page."""
CHANNEL_ONLY = "TP-980"
"""Restricted to Monmouthshire: the channel (Monmouthshire's) may see it, Sian (Torfaen) not."""
MEMBER_ONLY = "TP-981"
"""OFFICIAL-SENSITIVE: Sian is cleared for it, the channel (OFFICIAL) is not."""


@pytest.fixture
def channel(session: Session, seed: Seed) -> Channel:
    """Monmouthshire's Teams channel, cleared for OFFICIAL, with the quasar actions."""
    found = add_teams_channel(session, seed, "monmouthshire")
    for number, ref in enumerate(SHARED):
        add_action(session, seed, ref, "torfaen", date(2026, 12, 1 + number), title=f"Quasar {ref}")
    add_action(
        session,
        seed,
        CHANNEL_ONLY,
        "monmouthshire",
        date(2026, 11, 20),
        title="Quasar channel only",
        restricted_to=["monmouthshire"],
    )
    add_action(
        session,
        seed,
        MEMBER_ONLY,
        "torfaen",
        date(2026, 11, 21),
        title="Quasar member only",
        marking=Marking.OFFICIAL_SENSITIVE,
    )
    session.commit()
    return found


def channel_invoke(
    connector: FakeBotConnector,
    value: dict[str, Any],
    *,
    user: str = SIAN,
    sender: tuple[str, str] = (SIAN_MRI, "Sian Hughes"),
) -> dict[str, Any]:
    """An `adaptiveCard/action` invoke from a card in the channel thread."""
    body = activity(connector, "channel", "", user=user, sender=sender)
    del body["text"], body["textFormat"], body["entities"]
    return {**body, "type": "invoke", "name": "adaptiveCard/action", "value": value}


def refreshing(card: dict[str, Any], trigger: str = "automatic") -> dict[str, Any]:
    """What a Teams client sends for `card`'s refresh."""
    return {"action": card["refresh"]["action"], "trigger": trigger}


def answered(
    served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector, body: dict[str, Any]
) -> dict[str, Any]:
    """The card an invoke is answered with (shown to its sender alone), once valid."""
    answer = send(served, issuer, connector, body).json()
    assert (answer["statusCode"], answer["type"]) == (200, CARD)
    assert_valid_card(answer["value"])
    return answer["value"]  # type: ignore[no-any-return]


def refs_in(card: dict[str, Any]) -> set[str]:
    """Every action ref the card shows (its data aside: the words asked travel there)."""
    shown = text_of(card)
    return {ref for ref in [*SHARED, CHANNEL_ONLY, MEMBER_ONLY] if ref in shown}


def ask(served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector) -> dict[str, Any]:
    """Sian mentions the bot in a new channel post; the card posted in its thread."""
    body = activity(connector, "channel", ASKED, mentions=((BOT, "Scrutiny"),))
    return say(served, issuer, connector, body)


def test_a_new_channel_post_gets_a_base_card_that_refreshes_for_the_asker_alone(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, channel: Channel
) -> None:
    base = ask(served, issuer, connector)

    (sent,) = connector.calls
    assert sent.conversation_id == f"{THREAD};messageid=1700000000050"
    assert_valid_card(base)
    assert base["refresh"]["userIds"] == [SIAN_MRI]
    assert base["refresh"]["action"]["verb"] == VERB
    # Who asked and what, and no answer: not one action, nor how many there are.
    assert refs_in(base) == set() and "Quasar TP" not in json.dumps(base)
    assert "Sian Hughes asked:" in text_of(base) and "actions quasar" in text_of(base)
    (button,) = base["actions"]
    assert (button["verb"], button["data"]) == (VERB, base["refresh"]["action"]["data"])


def test_the_askers_refresh_shows_the_answer_for_the_channel_and_the_member_together(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    teams_app: ScrutinyApp,
    channel: Channel,
) -> None:
    base = ask(served, issuer, connector)

    answer = answered(served, issuer, connector, channel_invoke(connector, refreshing(base)))

    shown = refs_in(answer)
    assert shown == set(SHARED[:10])
    assert "showing 1–10 of 12" in text_of(answer)
    # Neither the channel's item (Sian may not see it) nor Sian's (the channel may not).
    assert CHANNEL_ONLY not in json.dumps(answer) and MEMBER_ONLY not in json.dumps(answer)
    # The answer stays private and refreshes the same way.
    assert answer["refresh"] == base["refresh"]
    # Each item can be seen by someone: Sian alone sees hers, the channel's member its own.
    for user, sender, seen, hidden in (
        (SIAN, (SIAN_MRI, "Sian Hughes"), MEMBER_ONLY, CHANNEL_ONLY),
        (ELERI, (ELERI_MRI, "Eleri Jones"), CHANNEL_ONLY, MEMBER_ONLY),
    ):
        direct = user == SIAN
        body = activity(
            connector,
            "personal" if direct else "channel",
            "actions quasar",
            user=user,
            sender=sender,
            thread="1700000000001",
        )
        card = say(served, issuer, connector, body)
        assert seen in text_of(card) and hidden not in text_of(card)


@pytest.mark.parametrize(
    ("user", "sender", "trigger"),
    [
        pytest.param(ELERI, (ELERI_MRI, "Eleri Jones"), "automatic", id="another member"),
        pytest.param(ELERI, (ELERI_MRI, "Eleri Jones"), "manual", id="a manual refresh"),
        pytest.param(ELERI, (SIAN_MRI, "Sian Hughes"), "manual", id="the asker's id, not Entra"),
        pytest.param(SIAN, (ELERI_MRI, "Eleri Jones"), "manual", id="the asker's Entra id only"),
    ],
)
def test_anyone_but_the_asker_gets_the_base_card(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    channel: Channel,
    user: str,
    sender: tuple[str, str],
    trigger: str,
) -> None:
    base = ask(served, issuer, connector)

    body = channel_invoke(connector, refreshing(base, trigger), user=user, sender=sender)
    shown = answered(served, issuer, connector, body)

    assert shown == base
    assert refs_in(shown) == set()


def test_a_forged_refresh_naming_someone_else_gets_the_base_card(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, channel: Channel
) -> None:
    base = ask(served, issuer, connector)
    # Eleri names Sian (both her ids) in data of her own making, asking for other words.
    action = dict(base["refresh"]["action"], data={**base["refresh"]["action"]["data"]})
    action["data"]["words"] = "actions quasar member only"
    body = channel_invoke(
        connector,
        {"action": action, "trigger": "automatic"},
        user=ELERI,
        sender=(ELERI_MRI, "Eleri Jones"),
    )

    shown = answered(served, issuer, connector, body)

    assert refs_in(shown) == set() and "refresh" in shown
    assert shown["refresh"]["userIds"] == [SIAN_MRI]


def test_a_refresh_that_would_change_something_is_not_run(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, channel: Channel
) -> None:
    base = ask(served, issuer, connector)
    action = dict(base["refresh"]["action"], data={**base["refresh"]["action"]["data"]})
    action["data"]["words"] = "remind srs-torfaen Papers every monday 9am"

    value = {"action": action, "trigger": "automatic"}

    shown = answered(served, issuer, connector, channel_invoke(connector, value))

    # Not run (its answer would say she may not): the base card, as asked.
    assert "Sian Hughes asked:" in text_of(shown) and "secretariat" not in text_of(shown)


def test_the_next_page_of_a_private_answer_works_for_the_asker_and_stays_private(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, channel: Channel
) -> None:
    base = ask(served, issuer, connector)
    answer = answered(served, issuer, connector, channel_invoke(connector, refreshing(base)))
    next_page = next(e for e in elements(answer) if e.get("verb") == "page")
    assert next_page["data"][KEY] == {"user": SIAN_MRI, "aad": SIAN}
    value = {"action": next_page, "trigger": "manual"}

    second = answered(served, issuer, connector, channel_invoke(connector, value))

    assert refs_in(second) == set(SHARED[10:])
    assert "showing 11–12 of 12" in text_of(second)
    assert CHANNEL_ONLY not in json.dumps(second) and MEMBER_ONLY not in json.dumps(second)
    # Still Sian's alone: it refreshes as the same page, for her.
    assert second["refresh"]["userIds"] == [SIAN_MRI]
    assert second["refresh"]["action"]["verb"] == "page"
    again = answered(served, issuer, connector, channel_invoke(connector, refreshing(second)))
    assert refs_in(again) == set(SHARED[10:])
    # Pressed by another member, the same button is only theirs: no refresh naming Sian.
    other = answered(
        served,
        issuer,
        connector,
        channel_invoke(connector, value, user=ELERI, sender=(ELERI_MRI, "Eleri Jones")),
    )
    assert "refresh" not in other and MEMBER_ONLY not in json.dumps(other)


@pytest.mark.parametrize("language", list(ChannelLanguage))
def test_the_base_card_is_valid_in_each_channel_language_with_user_text_inert(
    teams_app: ScrutinyApp, language: ChannelLanguage
) -> None:
    words = "actions [x](http://e.invalid)"
    asked = private.Asked(SIAN_MRI, SIAN, "Sian *Hughes*", words, language.languages)

    card = private.base_card(teams_app.renderer, asked)

    assert_valid_card(card)
    assert "[x](http" not in text_of(card) and "*Hughes*" not in text_of(card)
    assert len(card["body"]) == 3 * len(language.languages)
    first = {"cy": ("Gofynnodd Sian", "Dangos fy ateb"), "en": ("Sian", "Show my answer")}
    heading, title = first[language.languages[0]]
    assert card["body"][0]["text"].startswith(heading)
    assert card["actions"][0]["title"] == title


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"user": SIAN_MRI, "aad": SIAN, "name": "Sian", "words": ["actions"], "languages": ["en"]},
        {"user": SIAN_MRI, "aad": SIAN, "name": "Sian", "words": "actions", "languages": ["xx"]},
    ],
    ids=["empty", "words not text", "an unknown language"],
)
def test_a_refresh_with_data_the_bot_did_not_make_runs_nothing(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    channel: Channel,
    data: dict[str, Any],
) -> None:
    action = {"type": "Action.Execute", "verb": VERB, "data": data}

    shown = answered(
        served,
        issuer,
        connector,
        channel_invoke(connector, {"action": action, "trigger": "automatic"}),
    )

    assert "no longer supported" in text_of(shown)
    assert "refresh" not in shown and refs_in(shown) == set()


@pytest.mark.parametrize(
    ("conversation", "ident", "root"),
    [
        (f"{THREAD};messageid=1700000000050", "1700000000050", True),
        (f"{THREAD};messageid=1700000000001", "1700000000050", False),
        (THREAD, "1700000000050", True),
    ],
    ids=["a new post", "a reply in a thread", "no thread named"],
)
def test_a_channel_message_starts_its_thread_when_teams_names_it_as_its_own(
    connector: FakeBotConnector, conversation: str, ident: str, root: bool
) -> None:
    body = activity(connector, "channel", "help", ident=ident)
    body["conversation"]["id"] = conversation

    assert private.thread_root(MessageActivity.model_validate(body)) is root


def test_an_automatic_refresh_is_read_by_the_sdk_with_its_trigger_dropped() -> None:
    action = {"type": "Action.Execute", "verb": VERB, "data": {}}
    refresh = {"type": "invoke", "name": "adaptiveCard/action"}
    automatic = {**refresh, "value": {"action": action, "trigger": "automatic"}}
    manual = {**refresh, "value": {"action": action, "trigger": "manual"}}

    assert readable_invoke(automatic) == {**refresh, "value": {"action": action}}
    assert readable_invoke(manual) == manual
    # Anything else is left as it came: the SDK's own check answers it.
    other = {"type": "invoke", "name": "task/fetch", "value": {"trigger": "automatic"}}
    assert readable_invoke(other) == other
    assert readable_invoke([automatic]) == [automatic]


def test_an_answer_near_the_size_limit_still_fits_with_its_refresh_and_marks() -> None:
    # A list card just within a Teams message, with a next-page button per item.
    asked = private.Asked(SIAN_MRI, SIAN, "Sian Hughes", "x" * private.MAX_WORDS, ("cy", "en"))
    lines = [f"TP-{n:03} " + "y" * 180 for n in range(300)]
    items: list[dict[str, Any]] = []
    while card_bytes(card(items)) < MAX_BODY_BYTES - 400:
        line = lines[len(items) // 2]
        items += [
            {"type": "TextBlock", "text": line, "wrap": True},
            {
                "type": "ActionSet",
                "actions": [
                    {"type": "Action.Execute", "verb": "page", "data": {"value": line[:6]}}
                ],
            },
        ]
    answer = card(items)
    assert card_bytes(answer) <= MAX_BODY_BYTES

    shown = private.answer_card(answer, "\n".join(lines), asked)

    assert card_bytes(shown) <= MAX_BODY_BYTES
    assert_valid_card(shown)
    assert shown["refresh"]["userIds"] == [SIAN_MRI]
    assert "TP-000" in text_of(shown)
    # Within the limit as it is, the answer keeps its buttons, each naming the asker.
    small = private.answer_card(card(items[:2]), "", asked)
    assert [a["data"][KEY] for a in small["body"][1]["actions"]] == [asked.marker()]


def test_a_button_that_changes_something_never_refreshes_itself() -> None:
    marker = {"user": SIAN_MRI, "aad": SIAN}
    support = {"type": "Action.Execute", "verb": "question.support", "data": {"value": "Q-1"}}
    result = card([{"type": "ActionSet", "actions": [support]}])

    changed = private.button_card(result, "", "en", marker, None)
    read = private.button_card(result, "", "en", marker, ("page", {"value": "actions page 2"}))

    assert "refresh" not in changed
    assert changed["body"][0]["actions"][0]["data"] == {"value": "Q-1", KEY: marker}
    assert read["refresh"]["action"]["data"] == {"value": "actions page 2", KEY: marker}
    assert read["refresh"]["userIds"] == [SIAN_MRI]
    assert_valid_card(changed)
    assert_valid_card(read)
