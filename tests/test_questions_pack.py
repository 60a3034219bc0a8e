"""Question services below the chat layer: references under races, similarity, the pack's
formats and markings, answers to channels by clearance, reminders and carrying forward."""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

import docx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Marking, QuestionState
from bot.i18n import Translator
from bot.models import Delivery, Meeting, Question
from bot.rendering.escapes import markdown_escape
from bot.services.questions import core as questions
from bot.services.questions import pack as question_pack
from bot.services.questions import posts as question_posts
from bot.services.questions.windows import QuestionError
from bot.visibility import Audience
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_questions import MONMOUTHSHIRE, NEWPORT, POLICE, SECRETARIAT, TORFAEN, ref_of, say

SB = "strategic 2026-12-03"
EN = Translator("en")


def test_a_lost_race_for_a_reference_takes_the_next_one(
    app: ScrutinyApp, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    real = questions.next_number
    calls: list[int] = []

    def stale(session: Session, prefix: str) -> int:
        # The first try sees the state before another writer took number 1.
        calls.append(1)
        return 1 if len(calls) == 1 else real(session, prefix)

    monkeypatch.setattr(questions, "next_number", stale)
    second = ref_of(say(app, POLICE, f"ask {SB} What is the police data retention plan?"))
    assert (first, second) == ("Q-SB-2026-12-001", "Q-SB-2026-12-002")
    assert len(calls) == 2


def test_members_asking_at_once_get_distinct_references(app: ScrutinyApp, seed: Seed) -> None:
    texts = {
        TORFAEN: "Is the data centre move on budget?",
        POLICE: "What is the police data retention plan?",
        NEWPORT: "How many laptops were replaced this year?",
        MONMOUTHSHIRE: "When does the new service desk tool go live?",
    }
    barrier = threading.Barrier(len(texts))
    refs: dict[str, str] = {}

    def ask(user: str) -> None:
        barrier.wait()
        refs[user] = ref_of(say(app, user, f"ask {SB} {texts[user]}"))

    threads = [threading.Thread(target=ask, args=(user,)) for user in texts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(refs.values()) == [f"Q-SB-2026-12-00{n}" for n in range(1, 5)]


def test_similarity_ignores_case_accents_punctuation_and_order() -> None:
    assert questions.normalise("  Pa bryd?  Café-move, (TP-001)!") == "pa bryd cafe move tp 001"
    assert (
        questions.similarity("When will file shares move?", "file shares: when will they move")
        >= 85
    )
    assert questions.similarity("Is the budget on track?", "Who owns the police network?") < 50


def _accepted(app: ScrutinyApp, user: str, text: str) -> str:
    ref = ref_of(say(app, user, f"ask {SB} {text}"))
    assert "Accepted" in say(app, SECRETARIAT, f"accept {ref}").text
    return ref


def strategic_pack(
    app: ScrutinyApp, seed: Seed, session: Session, audience: Audience | None = None
) -> question_pack.Pack:
    """The seeded strategic meeting's pack, for the secretariat unless `audience` is given."""
    meeting = session.get(Meeting, seed.meetings[0].id)
    assert meeting is not None
    reader = audience or question_pack.secretariat_audience(session)
    return question_pack.build_pack(session, meeting, reader, now=NOW, zone=app.settings.timezone)


def test_markdown_keeps_the_askers_words_as_written(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = _accepted(app, TORFAEN, "Is *phase 2* of the move_plan on [budget] # now?")
    markdown = question_pack.to_markdown(strategic_pack(app, seed, session), EN)
    assert f"1. **{ref}**: Is \\*phase 2\\* of the move\\_plan on \\[budget\\] \\# now?" in markdown
    assert markdown_escape("1. first\n- second") == "1\\. first  \n\\- second"


def test_a_sensitive_question_marks_the_pack_and_is_left_out_for_those_not_cleared(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    open_ref = _accepted(app, TORFAEN, "Is the data centre move on budget?")
    sensitive = _accepted(app, POLICE, "What did the cyber assessment (TP-006) find?")
    secretariat = strategic_pack(app, seed, session)
    assert [q.ref for q in secretariat.questions] == [open_ref, sensitive]
    assert secretariat.marking is Marking.OFFICIAL_SENSITIVE
    document = docx.Document(io.BytesIO(question_pack.to_docx(secretariat, EN)))
    assert document.sections[0].header.paragraphs[0].text == "OFFICIAL-SENSITIVE"
    assert document.sections[0].footer.paragraphs[0].text == "OFFICIAL-SENSITIVE"
    assert any("OFFICIAL-SENSITIVE" in p.text for p in document.paragraphs)

    official = Audience(Marking.OFFICIAL, False, frozenset({"srs"}))
    public = strategic_pack(app, seed, session, official)
    assert [q.ref for q in public.questions] == [open_ref]
    assert public.marking is Marking.OFFICIAL
    text = question_pack.to_markdown(public, EN)
    assert sensitive not in text and "cyber" not in text
    assert "1 question is left out: its marking is above this pack's readers' clearance." in text


def test_an_answer_goes_only_to_channels_cleared_for_the_question(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = _accepted(app, POLICE, "What did the cyber assessment (TP-006) find?")
    say(app, TORFAEN, f"support {ref}")
    reply = say(app, SECRETARIAT, f"answer {ref} Two medium findings, both fixed.")
    assert "posted, once each, to #srs-police" in reply.text
    assert "Not posted to #srs-torfaen: not cleared for this question." in reply.text
    sent = list(
        session.scalars(select(Delivery.idempotency_key).where(Delivery.kind == "question-answer"))
    )
    assert sent == [f"answer:{ref}:srs-police"]


def test_answers_for_unknown_merged_or_carried_questions_say_what_to_do(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    t = EN
    with pytest.raises(QuestionError, match="There is no question Q-SB-2026-12-050"):
        questions.record_answer(session, "Q-SB-2026-12-050", "Yes.", "", actor="t", now=NOW, t=t)
    a = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    b = ref_of(say(app, POLICE, f"ask {SB} What is the police data retention plan?"))
    say(app, SECRETARIAT, f"merge {a} into {b}")
    session.expire_all()
    with pytest.raises(QuestionError, match=f"merged into {b}"):
        questions.record_answer(session, a, "Yes.", "", actor="t", now=NOW, t=t)
    with pytest.raises(QuestionError, match="The answer is empty"):
        questions.record_answer(session, b, "  ", "", actor="t", now=NOW, t=t)


def test_closing_reminder_and_carry_forward_wait_for_their_time(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    zone = app.settings.timezone
    ref = _accepted(app, TORFAEN, "Is the data centre move on budget?")
    closes = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    early = question_posts.run_due(session, app.renderer, now=closes - timedelta(days=2), zone=zone)
    late = question_posts.run_due(session, app.renderer, now=closes - timedelta(hours=2), zone=zone)
    again = question_posts.run_due(
        session, app.renderer, now=closes - timedelta(hours=1), zone=zone
    )
    session.commit()
    assert early.reminded == 0 and late.reminded > 0 and again.reminded == 0
    reminders = list(
        session.scalars(
            select(Delivery.idempotency_key).where(
                Delivery.idempotency_key.like("window-closing:%")
            )
        )
    )
    assert f"window-closing:{seed.meetings[0].id}:srs-torfaen:20261127T1700Z" in reminders

    # The strategic board has no later meeting yet: the question waits, then moves.
    after = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
    assert question_posts.run_due(session, app.renderer, now=after, zone=zone).carried == 0
    session.add(
        Meeting(board=seed.boards["strategic"], starts_at=datetime(2027, 3, 4, 10, 0, tzinfo=UTC))
    )
    session.commit()
    assert question_posts.run_due(session, app.renderer, now=after, zone=zone).carried == 1
    session.commit()
    old = session.scalar(select(Question).where(Question.ref == ref))
    assert old is not None and old.state is QuestionState.CARRIED_FORWARD
    with pytest.raises(
        QuestionError, match="carried forward to the next meeting as Q-SB-2027-03-001"
    ):
        questions.record_answer(session, ref, "Yes.", "", actor="t", now=after, t=EN)
