"""Bad input and refused permissions for questions: a clear reply each, and nothing stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp
from bot.domain import Marking, QuestionState
from bot.models import AuditEvent, Meeting, Member, Question, QuestionSupport
from tests.conftest import NOW
from tests.factories import Seed
from tests.test_questions import (
    MONMOUTHSHIRE,
    NEWPORT,
    POLICE,
    SECRETARIAT,
    TORFAEN,
    act,
    add_meeting,
    question_count,
    ref_of,
    say,
)

SB = "strategic 2026-12-03"
CLOSES = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def stored(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return (
            conn.scalar(select(func.count()).select_from(Question)) or 0,
            conn.scalar(select(func.count()).select_from(QuestionSupport)) or 0,
            conn.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        )


@pytest.mark.parametrize(
    ("user", "text", "now", "expected"),
    [
        (TORFAEN, f"ask {SB}", NOW, "Your question is empty"),
        (TORFAEN, f"ask {SB}   theme:delivery  ", NOW, "Your question is empty"),
        (TORFAEN, f"ask {SB} " + "x" * 2001, NOW, "2,001 characters long; the limit is 2,000"),
        (
            TORFAEN,
            f"ask {SB} Why?",
            CLOSES,
            "closed Friday 27 November 2026, 5:00pm; it is too late",
        ),
        (TORFAEN, f"ask {SB} Why?", datetime(2026, 11, 1, tzinfo=UTC), "open Thursday 19 November"),
        (
            TORFAEN,
            "ask strategic 2026-12-04 Why?",
            NOW,
            "The Strategic Board has no meeting on Friday 4 December 2026",
        ),
        (TORFAEN, "ask strategic 2026-12-04 Why?", NOW, "Its next meetings: strategic 2026-12-03"),
        (TORFAEN, "ask strategic 2026-02-31 Why?", NOW, "“2026-02-31” is not a date"),
        (TORFAEN, "ask #999 Why?", NOW, "There is no meeting #999"),
        (TORFAEN, "ask Why is the network slow?", NOW, "Questions are open for 2 meetings"),
        (
            TORFAEN,
            f"ask {SB} Why? theme:money",
            NOW,
            "“money” is not a theme; use one of vision-and-plan",
        ),
        (TORFAEN, f"ask {SB} Why? theme:delivery theme:vision", NOW, "Give one theme only"),
        (TORFAEN, f"ask {SB} What about TP-999?", NOW, "TP-999 is not a decision or action I know"),
        (
            TORFAEN,
            f"ask {SB} What about SB-2026-099?",
            NOW,
            "SB-2026-099 is not a decision or action I know",
        ),
        (
            TORFAEN,
            f"ask {SB} Is TP-004 on track?",
            NOW,
            "You can't link TP-004: it is not open to you here",
        ),
        ("U0NOBODY01", f"ask {SB} Why?", NOW, "I don't know you yet"),
    ],
)
def test_a_refused_question_says_why_and_stores_nothing(
    app: ScrutinyApp, seed: Seed, engine: Engine, user: str, text: str, now: datetime, expected: str
) -> None:
    before = stored(engine)
    reply = say(app, user, text, now=now)
    assert expected in reply.text
    assert stored(engine) == before


def test_members_without_a_role_cannot_ask(
    app: ScrutinyApp, seed: Seed, session: Session, engine: Engine
) -> None:
    member = seed.members["tom-price"]
    member.roles = []
    session.commit()
    reply = say(app, NEWPORT, f"ask {SB} Why?")
    assert (
        "Only members with the role board-member, scrutiny-member, secretariat can do that."
        in reply.text
    )
    assert question_count(engine) == 0


def test_a_window_not_set_or_meeting_without_one(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    add_meeting(session, seed, "strategic", datetime(2027, 3, 4, 10, 0, tzinfo=UTC))
    reply = say(app, TORFAEN, "ask strategic 2027-03-04 Why?")
    assert (
        "strategic 2027-03-04 is not taking questions; the secretariat opens the window."
        in reply.text
    )


def test_words_that_only_look_like_refs_are_left_as_words(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Does GDPR-2018 guidance and Q-SB-2026-12-001 apply?"))
    question = session.scalar(select(Question).where(Question.ref == ref))
    assert question is not None and question.linked_refs == []


def test_a_linked_item_passes_on_its_marking(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, POLICE, f"ask {SB} Is the police network segregation (TP-004) on track?"))
    question = session.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    assert (question.marking, question.restricted_to) == (
        Marking.OFFICIAL_SENSITIVE,
        ["gwent-police"],
    )
    # Torfaen's member neither sees it listed nor is offered it as a near-duplicate.
    listing = say(app, TORFAEN, f"questions {SB}").text
    assert ref not in listing and "1 more was left out because you aren't cleared for it" in listing
    mine = say(app, TORFAEN, f"ask {SB} Is the police network segregation on track?")
    assert "Thank you" in mine.text
    assert (
        f"There is no question {ref} that you can see here"
        in say(app, TORFAEN, f"support {ref}").text
    )


def test_supporting_rules(app: ScrutinyApp, seed: Seed, engine: Engine) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    assert "You asked" in say(app, TORFAEN, f"support {ref}").text
    assert "You now support" in act(app, POLICE, "question.support", value=ref).text
    before = stored(engine)
    assert f"You already support {ref}." in act(app, POLICE, "question.support", value=ref).text
    assert stored(engine) == before
    assert (
        "There is no question Q-SB-2026-12-099" in say(app, POLICE, "support Q-SB-2026-12-099").text
    )
    assert "Name one question" in say(app, POLICE, "support").text
    # refs are read case- and zero-blind
    assert "You now support" in say(app, NEWPORT, "support q-sb-2026-12-1").text
    late = say(app, MONMOUTHSHIRE, f"support {ref}", now=CLOSES + timedelta(minutes=1))
    assert "mae'n rhy hwyr" in late.text  # a Welsh-speaking member is answered in Welsh


def test_asking_the_same_question_twice_points_to_your_own(
    app: ScrutinyApp, seed: Seed, engine: Engine
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    again = say(app, TORFAEN, f"ask! {SB} Is the data centre move on budget?")
    assert f"You asked this already as {ref}" in again.text
    assert question_count(engine) == 1


def test_edit_and_withdraw_only_your_own_while_open(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    assert "only its asker can change it" in say(app, POLICE, f"edit {ref} Something else?").text
    say(app, SECRETARIAT, f"accept {ref}")
    edited = say(
        app,
        TORFAEN,
        f"edit {ref} Is phase 2 of the data centre move (SB-2026-031) on budget? theme:benefits",
    )
    assert "It awaits moderation again" in edited.text and "Benefits and learning" in edited.text
    question = session.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    session.refresh(question)
    assert question.state is QuestionState.SUBMITTED and question.linked_refs == ["SB-2026-031"]
    assert "Your question is empty" in say(app, TORFAEN, f"edit {ref}").text
    assert "Withdrew" in say(app, TORFAEN, f"withdraw {ref}").text
    assert (
        "is withdrawn, so it can no longer be changed" in say(app, TORFAEN, f"withdraw {ref}").text
    )
    # Withdrawn is private to its asker: to anyone else it answers as a missing question.
    unknown = "Q-SB-2026-12-999"
    assert say(app, POLICE, f"support {ref}").text == say(
        app, POLICE, f"support {unknown}"
    ).text.replace(unknown, ref)


@pytest.mark.parametrize(
    "text",
    [
        "window open strategic 2026-12-03",
        "accept Q-SB-2026-12-001",
        "reject Q-SB-2026-12-001 no",
        "merge Q-SB-2026-12-001 into Q-SB-2026-12-002",
        "pack strategic 2026-12-03",
        "answer Q-SB-2026-12-001 yes",
        "moderate",
    ],
)
def test_only_the_secretariat_moderates(
    app: ScrutinyApp, seed: Seed, engine: Engine, text: str
) -> None:
    say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?")
    before = stored(engine)
    reply = say(app, POLICE, text)
    assert "Only members with the role secretariat can do that." in reply.text
    assert stored(engine) == before


@pytest.mark.parametrize(
    "action_id",
    ["question.accept", "question.reject_form", "question.merge_form", "question.answer_form"],
)
def test_secretariat_buttons_check_the_role_too(
    app: ScrutinyApp, seed: Seed, action_id: str
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    assert "Only members with the role secretariat" in act(app, POLICE, action_id, value=ref).text


def test_moderation_mistakes(app: ScrutinyApp, seed: Seed, engine: Engine) -> None:
    a = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    b = ref_of(say(app, POLICE, f"ask {SB} What is the police data retention plan?"))
    other = ref_of(say(app, POLICE, "ask finance 2026-12-10 Are partner contributions fair?"))
    before = stored(engine)
    assert "Give the reason the asker will see" in say(app, SECRETARIAT, f"reject {a}").text
    assert "merged into itself" in say(app, SECRETARIAT, f"merge {a} into {a}").text
    assert "different meetings" in say(app, SECRETARIAT, f"merge {a} into {other}").text
    assert "Name two questions" in say(app, SECRETARIAT, f"merge {a}").text
    # The merge button's form, as text where there are no forms: the command and the choices.
    offered = act(app, SECRETARIAT, "question.merge_form", value=a).text
    assert f"merge {a} into {b}" in offered and other not in offered
    alone = act(app, SECRETARIAT, "question.merge_form", value=other).text
    assert f"No other open question of this meeting that {other} could be merged into" in alone
    none = act(app, SECRETARIAT, "question.merge", values={"metadata": a, "into": ""})
    assert none.reply.field_errors == {"into": "Choose the question to merge it into."}
    assert stored(engine) == before
    # accepting several is all or nothing
    assert (
        "There is no question Q-SB-2026-12-099"
        in say(app, SECRETARIAT, f"accept {a} Q-SB-2026-12-099").text
    )
    assert stored(engine) == before
    say(app, SECRETARIAT, f"accept {a}")
    assert f"{a} is already accepted." in say(app, SECRETARIAT, f"accept {a}").text
    say(app, SECRETARIAT, f"merge {b} into {a}")
    assert f"{b} was merged into {a}; use {a} instead." in say(app, SECRETARIAT, f"accept {b}").text
    # The Monmouthshire member reads Welsh.
    assert f"defnyddiwch {a} yn lle hynny" in say(app, MONMOUTHSHIRE, f"support {b}").text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("window", "Say open, close or extend"),
        ("window open", "Name the meeting"),
        (
            "window open strategic 2026-12-03",
            "are already open until Friday 27 November 2026, 5:00pm",
        ),
        ("window extend strategic 2026-12-03", "Say until when"),
        ("window extend strategic 2026-12-03 until 2026-11-26 12:00", "an extension must be later"),
        (
            "window extend strategic 2026-12-03 until 2026-12-04 12:00",
            "must close before the meeting starts",
        ),
        (
            "window extend strategic 2026-12-03 until 2026-11-30 25:00",
            "“25:00” is not a time of day",
        ),
        ("window extend strategic 2026-12-03 until soon", "“soon” is not a closing time"),
        ("window close strategic 2026-12-03 until 2026-11-30", "A window closes now"),
        ("window open business", "has no meeting coming up"),
    ],
)
def test_window_mistakes(
    app: ScrutinyApp, seed: Seed, engine: Engine, text: str, expected: str
) -> None:
    before = stored(engine)
    assert expected in say(app, SECRETARIAT, text).text
    assert stored(engine) == before


def test_window_open_needs_a_time_when_the_usual_one_has_passed(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    add_meeting(session, seed, "business-collaboration", datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    reply = say(app, SECRETARIAT, "window open business 2026-11-26")
    assert "usual closing time (Saturday 21 November 2026, 5:00pm) has passed" in reply.text
    opened = say(app, SECRETARIAT, "window open business 2026-11-26 until 2026-11-25 5pm")
    assert "open until Wednesday 25 November 2026, 5:00pm" in opened.text
    closed = say(app, SECRETARIAT, "window close business 2026-11-26")
    assert "are closed" in closed.text
    assert (
        "not open, so there is nothing to close"
        in say(app, SECRETARIAT, "window close business 2026-11-26").text
    )
    reopened = say(app, SECRETARIAT, "window extend business 2026-11-26 until 2026-11-25 18:00")
    assert "now close Wednesday 25 November 2026, 6:00pm" in reopened.text
    meeting = session.scalar(
        select(Meeting).where(Meeting.starts_at == datetime(2026, 11, 26, 10, 0, tzinfo=UTC))
    )
    assert meeting is not None
    session.refresh(meeting)
    assert meeting.questions_open == NOW


def test_forms_mark_the_field_at_fault(app: ScrutinyApp, seed: Seed, engine: Engine) -> None:
    meeting_id = seed.meetings[0].id
    empty = act(app, TORFAEN, "question.ask", values={"meeting": str(meeting_id), "question": "  "})
    assert set(empty.reply.field_errors) == {"question"}
    no_meeting = act(app, TORFAEN, "question.ask", values={"meeting": "", "question": "Why?"})
    assert set(no_meeting.reply.field_errors) == {"meeting"}
    bad_link = act(
        app,
        TORFAEN,
        "question.ask",
        values={"meeting": str(meeting_id), "question": "Why?", "link": "nonsense"},
    )
    assert set(bad_link.reply.field_errors) == {"link"}
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    no_reason = act(app, SECRETARIAT, "question.reject", values={"metadata": ref, "reason": ""})
    assert set(no_reason.reply.field_errors) == {"reason"}
    no_answer = act(app, SECRETARIAT, "question.answer", values={"metadata": ref, "answer": ""})
    assert set(no_answer.reply.field_errors) == {"answer"}
    assert question_count(engine) == 1


def test_forms_and_buttons_render_for_slack(app: ScrutinyApp, seed: Seed) -> None:
    form = say(app, TORFAEN, "ask", fmt="slack.json")
    assert form.reply.surface == "modal" and '"callback_id": "question.ask"' in form.bodies[0]
    draft = act(app, TORFAEN, "question.draft", value="Why is the network slow?", fmt="slack.json")
    assert '"initial_value": "Why is the network slow?"' in draft.bodies[0]
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    reject = act(app, SECRETARIAT, "question.reject_form", value=ref, fmt="slack.json")
    assert f'"private_metadata": "{ref}"' in reject.bodies[0]
    answer = say(app, SECRETARIAT, f"answer {ref}", fmt="slack.json")
    assert (
        answer.reply.surface == "modal" and '"callback_id": "question.answer"' in answer.bodies[0]
    )
    listing = say(app, POLICE, f"questions {SB}", fmt="slack.json")
    assert '"action_id": "question.support"' in listing.bodies[0]
    for command in ("moderate", f"pack {SB}", f"questions {SB}"):
        say(app, SECRETARIAT, command, fmt="slack.json")
    rejected = act(
        app,
        SECRETARIAT,
        "question.reject",
        values={"metadata": ref, "reason": "Covered by SB-2026-031."},
    )
    assert "will see the reason" in rejected.text
    form = act(app, SECRETARIAT, "question.answer_form", value=ref, fmt="slack.json")
    assert form.reply.surface == "modal"  # the form opens; the state is checked on submit
    refused = act(app, SECRETARIAT, "question.answer", values={"metadata": ref, "answer": "Yes."})
    assert "is rejected, so it cannot be answered" in refused.text


def test_not_a_member_of_the_bot(app: ScrutinyApp, seed: Seed, session: Session) -> None:
    member = session.scalar(select(Member).where(Member.slug == "tom-price"))
    assert member is not None
    member.active = False
    session.commit()
    assert (
        "I don't know you yet"
        in act(app, NEWPORT, "question.support", value="Q-SB-2026-12-001").text
    )


def test_meetings_taking_questions_are_listed_before_anyone_asks(
    app: ScrutinyApp, seed: Seed
) -> None:
    listing = say(app, TORFAEN, "questions").text
    assert listing.count("No questions yet.") == 2
    assert "Ask one: /scrutiny ask strategic 2026-12-03 YOUR QUESTION" in listing
    assert (
        "“tomorrow” is not a meeting"
        in say(app, TORFAEN, "questions strategic 2026-12-03 tomorrow").text
    )
