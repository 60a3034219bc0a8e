"""Adaptive Cards for Teams from the `*.teams.json.j2` templates (issue 12, "Cards from templates"
and "Forms and buttons").

The joint scrutiny loop, the register forms, reminders and the query commands run through the
real handlers (`app.dispatch` / `app.interact`, and the posts through the real services); every
reply they render is rendered again as a Teams card in English and Welsh and checked against the
Adaptive Cards 1.5 schema and Teams' size limit. Buttons must name registered interactions,
dialogs the fields their handlers read, and user text must stay inert."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import Outcome, ScrutinyApp
from bot.clock import Clock
from bot.domain import ChannelLanguage, Platform
from bot.messages import Reply, Request
from bot.models import Action
from bot.permalinks import RegisterLinks, linked_ref
from bot.platforms.teams import private
from bot.rendering.escapes import markdown_escape
from bot.rendering.templates import TEMPLATES_DIR, Renderer
from bot.scheduler import run_due_reminders
from bot.services.digests import TEMPLATE, build_digest
from bot.services.questions import posts as question_posts
from bot.services.questions.core import MAX_LENGTH
from handlers.welcome import WELCOME
from tests.conftest import NOW
from tests.factories import Seed, add_action
from tests.support.cards import assert_valid_card
from tests.test_questions import BUSINESS, SPEC, add_meeting, add_partner_channels

SCHEMA = Path(__file__).resolve().parent / "data" / "schemas" / "adaptive-card-1.5.json"
REGISTER = "https://register.example.org"
MAX_CARD_BYTES = 28_000
"""Teams refuses a message over about 28 KB; a card must leave room for the activity around it."""

SECRETARIAT = "U0SEC00001"
TORFAEN = "U0TOR00001"
POLICE = "U0POL00001"
MONMOUTHSHIRE = "U0MON00001"
NEWPORT = "U0NEW00001"
HOSTILE = '*bold* _it_ [x](http://evil.example) <at>Sian</at> # head\n- item\n1. one ~s~ `c` "q" }'


def card_names(fmt: str) -> set[str]:
    """Templates (`feature/name`) with a variant in `fmt`."""
    return {
        str(p.relative_to(TEMPLATES_DIR)).removesuffix(f".{fmt}.j2")
        for p in TEMPLATES_DIR.glob(f"*/*.{fmt}.j2")
    }


@cache
def validator() -> jsonschema.Draft6Validator:
    return jsonschema.Draft6Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))


def valid_card(body: str) -> dict[str, Any]:
    """The rendered body as a card, once it is JSON, valid Adaptive Card 1.5 and small enough."""
    card = json.loads(body)
    errors = sorted(validator().iter_errors(card), key=str)
    assert not errors, [e.message for e in errors[:3]]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.5"
    assert len(body.encode()) < MAX_CARD_BYTES
    return card  # type: ignore[no-any-return]


def elements(node: Any) -> Iterator[dict[str, Any]]:
    """Every element and action of a card, depth first."""
    if isinstance(node, dict):
        if "type" in node:
            yield node
        for value in node.values():
            yield from elements(value)
    elif isinstance(node, list):
        for item in node:
            yield from elements(item)


class RecordingRenderer(Renderer):
    """The app's renderer, with register links, keeping every reply it is asked to render."""

    def __init__(self, base: Renderer) -> None:
        super().__init__(base.templates_dir, base.tz, base.teams_bot_name, RegisterLinks(REGISTER))
        self.replies: list[Reply] = []

    def render(
        self, reply: Reply, fmt: str, language: str, platform: Platform | None = None
    ) -> str:
        if not any(r is reply for r in self.replies):
            self.replies.append(reply)
        return super().render(reply, fmt, language, platform)


def say(app: ScrutinyApp, user: str, text: str, *, now: datetime = NOW, **where: Any) -> Outcome:
    """A command as `user` on Slack (whose members the seed knows), in a DM unless a channel."""
    channel = where.get("channel")
    request = Request(
        Platform.SLACK, user, text, channel_id=channel, is_direct=channel is None, now=now
    )
    return app.dispatch(request, where.get("fmt", "txt"))


