"""The Teams app's invokes on the real Teams SDK, through POST /api/messages of the real web app,
with signed activities from the local token issuer and replies to the local Bot Connector:
dialogs (task/fetch, task/submit) opened and submitted with per-field errors, Action.Execute
buttons answered with the card that replaces them (refused roles included), the message
extension's ask (prefilled from a message) and search (the member's clearance only), and the
welcome on install, once. Payload shapes follow Microsoft's documentation of each invoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Platform, QuestionState
from bot.messages import Request
from bot.models import Action, Question
from tests.conftest import NOW
from tests.factories import Seed, add_action
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import BOT, PERSONAL, SIAN, activity, post
from tests.test_questions import BUSINESS, SPEC, add_meeting, add_partner_channels

CERI = "00000000-0000-0000-0000-000000C00001"
"""Ceri Morgan (secretariat, OFFICIAL-SENSITIVE)."""
ELERI = "00000000-0000-0000-0000-000000N00001"
"""Eleri Jones (Monmouthshire scrutiny member, OFFICIAL only)."""
CARD = "application/vnd.microsoft.card.adaptive"


def invoke(
    connector: FakeBotConnector, name: str, value: dict[str, Any], *, user: str = SIAN
) -> dict[str, Any]:
    """An invoke activity as Teams sends one in a personal chat."""
    body = activity(connector, "personal", "", user=user)
    del body["text"], body["textFormat"], body["entities"]
    return {**body, "type": "invoke", "name": name, "value": value}


def send(
    served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector, body: dict[str, Any]
) -> httpx.Response:
    response = post(served, body, issuer.token(connector.service_url))
    assert response.status_code == 200, response.text
    return response


def say(
    served: ServedApp, issuer: FakeTokenIssuer, connector: FakeBotConnector, body: dict[str, Any]
) -> dict[str, Any]:
    """Send a message and wait for the bot's reply (sent after the HTTP answer); its card."""
    before = len(connector.calls)
    send(served, issuer, connector, body)
    connector.wait_until(lambda: len(connector.calls) > before)
    [card] = connector.calls[-1].cards
    return card


def elements(node: Any) -> list[dict[str, Any]]:
    """Every element and action of a card, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "type" in node:
            found.append(node)
        for value in node.values():
            found.extend(elements(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(elements(item))
    return found


def text_of(card: dict[str, Any]) -> str:
    return "\n".join(e["text"] for e in elements(card) if e["type"] == "TextBlock")


def dialog_card(response: httpx.Response) -> dict[str, Any]:
    """The card of a `continue` dialog answer, once it is a valid card."""
    task = response.json()["task"]
    assert task["type"] == "continue", task
    attachment = task["value"]["card"]
    assert attachment["contentType"] == CARD
    assert_valid_card(attachment["content"])
    return attachment["content"]  # type: ignore[no-any-return]


def opener_of(card: dict[str, Any]) -> dict[str, Any]:
    """The data of the button that opens a dialog (Action.Submit, msteams task/fetch)."""
    (opener,) = [
        e
        for e in elements(card)
        if e["type"] == "Action.Submit" and e["data"].get("msteams") == {"type": "task/fetch"}
    ]
    return opener["data"]  # type: ignore[no-any-return]


def submitted(form: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """What Teams sends as task/submit data: the submit's data plus every input by id."""
    (submit,) = [e for e in form["actions"] if e["type"] == "Action.Submit"]
    given = {e["id"]: e.get("value", "") for e in elements(form) if e["type"].startswith("Input.")}
    return {**submit["data"], **given, **values}


def task(data: dict[str, Any]) -> dict[str, Any]:
    return {"data": data, "context": {"theme": "default"}}


def execute(verb: str, data: dict[str, Any]) -> dict[str, Any]:
    """adaptiveCard/action's value, as Teams sends it for an Action.Execute."""
    return {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}


def errors_shown(form: dict[str, Any]) -> list[str]:
    return [e["text"] for e in form["body"] if e.get("color") == "attention"]


# -- dialogs ----------------------------------------------------------------------------------
def test_a_command_form_opens_as_a_dialog_shows_field_errors_and_posts_when_done(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    say(served, issuer, connector, activity(connector, "personal", "remind", user=CERI))
    [offered] = connector.calls
    assert_valid_card(offered.cards[0])
    data = opener_of(offered.cards[0])
    assert data["command"] == "remind"

    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(data), user=CERI))
    )
    assert {"channel", "text", "when"} <= {e.get("id") for e in elements(form)}

    bad = submitted(form, {"channel": "nowhere", "text": "Papers", "when": "soon"})
    again = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/submit", task(bad), user=CERI))
    )
    assert len(errors_shown(again)) >= 1
    typed = {e["id"]: e.get("value") for e in elements(again) if e["type"].startswith("Input.")}
    assert (typed["text"], typed["when"]) == ("Papers", "soon")
    assert len(connector.calls) == 1  # nothing posted for a refused form

    good = submitted(
        again, {"channel": "srs-torfaen", "text": "Papers", "when": "every monday 9am"}
    )
    closed = send(
        served, issuer, connector, invoke(connector, "task/submit", task(good), user=CERI)
    )
    assert closed.json() == {}
    confirmation = connector.calls[-1]
    assert (confirmation.kind, confirmation.conversation_id) == ("send", PERSONAL)
    assert_valid_card(confirmation.cards[0])
    assert "Reminder 1 set" in text_of(confirmation.cards[0])


