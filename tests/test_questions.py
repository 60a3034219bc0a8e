"""Joint scrutiny, the whole loop through the dispatcher and the interactive ids a platform uses:
a window opens and is announced, members of several partners submit, a near-duplicate is offered
and supported, the secretariat merges, accepts and rejects, the window closes, the pack is built
(Markdown, Word, CLI), answers are recorded by command and by import and reach each partner
channel exactly once, and an unanswered question is carried forward to the next meeting."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import Outcome, ScrutinyApp
from bot.cli import cli
from bot.domain import ChannelLanguage, Marking, Platform, QuestionState
from bot.i18n import Translator
from bot.imports import import_file
from bot.messages import Request
from bot.models import AuditEvent, Channel, Delivery, Meeting, Question, QuestionSupport
from bot.services.questions import pack as question_pack
from bot.services.questions import posts as question_posts
from tests.conftest import NOW
from tests.factories import Seed

SECRETARIAT = "U0SEC00001"
TORFAEN = "U0TOR00001"
POLICE = "U0POL00001"
MONMOUTHSHIRE = "U0MON00001"
NEWPORT = "U0NEW00001"


def _parsed(outcome: Outcome) -> Outcome:
    """The outcome, once every Slack body has been checked to be JSON."""
    if outcome.bodies and outcome.bodies[0].lstrip().startswith("{"):
        for body in outcome.bodies:
            json.loads(body)
    return outcome


def say(
    app: ScrutinyApp,
    user: str,
    text: str,
    *,
    now: datetime = NOW,
    fmt: str = "txt",
    channel: str | None = None,
) -> Outcome:
    """A slash command as `user`, in a direct message unless a channel is given."""
    request = Request(
        Platform.SLACK, user, text, channel_id=channel, is_direct=channel is None, now=now
    )
    return _parsed(app.dispatch(request, fmt))


def act(
    app: ScrutinyApp,
    user: str,
    action_id: str,
    *,
    value: str = "",
    values: dict[str, Any] | None = None,
    now: datetime = NOW,
    fmt: str = "txt",
) -> Outcome:
    """A button (value) or a form (values) as `user`."""
    request = Request(
        Platform.SLACK,
        user,
        value,
        is_direct=True,
        now=now,
        values=values if values is not None else {"value": value},
    )
    return _parsed(app.interact(action_id, request, fmt))


def question_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Question)) or 0


def add_meeting(
    session: Session, seed: Seed, board: str, starts: datetime, **extra: Any
) -> Meeting:
    meeting = Meeting(board=seed.boards[board], starts_at=starts, location="Online", **extra)
    session.add(meeting)
    session.commit()
    return meeting


def add_partner_channels(session: Session, seed: Seed) -> None:
    """Newport and Monmouthshire channels (the seed has Torfaen's and the police's)."""
    session.add_all(
        [
            Channel(
                slug="srs-newport",
                name="#srs-newport",
                platform=Platform.SLACK,
                external_id="C0NEW00001",
                partner=seed.partners["newport"],
                clearance=Marking.OFFICIAL,
            ),
            Channel(
                slug="srs-monmouthshire",
                name="#srs-monmouthshire",
                platform=Platform.SLACK,
                external_id="C0MON00001",
                partner=seed.partners["monmouthshire"],
                clearance=Marking.OFFICIAL,
                language=ChannelLanguage.CY_EN,
            ),
        ]
    )
    session.commit()


def keys(engine: Engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(Delivery.idempotency_key)
                .where(Delivery.idempotency_key.like(f"{prefix}%"))
                .order_by(Delivery.idempotency_key)
            )
        )


def ref_of(outcome: Outcome) -> str:
    """The question ref a confirmation names."""
    for word in outcome.text.replace(",", " ").split():
        if word.startswith("Q-"):
            return word.rstrip(".")
    raise AssertionError(f"no ref in {outcome.text!r}")


# -- the loop ---------------------------------------------------------------------------------
BUSINESS = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)
SPEC = "business 2026-12-17"


def test_the_joint_scrutiny_loop(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meeting = add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)

    # The secretariat opens the window until the board's usual time; announced once per channel.
    opened = say(app, SECRETARIAT, f"window open {SPEC}")
    assert "are open until Saturday 12 December 2026, 5:00pm" in opened.text
    assert "#srs-torfaen" in opened.text and "#srs-secretariat" not in opened.text
    announced = keys(app.engine, f"window-open:{meeting.id}:")
    assert announced == sorted(
        f"window-open:{meeting.id}:{c}"
        for c in ("srs-monmouthshire", "srs-newport", "srs-police", "srs-torfaen")
    )
    question_posts.run_due(
        session, app.renderer, now=NOW + timedelta(minutes=1), zone=app.settings.timezone
    )
    session.commit()
    assert keys(app.engine, f"window-open:{meeting.id}:") == announced

    # Members of three partners submit.
    q1 = ref_of(
        say(
            app,
            POLICE,
            f"ask {SPEC} How resilient is the network while switches are replaced (TP-002)? "
            "theme:delivery",
        )
    )
    q2 = ref_of(
        say(
            app,
            TORFAEN,
            f"ask {SPEC} When will the file shares move to SharePoint Online (TP-001)? "
            "theme:delivery",
        )
    )
    by_form = act(
        app,
        NEWPORT,
        "question.ask",
        values={
            "meeting": str(meeting.id),
            "question": "What savings will the data centre move bring to each partner?",
            "theme": "benefits-and-learning",
            "link": "SB-2026-031",
        },
    )
    q3 = ref_of(by_form)
    assert [q1, q2, q3] == ["Q-BC-2026-12-001", "Q-BC-2026-12-002", "Q-BC-2026-12-003"]
    assert "linked: TP-001" in say(app, TORFAEN, f"questions {SPEC}").text

    # A near-duplicate from a fourth partner is offered, not stored; she supports instead.
    before = question_count(engine)
    offered = say(
        app,
        MONMOUTHSHIRE,
        f"ask {SPEC} When will file shares move to SharePoint Online?",
        fmt="slack.json",
    )
    assert question_count(engine) == before
    blocks = json.loads(offered.bodies[0])["blocks"]
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert (buttons[0]["action_id"], buttons[0]["value"]) == ("question.support", q2)
    assert buttons[1]["action_id"] == "question.ask_anyway"
    supported = act(app, MONMOUTHSHIRE, "question.support", value=q2)
    # The Monmouthshire member reads Welsh: two partners ("2 bartner", soft mutation after dau).
    assert f"Rydych bellach yn cefnogi {q2}" in supported.text
    assert "2 bartner i gyd" in supported.text

    # A near-duplicate submitted anyway, then merged by the secretariat into the original.
    q4 = ref_of(
        say(app, POLICE, f"ask! {SPEC} When will the file shares be moved to SharePoint Online?")
    )
    q5 = ref_of(
        say(app, NEWPORT, f"ask {SPEC} Please send me a list of every laptop and who has it.")
    )
    merged = say(app, SECRETARIAT, f"merge {q4} into {q2}")
    assert f"Merged {q4} into {q2}." in merged.text and "1 supporter added" in merged.text
    accepted = say(app, SECRETARIAT, f"accept {q1} {q2} {q3}")
    assert "Accepted 3 questions" in accepted.text
    rejected = say(app, SECRETARIAT, f"reject {q5} Asset lists are in the monthly service report.")
    assert "Tom Price (Newport City Council) will see the reason" in rejected.text

    # The asker sees the reason; other partners do not see the rejected question at all.
    assert (
        "Reason: Asset lists are in the monthly service report."
        in say(app, NEWPORT, f"questions {SPEC}").text
    )
    assert q5 not in say(app, TORFAEN, f"questions {SPEC}").text
    listing = say(app, TORFAEN, f"questions {SPEC}").text
    assert f"Merged into {q2}" in listing and "merged" in listing

    # The window closes; changes are refused from then on.
    closed = say(app, SECRETARIAT, f"window close {SPEC}", now=NOW + timedelta(hours=1))
    assert "are closed" in closed.text
    late = say(app, TORFAEN, f"withdraw {q2}", now=NOW + timedelta(hours=2))
    assert "closed" in late.text and "too late" in late.text
    after_close = NOW + timedelta(hours=2)
    report = question_posts.run_due(
        session, app.renderer, now=after_close, zone=app.settings.timezone
    )
    session.commit()
    assert report.packs == 1
    pack_post = session.scalar(select(Delivery).where(Delivery.kind == question_posts.KIND_PACK))
    assert pack_post is not None
    assert [f["filename"] for f in pack_post.payload["files"]] == [
        "questions-business-collaboration-2026-12-17.docx",
        "questions-business-collaboration-2026-12-17.md",
    ]

    # The pack: accepted questions by theme, most partners first, then oldest.
    chat_pack = say(app, SECRETARIAT, f"pack {SPEC}", now=after_close, fmt="slack.json")
    assert "1. *Q-BC-2026-12-002*" in chat_pack.bodies[0]
    session.expire_all()
    pack = question_pack.build_pack(
        session,
        session.get(Meeting, meeting.id),  # type: ignore[arg-type]
        question_pack.secretariat_audience(session),
        now=after_close,
        zone=app.settings.timezone,
    )
    assert [q.ref for q in pack.questions] == [q2, q1, q3]
    assert [g.theme for g in pack.groups] == ["delivery-and-resilience", "benefits-and-learning"]
    assert [p.slug for p in pack.questions[0].askers] == ["torfaen", "gwent-police"]
    assert [p.slug for p in pack.questions[0].supporters] == ["monmouthshire"]
    t = Translator("en", app.settings.timezone)
    markdown = question_pack.to_markdown(pack, t)
    assert markdown.index(q2) < markdown.index(q1) < markdown.index(q3)
    assert "## Delivery and resilience" in markdown and "Linked: SB\\-2026\\-031" not in markdown
    assert "Linked: SB-2026-031" in markdown
    document = docx.Document(io.BytesIO(question_pack.to_docx(pack, t)))
    numbered = [p.text for p in document.paragraphs if p.text[:2] in ("1.", "2.", "3.")]
    assert [line.split()[1] for line in numbered] == [q2, q1, q3]
    assert document.sections[0].header.paragraphs[0].text == "OFFICIAL"

    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    out = tmp_path / "pack.docx"
    result = CliRunner().invoke(
        cli,
        ["questions", "pack", "--meeting", str(meeting.id), "--format", "docx", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    from_cli = docx.Document(str(out))
    assert [p.text.split()[1] for p in from_cli.paragraphs if p.text[:2] in ("1.", "2.", "3.")] == [
        q2,
        q1,
        q3,
    ]
    listed = CliRunner().invoke(cli, ["questions", "list", "--meeting", SPEC])
    assert listed.exit_code == 0 and q5 in listed.stdout and "rejected" in listed.stdout

    # Answers: by command (to the asker's and every supporting partner's channel) ...
    answered = say(
        app,
        SECRETARIAT,
        f'answer {q2} by="Head of SRS" The migration finishes in March 2027.',
        now=after_close,
    )
    assert "#srs-monmouthshire, #srs-police, #srs-torfaen" in answered.text
    # ... and by import, posted by the scheduler's sweep.
    csv = tmp_path / "answers.csv"
    csv.write_text(
        f"question_ref,answer,answered_by\n{q3},About £400k a year across partners.,Finance lead\n",
        encoding="utf-8",
    )
    import_file(session, "answers", csv, actor="cli:test")
    session.commit()
    for _ in range(2):
        question_posts.run_due(session, app.renderer, now=after_close, zone=app.settings.timezone)
        session.commit()
    again = say(
        app, SECRETARIAT, f"answer {q2} The migration finishes in April 2027.", now=after_close
    )
    assert "a corrected answer is not posted again" in again.text
    posted = keys(app.engine, "answer:")
    assert Counter(posted) == Counter(
        [
            f"answer:{q2}:srs-monmouthshire",
            f"answer:{q2}:srs-police",
            f"answer:{q2}:srs-torfaen",
            f"answer:{q3}:srs-newport",
        ]
    )
    bilingual = session.scalar(
        select(Delivery).where(Delivery.idempotency_key == f"answer:{q2}:srs-monmouthshire")
    )
    assert bilingual is not None
    assert bilingual.payload["languages"] == ["cy", "en"]
    assert "When will the file shares move to SharePoint Online" in bilingual.payload["text"]
    assert "The migration finishes in March 2027." in bilingual.payload["text"]

    # After the meeting, the unanswered accepted question moves to the board's next meeting.
    following = add_meeting(
        session, seed, "business-collaboration", datetime(2027, 2, 18, 10, 0, tzinfo=UTC)
    )
    after_meeting = BUSINESS + timedelta(hours=4)
    report = question_posts.run_due(
        session, app.renderer, now=after_meeting, zone=app.settings.timezone
    )
    session.commit()
    assert report.carried == 1
    carried = say(app, TORFAEN, "questions business 2027-02-18", now=after_meeting).text
    assert "Q-BC-2027-02-001" in carried
    assert f"Carried forward from {q1}: not answered at the previous meeting." in carried
    old = say(app, POLICE, f"questions {SPEC}", now=BUSINESS - timedelta(days=1)).text
    assert "carried forward to the next one as Q-BC-2027-02-001" in old
    session.expire_all()
    copy = session.scalar(select(Question).where(Question.ref == "Q-BC-2027-02-001"))
    assert copy is not None and copy.meeting_id == following.id
    assert copy.state is QuestionState.ACCEPTED
    original = session.scalar(select(Question).where(Question.ref == q1))
    assert original is not None and original.state is QuestionState.CARRIED_FORWARD
    assert copy.carried_from_id == original.id and copy.text == original.text
    verbs = Counter(session.scalars(select(AuditEvent.verb).where(AuditEvent.entity == "question")))
    for verb in (
        "question.submit",
        "question.support",
        "question.merge",
        "question.accept",
        "question.reject",
        "question.answer",
        "question.carry-forward",
    ):
        assert verbs[verb] >= 1, verb
    assert (
        question_posts.run_due(
            session, app.renderer, now=after_meeting, zone=app.settings.timezone
        ).carried
        == 0
    )
    # Answered at the next meeting, the post says where the question came from.
    say(
        app,
        SECRETARIAT,
        "answer Q-BC-2027-02-001 Resilience is covered by dual links.",
        now=after_meeting,
    )
    post = session.scalar(
        select(Delivery).where(Delivery.idempotency_key == "answer:Q-BC-2027-02-001:srs-police")
    )
    assert post is not None
    assert (
        f"Carried forward from {q1}: not answered at the previous meeting." in post.payload["text"]
    )


def test_supporters_count_once_per_member_and_merge_keeps_every_asker(
    app: ScrutinyApp, seed: Seed, session: Session, engine: Engine
) -> None:
    extended = say(app, SECRETARIAT, "window extend strategic 2026-12-03 until 2026-11-30 17:00")
    assert "now close Monday 30 November 2026, 5:00pm" in extended.text
    a = ref_of(say(app, TORFAEN, "ask strategic 2026-12-03 Is the data centre move on budget?"))
    b = ref_of(say(app, POLICE, "ask strategic 2026-12-03 What is the police data retention plan?"))
    say(app, MONMOUTHSHIRE, f"support {a}")
    say(app, NEWPORT, f"support {a}")
    say(app, NEWPORT, f"support {b}")
    say(app, SECRETARIAT, f"merge {a} into {b}")
    with engine.connect() as conn:
        supporters = conn.execute(
            select(QuestionSupport.member_id, QuestionSupport.partner_id)
            .join(Question, Question.id == QuestionSupport.question_id)
            .where(Question.ref == b)
        ).all()
    members = [m for m, _p in supporters]
    assert len(members) == len(set(members)) == 3  # Torfaen's asker, Monmouthshire, Newport (once)
    view = say(app, POLICE, "questions strategic 2026-12-03").text
    assert "asked by Gwent Police, Torfaen County Borough Council" in view