def act(
    app: ScrutinyApp,
    user: str,
    verb: str,
    data: dict[str, Any],
    *,
    now: datetime = NOW,
    fmt: str = "txt",
) -> Outcome:
    """A Teams button or dialog submit: the verb (or the form) and its data, as the Teams
    platform hands them to the app."""
    request = Request(
        Platform.SLACK, user, str(data.get("value", "")), is_direct=True, now=now, values=data
    )
    return app.interact(verb, request, fmt)


def card_of(outcome: Outcome) -> dict[str, Any]:
    return valid_card(outcome.bodies[0])


def buttons(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in elements(card) if e["type"] == "Action.Execute"]


def inputs(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in elements(card) if e["type"].startswith("Input.")]


def submit(card: dict[str, Any], values: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """What Teams sends for a dialog: the submit's data plus the inputs, by their ids."""
    (action,) = card["actions"]
    assert action["type"] == "Action.Submit"
    data = dict(action["data"])
    form = data.pop("form")
    given = {e["id"]: e.get("value", "") for e in inputs(card)}
    return form, {**data, **given, **values}


def the_whole_loop(app: ScrutinyApp, session: Session, seed: Seed, clock: Clock) -> None:
    """Every card the bot makes, through the real handlers and services; buttons and dialogs
    are pressed and submitted with the data their Teams cards carry."""
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)
    say(app, SECRETARIAT, f"window open {SPEC}")
    question_posts.run_due(
        session, app.renderer, now=NOW + timedelta(minutes=1), zone=app.settings.timezone
    )
    session.commit()
    say(app, POLICE, f"ask {SPEC} How resilient is the network (TP-002)? theme:delivery")
    say(app, TORFAEN, f"ask {SPEC} When will the file shares move to SharePoint Online (TP-001)?")

    # The ask dialog, from the window post's button, submitted with its own input ids.
    (post_button,) = buttons(
        valid_card(
            app.renderer.render(
                next(r for r in app.renderer.replies if r.template == "questions/window_post"),  # type: ignore[attr-defined]
                "teams.json",
                "en",
            )
        )
    )
    form = card_of(act(app, NEWPORT, post_button["verb"], post_button["data"], fmt="teams.json"))
    verb, data = submit(form, {"question": HOSTILE, "theme": "benefits-and-learning"})
    assert "Thank you. Your question is" in act(app, NEWPORT, verb, data).text

    # A near-duplicate is offered with a support button; pressing it supports.
    offered = card_of(
        say(
            app,
            MONMOUTHSHIRE,
            f"ask {SPEC} When will file shares move to SharePoint Online?",
            fmt="teams.json",
        )
    )
    support = next(b for b in buttons(offered) if b["verb"] == "question.support")
    assert "2 bartner" in act(app, MONMOUTHSHIRE, support["verb"], support["data"]).text
    say(app, POLICE, f"ask! {SPEC} When will the file shares be moved to SharePoint Online?")
    say(app, NEWPORT, f"ask {SPEC} Please send me a list of every laptop and who has it.")
    say(app, SECRETARIAT, "ask")
    moderating = card_of(say(app, SECRETARIAT, "moderate", fmt="teams.json"))
    refs = [b["data"]["value"] for b in buttons(moderating) if b["verb"] == "question.accept"]
    merge = next(
        b
        for b in buttons(moderating)
        if b["verb"] == "question.merge_form" and b["data"]["value"] == refs[3]
    )
    merge_form = card_of(act(app, SECRETARIAT, merge["verb"], merge["data"], fmt="teams.json"))
    verb, data = submit(merge_form, {"into": refs[1]})
    assert refs[1] in act(app, SECRETARIAT, verb, data).text
    accept = next(b for b in buttons(moderating) if b["verb"] == "question.accept")
    act(app, SECRETARIAT, accept["verb"], accept["data"])
    say(app, SECRETARIAT, f"accept {refs[1]} {refs[2]}")
    reject = next(
        b
        for b in buttons(moderating)
        if b["verb"] == "question.reject_form" and b["data"]["value"] == refs[4]
    )
    reject_form = card_of(act(app, SECRETARIAT, reject["verb"], reject["data"], fmt="teams.json"))
    verb, data = submit(reject_form, {"reason": "Asset lists are in the service report."})
    assert "will see the reason" in act(app, SECRETARIAT, verb, data).text
    say(app, NEWPORT, f"questions {SPEC}")
    say(app, SECRETARIAT, f"window extend {SPEC} 2026-12-13 17:00")
    after_close = NOW + timedelta(hours=2)
    say(app, SECRETARIAT, f"window close {SPEC}", now=NOW + timedelta(hours=1))
    question_posts.run_due(session, app.renderer, now=after_close, zone=app.settings.timezone)
    session.commit()
    say(app, SECRETARIAT, f"pack {SPEC}", now=after_close)

    # The answer dialog, from the secretariat's question list.
    listing = card_of(say(app, SECRETARIAT, f"questions {SPEC}", now=after_close, fmt="teams.json"))
    answer = next(b for b in buttons(listing) if b["verb"] == "question.answer_form")
    answer_form = card_of(
        act(app, SECRETARIAT, answer["verb"], answer["data"], now=after_close, fmt="teams.json")
    )
    verb, data = submit(answer_form, {"answer": "The migration finishes in March 2027."})
    assert "Recorded the answer" in act(app, SECRETARIAT, verb, data, now=after_close).text
    question_posts.run_due(session, app.renderer, now=after_close, zone=app.settings.timezone)
    session.commit()
    say(app, SECRETARIAT, f"edit {refs[0]} A changed question", now=after_close)

    # The register: record a decision and update an action through their dialogs.
    decision_form = card_of(say(app, SECRETARIAT, "decision new", fmt="teams.json"))
    verb, data = submit(
        decision_form, {"board": "strategic", "title": "Adopt the *new* [plan](x)", "ref": ""}
    )
    assert "Recorded SB-2026-" in act(app, SECRETARIAT, verb, data).text
    detail = card_of(say(app, SECRETARIAT, "action TP-002", fmt="teams.json"))
    (mark,) = buttons(detail)
    action_form = card_of(act(app, SECRETARIAT, mark["verb"], mark["data"], fmt="teams.json"))
    verb, data = submit(action_form, {"status": "blocked", "note": HOSTILE})
    updated = card_of(act(app, SECRETARIAT, verb, data, fmt="teams.json"))
    assert [b["verb"] for b in buttons(updated)] == [mark["verb"]]

    # Reminders: the dialog, a reminder post and a meeting reminder.
    reminder_form = card_of(say(app, SECRETARIAT, "remind", fmt="teams.json"))
    verb, data = submit(
        reminder_form, {"channel": "srs-torfaen", "text": HOSTILE, "when": "every monday 9am"}
    )
    assert "Reminder 1 set" in act(app, SECRETARIAT, verb, data).text
    with clock.frozen(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        run_due_reminders(app)

    # The query commands, in a DM and in a channel; a long list pages with a "next" button.
    for n in range(12):
        add_action(session, seed, f"TP-{100 + n}", "torfaen", NOW.date() - timedelta(days=n + 1))
    session.commit()
    home = card_of(say(app, TORFAEN, "home", fmt="teams.json"))
    see_all = next(b for b in buttons(home) if b["verb"] == "page")
    assert "showing 1–10 of" in act(app, TORFAEN, see_all["verb"], see_all["data"]).text
    for user, text in [
        (TORFAEN, "actions overdue torfaen"),
        (TORFAEN, "decisions"),
        (TORFAEN, "decisions torfaen"),
        (TORFAEN, "action TP-001"),
        (TORFAEN, "decision SB-2026-031"),
        (TORFAEN, "decision BC-2026-010"),
        (TORFAEN, "action TP-999"),
        (TORFAEN, "find shares"),
        (TORFAEN, "find"),
        (TORFAEN, "xyzzy"),
        (TORFAEN, "meetings"),
        (TORFAEN, "meetings finance"),
        (TORFAEN, "home"),
        (MONMOUTHSHIRE, "home"),
        ("U0NOBODY01", "actions"),
    ]:
        say(app, user, text)
    say(app, TORFAEN, "action TP-003", channel="C0TOR00001")
    # The welcome a member gets the first time they open the bot.
    act(app, TORFAEN, WELCOME, {}, fmt="teams.json")
    # What a Teams channel sees of a private question (the asker sees the answer instead).
    asked = private.Asked(
        "29:1torfaen", "00000000-0000-0000-0000-000000R00001", HOSTILE, HOSTILE, ("cy", "en")
    )
    assert_valid_card(private.base_card(app.renderer, asked))
    # A partner channel's digest, rendered as the outbox renders a post.
    digest = build_digest(session, seed.channels["srs-torfaen"], now=NOW)
    app.renderer.render(Reply(TEMPLATE, digest.context()), "teams.json", "en", Platform.TEAMS)


@pytest.fixture
def recorded(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> dict[str, list[Reply]]:
    """Every reply the loop rendered, by template."""
    renderer = RecordingRenderer(app.renderer)
    app.renderer = renderer
    the_whole_loop(app, session, seed, clock)
    by_template: dict[str, list[Reply]] = {}
    for reply in renderer.replies:
        by_template.setdefault(reply.template, []).append(reply)
    return by_template


# -- tests ----------------------------------------------------------------------------------
def test_every_slack_template_has_a_teams_card() -> None:
    missing = card_names("slack.json") - card_names("teams.json")
    assert not missing


def test_every_card_renders_valid_in_english_and_welsh(
    app: ScrutinyApp, recorded: dict[str, list[Reply]]
) -> None:
    assert card_names("teams.json") <= set(recorded), "a card no scenario reaches"
    welsh_differs = 0
    for name in sorted(card_names("teams.json")):
        for reply in recorded[name]:
            english = valid_card(app.renderer.render(reply, "teams.json", "en", Platform.TEAMS))
            welsh = valid_card(app.renderer.render(reply, "teams.json", "cy", Platform.TEAMS))
            welsh_differs += english != welsh
    assert welsh_differs >= len(card_names("teams.json")) - 2  # the error echoes its message


def test_a_bilingual_channel_gets_a_welsh_card_then_an_english_one(
    app: ScrutinyApp, session: Session, seed: Seed, clock: Clock
) -> None:
    seed.channels["srs-torfaen"].language = ChannelLanguage.CY_EN
    session.commit()
    renderer = RecordingRenderer(app.renderer)
    app.renderer = renderer
    say(app, SECRETARIAT, 'remind #srs-torfaen "Papers for F&G due" every monday 9am')
    with clock.frozen(datetime(2026, 11, 30, 9, 0, tzinfo=UTC)):
        assert run_due_reminders(app)
    (post,) = [r for r in renderer.replies if r.template == "reminder/post"]
    assert post.context["languages"] == ["cy", "en"]
    welsh, english = (
        json.dumps(valid_card(renderer.render(post, "teams.json", language)), ensure_ascii=False)
        for language in post.context["languages"]
    )
    # The reminder's own words once, under the last language; the Welsh card has its label.
    assert "Nodyn atgoffa" in welsh and "Papers for F&G due" not in welsh
    assert "Reminder:" in english and "Papers for F&G due" in english


def test_every_button_and_form_names_what_its_handler_reads(
    app: ScrutinyApp, recorded: dict[str, list[Reply]]
) -> None:
    verbs: set[str] = set()
    for name in sorted(card_names("teams.json")):
        for reply in recorded[name]:
            card = valid_card(app.renderer.render(reply, "teams.json", "en", Platform.TEAMS))
            for button in buttons(card):
                assert button["verb"] in app.interactions, (name, button)
                assert set(button["data"]) == {"value"} and isinstance(button["data"]["value"], str)
                verbs.add(button["verb"])
            if reply.surface != "modal":
                assert not inputs(card), name
                continue
            (submit_action,) = card["actions"]
            assert submit_action["data"]["form"] in app.interactions
            # The Slack modal of the same reply names the fields its handler reads.
            view = json.loads(app.renderer.render(reply, "slack.json", "en"))
            assert submit_action["data"]["form"] == view["callback_id"]
            assert submit_action["data"]["metadata"] == view["private_metadata"]
            block_ids = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
            assert [e["id"] for e in inputs(card)] == block_ids, name
            for field in inputs(card):
                assert field["label"] and (not field["isRequired"] or field["errorMessage"])
    assert verbs >= {
        "page",
        "question.support",
        "question.accept",
        "question.reject_form",
        "question.merge_form",
        "question.answer_form",
        "question.ask_form",
        "question.ask_anyway",
        "register.update_action_form",
    }


def test_a_refused_dialog_shows_each_error_under_its_field(app: ScrutinyApp, seed: Seed) -> None:
    form = say(app, SECRETARIAT, "remind", fmt="teams.json")
    verb, data = submit(card_of(form), {"channel": "nowhere", "text": "Papers", "when": "soon"})
    refused = act(app, SECRETARIAT, verb, data)
    assert refused.reply.field_errors
    again = dataclasses.replace(
        form.reply,
        field_errors=refused.reply.field_errors,
        context={**form.reply.context, "submitted": data},
    )
    card = valid_card(app.renderer.render(again, "teams.json", "en"))
    body = card["body"]
    for name, message in refused.reply.field_errors.items():
        (at,) = [i for i, e in enumerate(body) if e.get("id") == name]
        assert body[at + 1]["color"] == "attention"
        assert body[at + 1]["text"] == markdown_escape(message)
    typed = {e["id"]: e.get("value") for e in inputs(card)}
    assert typed["text"] == "Papers" and typed["when"] == "soon"
    plain = valid_card(app.renderer.render(form.reply, "teams.json", "en"))
    assert not [e for e in elements(plain) if e.get("color") == "attention"]


MARKDOWN_LINK = re.compile(r"(?<!\\)\[([^\]]*)\]\(([^)]*)\)")


def test_hostile_user_text_is_inert(
    app: ScrutinyApp, session: Session, seed: Seed, recorded: dict[str, list[Reply]]
) -> None:
    action = session.scalar(select(Action).where(Action.ref == "TP-001"))
    assert action is not None
    action.title = HOSTILE
    action.owner = "<at>Sian</at> **x**"
    session.commit()
    cards = [
        card_of(say(app, TORFAEN, "action TP-001", fmt="teams.json")),
        card_of(say(app, TORFAEN, "home", fmt="teams.json")),
        card_of(say(app, TORFAEN, "find shares", fmt="teams.json")),
    ] + [
        valid_card(app.renderer.render(reply, "teams.json", "en"))
        for name in card_names("teams.json")
        for reply in recorded[name]
    ]
    seen = 0
    for card in cards:
        for element in elements(card):
            text = str(element.get("text", "")) + str(element.get("value", ""))
            if element["type"] not in ("TextBlock", "FactSet") or "evil" not in text:
                continue
            seen += 1
            # Every link left is a register permalink; the user's brackets and stars are escaped.
            assert all(url.startswith(REGISTER) for _, url in MARKDOWN_LINK.findall(text))
            assert "\\[x\\]" in text and "\\*bold\\*" in text and "\\<at\\>" in text
            assert "\\# head" in text and "\\- item" in text
    assert seen >= 4


def test_register_references_link_to_their_permalinks() -> None:
    links = RegisterLinks(REGISTER + "/")
    assert linked_ref("SB-2026-014", "decisions", "teams.json", links) == (
        f"[SB-2026-014]({REGISTER}/decisions/SB-2026-014)"
    )
    assert linked_ref("TP-014", "actions", "teams.json", None) == "TP-014"
    renderer = Renderer(links=links)
    reply = Reply("reminder/meeting", {})
    with pytest.raises(Exception, match="meeting"):
        renderer.render(reply, "teams.json", "en")


def unlike(n: int, length: int) -> str:
    """Random words (seeded by `n`), so no two questions read as the same one."""
    pick = random.Random(n)
    words = (
        "".join(pick.choices(string.ascii_lowercase, k=pick.randint(3, 11))) for _ in range(length)
    )
    return " ".join(words)[:length]


def test_long_question_lists_and_packs_stay_within_the_card_size(
    app: ScrutinyApp, session: Session, seed: Seed
) -> None:
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    say(app, SECRETARIAT, f"window open {SPEC}")
    for n in range(40):
        asked = say(app, POLICE, f"ask! {SPEC} {unlike(n, MAX_LENGTH - 20)}?")
        assert "Thank you" in asked.text, asked.text
    moderating = json.dumps(card_of(say(app, SECRETARIAT, "moderate", fmt="teams.json")))
    assert "more not shown, to keep this card within the size Teams allows" in moderating
    say(app, SECRETARIAT, "accept " + " ".join(f"Q-BC-2026-12-{n:03}" for n in range(1, 41)))
    after_close = NOW + timedelta(hours=2)
    say(app, SECRETARIAT, f"window close {SPEC}", now=NOW + timedelta(hours=1))
    pack = say(app, SECRETARIAT, f"pack {SPEC}", now=after_close, fmt="teams.json")
    assert "more not shown" in json.dumps(card_of(pack))