def test_recording_a_decision_through_its_dialog(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    say(served, issuer, connector, activity(connector, "personal", "decision new", user=CERI))
    data = opener_of(connector.calls[0].cards[0])
    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(data), user=CERI))
    )

    refused = submitted(form, {"board": "strategic", "title": "", "ref": ""})
    assert errors_shown(
        dialog_card(
            send(
                served,
                issuer,
                connector,
                invoke(connector, "task/submit", task(refused), user=CERI),
            )
        )
    )
    done = submitted(form, {"board": "strategic", "title": "Adopt the new plan", "ref": ""})
    send(served, issuer, connector, invoke(connector, "task/submit", task(done), user=CERI))

    assert "Recorded SB-2026-" in text_of(connector.calls[-1].cards[0])


def test_a_card_button_opens_the_update_action_dialog(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, session: Session
) -> None:
    say(served, issuer, connector, activity(connector, "personal", "action TP-002", user=CERI))
    detail = connector.calls[0].cards[0]
    # The template's Action.Execute is sent as a button that opens a dialog.
    assert not [e for e in elements(detail) if e["type"] == "Action.Execute"]
    data = opener_of(detail)
    assert data["verb"] == "register.update_action_form"

    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(data), user=CERI))
    )
    done = submitted(form, {"status": "blocked", "note": "Waiting for the supplier"})
    send(served, issuer, connector, invoke(connector, "task/submit", task(done), user=CERI))

    assert_valid_card(connector.calls[-1].cards[0])
    assert session.scalar(select(Action.status).where(Action.ref == "TP-002")).value == "blocked"


def test_a_member_without_the_role_gets_no_dialog(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    data = {
        "msteams": {"type": "task/fetch"},
        "verb": "register.update_action_form",
        "value": "TP-002",
    }

    answer = send(served, issuer, connector, invoke(connector, "task/fetch", task(data))).json()

    assert answer["task"]["type"] == "message"
    assert "secretariat" in answer["task"]["value"].lower()


# -- the joint scrutiny loop: ask, support, accept, reject, answer -----------------------------
FILE_SHARES = "When will the file shares move to SharePoint Online?"
"""Torfaen's question in the window, asked by its member (`Window.ask`'s default)."""


@dataclass
class Window:
    """The business collaboration meeting's question window, open: the app and the session
    the questions asked in it live in."""

    app: ScrutinyApp
    session: Session

    def ask(self, user: str = "U0TOR00001", text: str = FILE_SHARES) -> str:
        """The ref of the question `user` asks in the window (by Slack, as members do)."""
        request = Request(Platform.SLACK, user, f"ask {SPEC} {text}", None, True, NOW)
        outcome = self.app.dispatch(request)
        return next(w.rstrip(".,") for w in outcome.text.split() if w.startswith("Q-"))

    def state_of(self, ref: str) -> QuestionState | None:
        """A question's state as stored now."""
        self.session.expire_all()
        return self.session.scalar(select(Question.state).where(Question.ref == ref))


def open_window(app: ScrutinyApp, session: Session, seed: Seed) -> Window:
    """The business collaboration meeting's question window, opened by the secretariat."""
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    app.dispatch(Request(Platform.SLACK, "U0SEC00001", f"window open {SPEC}", None, True, NOW))
    return Window(app, session)


@pytest.fixture
def window(teams_app: ScrutinyApp, session: Session, seed: Seed) -> Window:
    return open_window(teams_app, session, seed)


def test_support_accept_and_a_refused_accept_answer_in_place(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, window: Window
) -> None:
    ref = window.ask("U0POL00001", "How resilient is the core network (TP-002)?")

    refused = send(
        served,
        issuer,
        connector,
        invoke(connector, "adaptiveCard/action", execute("question.accept", {"value": ref})),
    ).json()
    assert (refused["statusCode"], refused["type"]) == (200, CARD)
    assert_valid_card(refused["value"])
    assert "secretariat" in text_of(refused["value"]).lower()
    assert window.state_of(ref) == QuestionState.SUBMITTED

    supported = send(
        served,
        issuer,
        connector,
        invoke(connector, "adaptiveCard/action", execute("question.support", {"value": ref})),
    ).json()
    assert_valid_card(supported["value"])
    assert "2 partner" in text_of(supported["value"])

    accepted = send(
        served,
        issuer,
        connector,
        invoke(
            connector, "adaptiveCard/action", execute("question.accept", {"value": ref}), user=CERI
        ),
    ).json()
    assert_valid_card(accepted["value"])
    window.session.expire_all()
    assert window.state_of(ref) == QuestionState.ACCEPTED
    assert connector.calls == []  # buttons answer in place


def test_reject_with_a_reason_and_answer_through_dialogs(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, window: Window
) -> None:
    ref = window.ask()
    say(served, issuer, connector, activity(connector, "personal", "moderate", user=CERI))
    listing = connector.calls[0].cards[0]
    reject = next(
        e["data"]
        for e in elements(listing)
        if e.get("data", {}).get("verb") == "question.reject_form"
    )
    assert reject["msteams"] == {"type": "task/fetch"}
    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(reject), user=CERI))
    )
    empty = submitted(form, {"reason": ""})
    assert errors_shown(
        dialog_card(
            send(
                served, issuer, connector, invoke(connector, "task/submit", task(empty), user=CERI)
            )
        )
    )
    reason = submitted(form, {"reason": "Answered in the service report."})
    send(served, issuer, connector, invoke(connector, "task/submit", task(reason), user=CERI))
    assert "will see the reason" in text_of(connector.calls[-1].cards[0])
    assert window.state_of(ref) == QuestionState.REJECTED


