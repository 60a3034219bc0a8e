"""Private answers in Teams channels to commands that change something (`ask`, `support`), end
to end through the real Teams SDK, the real web app, signed activities and the fake Bot
Connector: the command runs once, when the new post comes; its answer is stored for the asker and
shown to them at every refresh without running it again; anyone else (or a forged invoke) gets
the base card; a stored answer's buttons work for the asker; an expired, unknown or misplaced
token is answered as no longer available; the pruning job deletes old answers only."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.clock import Clock
from bot.models import PrivateAnswer, Question, QuestionSupport
from bot.platforms.teams import private
from bot.platforms.teams.private import KEY, STORED_VERB, TOKEN
from bot.scheduler import prune_private_answers
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import ServedApp
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import BOT, SIAN, activity, add_teams_channel
from tests.test_teams_invokes import (
    ELERI,
    FILE_SHARES,
    SPEC,
    Window,
    elements,
    open_window,
    say,
    text_of,
)
from tests.test_teams_private import (
    ELERI_MRI,
    SIAN_MRI,
    answered,
    channel_invoke,
    refreshing,
)

LAPTOPS = "How many laptops are past their warranty?"
SIAN_SENDER = (SIAN_MRI, "Sian Hughes")
ELERI_SENDER = (ELERI_MRI, "Eleri Jones")


@dataclass
class Thread:
    """Monmouthshire's Teams channel with the question window open: Sian's new posts there,
    the bot's answers to invokes from its cards, and what the database holds."""

    served: ServedApp
    issuer: FakeTokenIssuer
    connector: FakeBotConnector
    engine: Engine
    window: Window

    def post(self, words: str) -> dict[str, Any]:
        """Sian mentions the bot with `words` in a new post; the card posted in its thread."""
        mention = ((BOT, "Scrutiny"),)
        body = activity(self.connector, "channel", f"<at>Scrutiny</at> {words}", mentions=mention)
        return say(self.served, self.issuer, self.connector, body)

    def invoke(
        self, value: dict[str, Any], user: str = SIAN, sender: tuple[str, str] = SIAN_SENDER
    ) -> dict[str, Any]:
        """The card the bot answers an invoke from the thread with (`value`: its action)."""
        body = channel_invoke(self.connector, value, user=user, sender=sender)
        return answered(self.served, self.issuer, self.connector, body)

    def refresh(self, card: dict[str, Any], trigger: str = "automatic") -> dict[str, Any]:
        """Sian's client refreshing `card`."""
        return self.invoke(refreshing(card, trigger))

    def count(self, model: type[Any]) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def thread(
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
    served: ServedApp,
    engine: Engine,
    teams_app: ScrutinyApp,
    session: Session,
    seed: Seed,
) -> Thread:
    add_teams_channel(session, seed, "monmouthshire")
    return Thread(served, issuer, connector, engine, open_window(teams_app, session, seed))


def test_ask_in_a_new_post_runs_once_and_only_the_asker_sees_its_confirmation(
    thread: Thread,
) -> None:
    before = thread.count(Question)

    base = thread.post(f"ask {SPEC} {LAPTOPS}")

    # The question is asked once; the thread gets the base card alone, with no answer in it.
    assert thread.count(Question) == before + 1
    (sent,) = thread.connector.calls
    assert sent.conversation_id.endswith(";messageid=1700000000050")
    with Session(thread.engine) as session:
        ref = session.scalars(select(Question.ref).order_by(Question.id.desc())).first()
    assert ref is not None
    assert_valid_card(base)
    assert "Sian Hughes asked:" in text_of(base) and ref not in json.dumps(base)
    assert base["refresh"]["userIds"] == [SIAN_MRI]
    action = base["refresh"]["action"]
    # The refresh carries the stored answer's token alone: not the answer, not the words.
    assert action["verb"] == STORED_VERB and list(action["data"]) == [TOKEN]
    assert len(action["data"][TOKEN]) >= 24
    (button,) = base["actions"]
    assert (button["verb"], button["data"]) == (STORED_VERB, action["data"])

    # The asker's refreshes (automatic, then the button) show the confirmation, every time the
    # same, and ask nothing again.
    shown = [thread.refresh(base) for _ in range(5)]
    shown.append(thread.invoke({"action": button, "trigger": "manual"}))
    assert thread.count(Question) == before + 1
    first = shown[0]
    assert f"Your question is {ref}" in text_of(first) and LAPTOPS in text_of(first)
    assert all(card == first for card in shown)
    assert first["refresh"] == base["refresh"]
    assert len(thread.connector.calls) == 1

    # Anyone else, or an invoke with one of the asker's ids but not both, gets the base card.
    for user, sender, trigger in (
        (ELERI, ELERI_SENDER, "automatic"),
        (ELERI, SIAN_SENDER, "manual"),
        (SIAN, ELERI_SENDER, "manual"),
    ):
        other = thread.invoke(refreshing(base, trigger), user, sender)
        assert other == base and ref not in json.dumps(other)
    assert thread.count(Question) == before + 1