def test_merge_through_a_dialog_choosing_among_the_meetings_other_questions(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, window: Window
) -> None:
    target = window.ask()
    source = window.ask("U0POL00001", "Is the police CAD contract to be renewed?")
    other = window.ask("U0TOR00001", "How many laptops are past their warranty?")
    say(served, issuer, connector, activity(connector, "personal", "moderate", user=CERI))
    listing = connector.calls[0].cards[0]
    assert_valid_card(listing)
    openers = [
        e["data"]
        for e in elements(listing)
        if e.get("data", {}).get("verb") == "question.merge_form"
    ]
    assert {o["value"] for o in openers} == {target, source, other}
    merge = next(o for o in openers if o["value"] == source)
    assert merge["msteams"] == {"type": "task/fetch"}

    # Merging is the secretariat's: a member gets no dialog.
    refused = send(served, issuer, connector, invoke(connector, "task/fetch", task(merge))).json()
    assert refused["task"]["type"] == "message"
    assert "secretariat" in refused["task"]["value"].lower()

    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(merge), user=CERI))
    )
    [into] = [e for e in elements(form) if e.get("id") == "into"]
    assert [c["value"] for c in into["choices"]] == [target, other]

    empty = submitted(form, {"into": ""})
    again = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/submit", task(empty), user=CERI))
    )
    assert errors_shown(again) == ["Choose the question to merge it into."]
    assert window.state_of(source) == QuestionState.SUBMITTED

    chosen = submitted(form, {"into": target})
    send(served, issuer, connector, invoke(connector, "task/submit", task(chosen), user=CERI))
    assert_valid_card(connector.calls[-1].cards[0])
    assert target in text_of(connector.calls[-1].cards[0])
    assert window.state_of(source) == QuestionState.MERGED


# -- the message extension ----------------------------------------------------------------------
def message_payload(html: str) -> dict[str, Any]:
    """`messagePayload` of a message action, as Microsoft documents it."""
    return {
        "id": "1700000000060",
        "replyToId": None,
        "createdDateTime": "2026-11-23T08:55:00.000Z",
        "importance": "normal",
        "locale": "en-GB",
        "body": {"contentType": "html", "content": html},
        "from": {"user": {"id": "29:1rhys-evans", "displayName": "Rhys Evans"}},
        "attachments": [],
        "mentions": [],
        "reactions": [],
    }


def test_ask_about_a_message_opens_the_ask_form_with_its_words_and_submits_it(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, window: Window
) -> None:
    html = "<p>When will the <b>file shares</b> move to SharePoint &amp; Teams?</p>"
    value = {
        "commandId": "askQuestion",
        "commandContext": "message",
        "context": {"theme": "default"},
        "messagePayload": message_payload(html),
    }

    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "composeExtension/fetchTask", value))
    )

    typed = {e["id"]: e.get("value") for e in elements(form) if e["type"].startswith("Input.")}
    assert typed["question"] == "When will the file shares move to SharePoint & Teams?"
    (meeting,) = [e for e in elements(form) if e.get("id") == "meeting"]
    choice = meeting["choices"][0]["value"]

    empty = submitted(form, {"meeting": choice, "question": ""})
    submit = {**value, "data": empty}
    again = dialog_card(
        send(served, issuer, connector, invoke(connector, "composeExtension/submitAction", submit))
    )
    assert errors_shown(again)

    done = {**value, "data": submitted(form, {"meeting": choice})}
    answer = send(
        served, issuer, connector, invoke(connector, "composeExtension/submitAction", done)
    ).json()
    assert answer["task"]["type"] == "message"
    assert "Thank you. Your question is" in answer["task"]["value"]
    assert window.session.scalar(select(Question.text)) == typed["question"]
    assert connector.calls == []