def test_a_forged_or_misplaced_token_gets_no_answer(thread: Thread) -> None:
    base = thread.post(f"ask {SPEC} {LAPTOPS}")
    action = base["refresh"]["action"]

    # Eleri forges the refresh with the words of a read-only question: the stored token decides.
    forged = dict(action, data={**action["data"], "words": "actions quasar"})
    assert thread.invoke({"action": forged, "trigger": "automatic"}, ELERI, ELERI_SENDER) == base

    # A token the bot never made, or the right one from another channel: no longer available.
    gone = thread.invoke({"action": dict(action, data={TOKEN: "x" * 24}), "trigger": "manual"})
    assert "no longer available" in text_of(gone) and "refresh" not in gone
    elsewhere = channel_invoke(thread.connector, refreshing(base))
    elsewhere["conversation"]["id"] = "19:another0000000000000000000000000@thread.tacv2"
    moved = answered(thread.served, thread.issuer, thread.connector, elsewhere)
    assert "no longer available" in text_of(moved) and LAPTOPS not in json.dumps(moved)


def test_support_in_a_new_post_counts_once_however_often_it_is_refreshed(
    thread: Thread,
) -> None:
    ref = thread.window.ask("U0POL00001", "How resilient is the core network (TP-002)?")
    before = thread.count(QuestionSupport)

    base = thread.post(f"support {ref}")
    answers = [thread.refresh(base) for _ in range(5)]

    assert thread.count(QuestionSupport) == before + 1
    # Each refresh shows what the one run answered (run again, it would say she already does).
    assert all(f"You now support {ref}" in text_of(card) for card in answers)
    assert "already" not in text_of(answers[-1])


def test_a_stored_answers_support_button_works_for_the_asker(thread: Thread) -> None:
    ref = thread.window.ask("U0POL00001", FILE_SHARES)
    questions, supports = thread.count(Question), thread.count(QuestionSupport)

    offered = thread.refresh(thread.post(f"ask {SPEC} When will file shares move to SharePoint?"))

    # A near-duplicate: nothing asked, her support offered, the button naming her.
    assert thread.count(Question) == questions
    support = next(e for e in elements(offered) if e.get("verb") == "question.support")
    assert support["data"]["value"] == ref
    assert support["data"][KEY] == {"user": SIAN_MRI, "aad": SIAN}
    supported = thread.invoke({"action": support, "trigger": "manual"})

    assert thread.count(QuestionSupport) == supports + 1
    assert f"You now support {ref}" in text_of(supported)
    # A change is never repeated by a refresh: the result has none.
    assert "refresh" not in supported


def test_an_expired_answer_is_no_longer_available_and_the_job_prunes_old_ones(
    thread: Thread, teams_app: ScrutinyApp, clock: Clock
) -> None:
    days = teams_app.settings.private_answer_days
    old = thread.post(f"ask {SPEC} {LAPTOPS}")
    clock.advance(timedelta(days=days - 1))
    # The window has closed by now: the answer stored is the refusal, shown all the same.
    new = thread.post(f"ask {SPEC} Who signs off the network design?")
    clock.advance(timedelta(days=1, minutes=1))

    # Past its time (before the job has run) the old answer is gone; the newer one is shown.
    gone = thread.refresh(old)
    assert "This answer is no longer available." in text_of(gone) and "refresh" not in gone
    assert f"kept for {days} days" in text_of(gone)
    shown = thread.refresh(new)
    assert "no longer available" not in text_of(shown) and shown["refresh"] == new["refresh"]

    # The job deletes the old row and keeps the new one; run again, it finds nothing more.
    assert thread.count(PrivateAnswer) == 2
    assert prune_private_answers(teams_app) == 1
    with Session(thread.engine) as session:
        (left,) = session.scalars(select(PrivateAnswer.id)).all()
    assert left == new["refresh"]["action"]["data"][TOKEN]
    assert prune_private_answers(teams_app) == 0


def test_a_write_commands_form_is_offered_in_the_thread_as_before(thread: Thread) -> None:
    card = thread.post("ask")

    assert "refresh" not in card
    opener = next(e for e in elements(card) if e.get("type") == "Action.Submit")
    assert opener["data"]["command"] == "ask"
    assert thread.count(PrivateAnswer) == 0


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ("This answer is no longer available.", "kept for 30 days")),
        ("cy", ("Nid yw'r ateb hwn ar gael mwyach.", "am 30 diwrnod")),
    ],
)
def test_the_no_longer_available_card_is_valid_in_each_language(
    language: str, words: tuple[str, str]
) -> None:
    card = private.gone_card(language, 30)

    assert_valid_card(card)
    assert all(word in text_of(card) for word in words)