def find_records(
    served: ServedApp,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    words: str,
    user: str,
) -> list[dict[str, Any]]:
    value = {
        "commandId": "findRecord",
        "parameters": [{"name": "words", "value": words}],
        "queryOptions": {"skip": 0, "count": 25},
    }
    body = invoke(connector, "composeExtension/query", value, user=user)
    result = send(served, issuer, connector, body).json()["composeExtension"]
    assert (result["type"], result["attachmentLayout"]) == ("result", "list")
    for attachment in result["attachments"]:
        assert attachment["contentType"] == CARD
        assert_valid_card(attachment["content"])
        assert attachment["preview"]["content"]["title"]
    return result["attachments"]  # type: ignore[no-any-return]


def test_the_search_offers_records_the_member_may_see_and_no_more(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    cleared = find_records(served, issuer, connector, "sensitive cyber assessment", SIAN)
    assert [a["preview"]["content"]["title"] for a in cleared] == ["TP-006"]
    assert "Sensitive cyber assessment" in text_of(cleared[0]["content"])

    # Eleri has OFFICIAL clearance only: the OFFICIAL-SENSITIVE action is never offered to her.
    for words in ("sensitive cyber assessment", "TP-006", "cyber"):
        offered = find_records(served, issuer, connector, words, ELERI)
        assert all("TP-006" not in str(a) for a in offered), words
        assert all("Sensitive cyber" not in str(a) for a in offered), words

    decisions = find_records(served, issuer, connector, "data centre move", ELERI)
    assert "SB-2026-031" in [a["preview"]["content"]["title"] for a in decisions]
    assert connector.calls == []


# -- the welcome --------------------------------------------------------------------------------
def test_installing_the_app_welcomes_the_member_once(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp
) -> None:
    body = activity(connector, "personal", "")
    del body["text"], body["textFormat"], body["entities"]
    installed = {**body, "type": "installationUpdate", "action": "add"}
    added = {**body, "type": "conversationUpdate", "membersAdded": [{"id": BOT}]}

    send(served, issuer, connector, installed)
    send(served, issuer, connector, added)
    send(served, issuer, connector, installed)

    [welcome] = connector.calls
    assert (welcome.kind, welcome.conversation_id) == ("send", PERSONAL)
    assert_valid_card(welcome.cards[0])
    assert "Sian Hughes" in text_of(welcome.cards[0])


def test_answering_a_question_through_its_dialog(
    issuer: FakeTokenIssuer, connector: FakeBotConnector, served: ServedApp, window: Window
) -> None:
    ref = window.ask()
    for command in (f"accept {ref}", f"window close {SPEC}"):
        window.app.dispatch(Request(Platform.SLACK, "U0SEC00001", command, None, True, NOW))
    say(served, issuer, connector, activity(connector, "personal", f"questions {SPEC}", user=CERI))
    answer = next(
        e["data"]
        for e in elements(connector.calls[0].cards[0])
        if e.get("data", {}).get("verb") == "question.answer_form"
    )
    form = dialog_card(
        send(served, issuer, connector, invoke(connector, "task/fetch", task(answer), user=CERI))
    )
    done = submitted(form, {"answer": "The migration finishes in March 2027."})
    send(served, issuer, connector, invoke(connector, "task/submit", task(done), user=CERI))

    assert "Recorded the answer" in text_of(connector.calls[-1].cards[0])
    assert window.state_of(ref) == QuestionState.ANSWERED


def test_a_see_all_button_shows_the_list_in_place(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    session: Session,
    seed: Seed,
) -> None:
    for number in range(10, 25):
        add_action(session, seed, f"TP-{number:03}", "torfaen", date(2026, 12, 1))
    session.commit()
    home = say(served, issuer, connector, activity(connector, "personal", "home"))
    next_page = next(e for e in elements(home) if e.get("verb") == "page")

    answer = send(
        served,
        issuer,
        connector,
        invoke(connector, "adaptiveCard/action", execute("page", next_page["data"])),
    ).json()

    assert (answer["statusCode"], answer["type"]) == (200, CARD)
    assert_valid_card(answer["value"])
    assert "showing 1–10 of" in text_of(answer["value"])
