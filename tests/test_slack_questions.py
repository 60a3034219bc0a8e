"""Joint-scrutiny questions from Slack, through signed requests to our real endpoint: the message
shortcut, every button and form the question handlers define, and the reminder form."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot.app import ScrutinyApp
from bot.cli import cli
from bot.domain import DeliveryState, Marking, QuestionState
from bot.models import Delivery, Member, Question, QuestionSupport, Reminder
from bot.platforms.slack.app import SlackPlatform
from bot.scheduler import run_schedules, send_due
from tests import test_slack_http
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.slack_api import Call, SlackSender
from tests.fakes.slack_limits import LimitedSlackApi
from tests.outbox_support import sender_for
from tests.test_questions import add_meeting, add_partner_channels
from tests.test_slack_http import buttons, database_held, texts

# The Slack app served on 127.0.0.1 and its sender, as in test_slack_http, over `fake` below.
slack_app, platform, slack, db = (
    test_slack_http.slack_app,
    test_slack_http.platform,
    test_slack_http.slack,
    test_slack_http.db,
)
SECRETARY, TORFAEN, POLICE, MONMOUTHSHIRE = "U0SEC00001", "U0TOR00001", "U0POL00001", "U0MON00001"
TORFAEN_CHANNEL, POLICE_CHANNEL, SECRETARIAT_CHANNEL = "C0TOR00001", "C0POL00001", "C0SEC00001"
SB = "strategic 2026-12-03"
CHANNEL_NAMES = {
    TORFAEN_CHANNEL: "srs-torfaen",
    POLICE_CHANNEL: "srs-police",
    SECRETARIAT_CHANNEL: "srs-secretariat",
}


@pytest.fixture
def fake() -> Iterator[LimitedSlackApi]:
    """The fake with file uploads and message metadata: the outbox posts to it too (the
    fixtures imported from test_slack_http use this one)."""
    api = LimitedSlackApi()
    with api:
        yield api


# -- playing Slack ----------------------------------------------------------------------------
def command(slack: SlackSender, user: str, text: str, channel: str = TORFAEN_CHANNEL) -> Call:
    """`/scrutiny text` in a channel; the reply posted to its response_url."""
    before = len(slack.fake.calls_to("response_url"))
    response = slack.command(user, text, channel_id=channel, channel_name=CHANNEL_NAMES[channel])
    assert response.status_code == 200
    return slack.fake.wait_for("response_url", before + 1)[-1]


def click(
    slack: SlackSender, user: str, action_id: str, value: str, channel: str = TORFAEN_CHANNEL
) -> Call:
    """A button in an ephemeral reply; the reply posted to its response_url."""
    before = len(slack.fake.calls_to("response_url"))
    assert slack.button(user, action_id, value, channel_id=channel).status_code == 200
    return slack.fake.wait_for("response_url", before + 1)[-1]


def opened(slack: SlackSender, count: int) -> dict[str, Any]:
    """The view of the `count`th views.open call."""
    view: dict[str, Any] = slack.fake.wait_for("views.open", count)[count - 1].body["view"]
    return view


def submitted(slack: SlackSender, user: str, view: dict[str, Any], **values: Any) -> Any:
    """Submit a view; the ack's JSON (field errors) or None when the form closes."""
    response = slack.submit(user, view, values)
    assert response.status_code == 200
    return response.json() if response.content not in (b"", b"{}") else None


def typed(value: str | None) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def chosen(value: str | None) -> dict[str, Any]:
    option = {"value": value, "text": {"type": "plain_text", "text": value}} if value else None
    return {"type": "static_select", "selected_option": option}


def shortcut(slack: SlackSender, user: str, channel: str, text: str) -> None:
    """The message shortcut "Ask as a scrutiny question" on a message in `channel`."""
    payload = {
        "type": "message_action",
        "callback_id": "question.draft",
        "trigger_id": "trigger-shortcut",
        "user": {"id": user},
        "channel": {"id": channel, "name": CHANNEL_NAMES[channel]},
        "message_ts": "1700000000.000300",
        "message": {"type": "message", "user": POLICE, "ts": "1700000000.000300", "text": text},
        "response_url": slack.fake.response_url("shortcut"),
    }
    assert slack.interaction(payload).status_code == 200


def ref_in(call: Call) -> str:
    for word in texts(call.body).replace("*", " ").replace(",", " ").split():
        if word.startswith("Q-"):
            return word.rstrip(".:")
    raise AssertionError(f"no question ref in {texts(call.body)!r}")


def state_of(db: Session, ref: str) -> QuestionState:
    db.expire_all()
    question = db.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    return question.state


# -- the tests --------------------------------------------------------------------------------
def test_message_shortcut_opens_the_ask_form_filled_with_the_message(
    slack: SlackSender, fake: LimitedSlackApi, seed: Seed, db: Session
) -> None:
    words = "When will the file shares move to SharePoint Online?"
    shortcut(slack, TORFAEN, TORFAEN_CHANNEL, words)
    view = opened(slack, 1)
    assert view["callback_id"] == "question.ask"
    assert fake.calls_to("views.open")[0].body["trigger_id"] == "trigger-shortcut"
    [question_input] = [b for b in view["blocks"] if b.get("block_id") == "question"]
    assert question_input["element"]["initial_value"] == words
    meeting = str(seed.meetings[0].id)

    errors = submitted(slack, TORFAEN, view, meeting=chosen(meeting), question=typed("  "))
    assert errors["response_action"] == "errors" and set(errors["errors"]) == {"question"}
    assert db.scalar(select(Question.id)) is None

    assert submitted(slack, TORFAEN, view, meeting=chosen(meeting), question=typed(words)) is None
    confirmation = fake.wait_for("chat.postEphemeral")[0]
    assert confirmation.body["channel"] == TORFAEN_CHANNEL
    assert ref_in(confirmation) == "Q-SB-2026-12-001"
    assert state_of(db, "Q-SB-2026-12-001") is QuestionState.SUBMITTED


def test_a_form_checked_slower_than_slacks_ack_window_closes_and_its_outcome_comes_after(
    slack: SlackSender, fake: LimitedSlackApi, platform: SlackPlatform, seed: Seed, db: Session
) -> None:
    shortcut(slack, TORFAEN, TORFAEN_CHANNEL, "Draft")
    view = opened(slack, 1)
    meeting = chosen(str(seed.meetings[0].id))
    blank = submitted(slack, TORFAEN, view, meeting=meeting, question=typed("  "))
    [refusal] = blank["errors"].values()
    words = "When will the file shares move to SharePoint Online?"
    # Another writer holds the database past Bolt's 3 seconds (on PostgreSQL the members
    # table, which every check reads first): without the budget the ack waits for the check,
    # and Bolt answers 404 (Slack: "We had some trouble connecting").
    with database_held(platform.app.engine, "members"):
        assert submitted(slack, TORFAEN, view, meeting=meeting, question=typed(words)) is None
        assert submitted(slack, TORFAEN, view, meeting=meeting, question=typed("  ")) is None
        assert db.scalar(select(Question.id)) is None
    told = fake.wait_for("chat.postEphemeral", 2)
    assert {call.body["user"] for call in told} == {TORFAEN}
    [stored] = [call for call in told if "Q-SB-" in texts(call.body)]
    assert ref_in(stored) == "Q-SB-2026-12-001"
    assert state_of(db, "Q-SB-2026-12-001") is QuestionState.SUBMITTED
    # The late field error is told as a message, in the words the form would have shown.
    [refused] = [call for call in told if call is not stored]
    assert refusal in texts(refused.body)


def test_every_question_button_and_form_works_from_slack(
    slack: SlackSender, fake: LimitedSlackApi, seed: Seed, db: Session
) -> None:
    first = ref_in(command(slack, TORFAEN, f"ask {SB} When will the file shares move online?"))

    # A near-duplicate: offered the existing question; supported with the button.
    offered = command(
        slack, POLICE, f"ask {SB} When will file shares move online?", channel=POLICE_CHANNEL
    )
    [support] = buttons(offered.body, "question.support")
    [anyway] = buttons(offered.body, "question.ask_anyway")
    assert support["value"] == first
    supported = click(slack, POLICE, "question.support", support["value"], POLICE_CHANNEL)
    assert f"You now support {first}" in texts(supported.body)
    # ... and "submit mine anyway" stores it as a question of its own.
    second = ref_in(click(slack, POLICE, "question.ask_anyway", anyway["value"], POLICE_CHANNEL))
    assert second == "Q-SB-2026-12-002"

    # The window announcement's button opens the form for its meeting.
    click_open = slack.button(TORFAEN, "question.ask_form", str(seed.meetings[0].id))
    assert click_open.status_code == 200
    ask_form = opened(slack, 1)
    [meeting_input] = [b for b in ask_form["blocks"] if b.get("block_id") == "meeting"]
    assert meeting_input["element"]["initial_option"]["value"] == str(seed.meetings[0].id)

    # Moderation from the secretariat's list.
    moderating = command(slack, SECRETARY, f"moderate {SB}", channel=SECRETARIAT_CHANNEL)
    assert {b["value"] for b in buttons(moderating.body, "question.accept")} == {first, second}
    accepted = click(slack, SECRETARY, "question.accept", first, SECRETARIAT_CHANNEL)
    assert "Accepted" in texts(accepted.body)
    assert state_of(db, first) is QuestionState.ACCEPTED
    # Accepting is the secretariat's: a member's forged click changes nothing.
    refused = click(slack, TORFAEN, "question.accept", second)
    assert "Only members with the role secretariat" in texts(refused.body)

    slack.button(SECRETARY, "question.reject_form", second, channel_id=SECRETARIAT_CHANNEL)
    reject_form = opened(slack, 2)
    assert reject_form["callback_id"] == "question.reject"
    errors = submitted(slack, SECRETARY, reject_form, reason=typed(""))
    assert set(errors["errors"]) == {"reason"}
    assert state_of(db, second) is QuestionState.SUBMITTED
    reason = "Asked already as " + first
    assert submitted(slack, SECRETARY, reject_form, reason=typed(reason)) is None
    rejected = fake.wait_for("chat.postEphemeral")[-1]
    assert second in texts(rejected.body)
    assert state_of(db, second) is QuestionState.REJECTED

    slack.button(SECRETARY, "question.answer_form", first, channel_id=SECRETARIAT_CHANNEL)
    answer_form = opened(slack, 3)
    assert answer_form["callback_id"] == "question.answer"
    errors = submitted(slack, SECRETARY, answer_form, answer=typed(" "), answered_by=typed("Ceri"))
    assert set(errors["errors"]) == {"answer"}
    answer = "The move finishes in March 2027."
    assert submitted(slack, SECRETARY, answer_form, answer=typed(answer)) is None
    fake.wait_until(lambda: len(fake.calls_to("chat.postEphemeral")) >= 2)
    assert state_of(db, first) is QuestionState.ANSWERED
    posts = set(
        db.scalars(select(Delivery.idempotency_key).where(Delivery.kind == "question-answer"))
    )
    assert posts == {f"answer:{first}:srs-police", f"answer:{first}:srs-torfaen"}


def supporters(db: Session, ref: str) -> set[str]:
    """Slack ids of the members supporting a question."""
    db.expire_all()
    return set(
        db.scalars(
            select(Member.slack_user_id)
            .join(QuestionSupport, QuestionSupport.member_id == Member.id)
            .join(Question, Question.id == QuestionSupport.question_id)
            .where(Question.ref == ref)
        )
    )


def test_the_merge_button_opens_a_form_of_the_meetings_other_open_questions_and_merges(
    slack: SlackSender, fake: LimitedSlackApi, seed: Seed, session: Session, db: Session
) -> None:
    target = ref_in(command(slack, TORFAEN, f"ask {SB} When will the file shares move online?"))
    source = ref_in(
        command(slack, POLICE, f"ask {SB} Is the police CAD contract renewed?", POLICE_CHANNEL)
    )
    command(slack, SECRETARY, f"support {source}", channel=SECRETARIAT_CHANNEL)
    other = ref_in(command(slack, TORFAEN, f"ask {SB} How many laptops are past warranty?"))
    gone = ref_in(command(slack, TORFAEN, f"ask {SB} Who audits the firewall rules each year?"))
    command(slack, TORFAEN, f"withdraw {gone}")
    hidden = ref_in(command(slack, TORFAEN, f"ask {SB} What does the SIEM licence renewal cost?"))
    withheld = db.scalar(select(Question).where(Question.ref == hidden))
    assert withheld is not None
    withheld.restricted_to = ["police"]  # cleared for the police alone: not for the secretariat
    db.commit()
    add_meeting(session, seed, "business-collaboration", BUSINESS)
    command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    elsewhere = ref_in(command(slack, TORFAEN, f"ask {SPEC} Are invoices paid within 30 days?"))
    assert elsewhere.startswith("Q-BC-")

    # Each question awaiting moderation has a merge button beside accept and reject.
    moderating = command(slack, SECRETARY, f"moderate {SB}", channel=SECRETARIAT_CHANNEL)
    merge_buttons = {b["value"] for b in buttons(moderating.body, "question.merge_form")}
    assert merge_buttons == {target, source, other}
    # The button is the secretariat's: a member's forged click opens nothing.
    refused = click(slack, TORFAEN, "question.merge_form", source)
    assert "Only members with the role secretariat" in texts(refused.body)
    assert fake.calls_to("views.open") == []

    slack.button(SECRETARY, "question.merge_form", source, channel_id=SECRETARIAT_CHANNEL)
    form = opened(slack, 1)
    assert form["callback_id"] == "question.merge"
    assert json.loads(form["private_metadata"])["data"] == source
    [into] = [b for b in form["blocks"] if b.get("block_id") == "into"]
    # The other open questions of the meeting the secretariat may see, and no others.
    assert [o["value"] for o in into["element"]["options"]] == [target, other]

    assert set(submitted(slack, SECRETARY, form, into=chosen(None))["errors"]) == {"into"}
    itself = submitted(slack, SECRETARY, form, into=chosen(source))["errors"]
    assert "cannot be merged into itself" in itself["into"]
    withdrawn = submitted(slack, SECRETARY, form, into=chosen(gone))["errors"]
    assert f"{gone} is withdrawn" in withdrawn["into"]
    # A forged submission by a member changes nothing either.
    submitted(slack, TORFAEN, form, into=chosen(target))
    assert state_of(db, source) is QuestionState.SUBMITTED

    assert submitted(slack, SECRETARY, form, into=chosen(target)) is None

    # Earlier private replies (the refusals above) may still be arriving: wait for this one.
    def merged_told() -> bool:
        return any(
            c.method == "chat.postEphemeral"
            and c.body.get("user") == SECRETARY
            and source in texts(c.body)
            and target in texts(c.body)
            for c in fake.calls
        )

    fake.wait_until(merged_told)
    assert state_of(db, source) is QuestionState.MERGED
    # As `merge REF into REF` does: its asker and supporters now support the target.
    assert supporters(db, target) == {POLICE, SECRETARY}


def test_remind_with_no_words_opens_the_reminder_form(
    slack: SlackSender, fake: LimitedSlackApi, db: Session
) -> None:
    response = slack.command(
        SECRETARY, "remind", channel_id=SECRETARIAT_CHANNEL, channel_name="srs-secretariat"
    )
    assert response.status_code == 200
    form = opened(slack, 1)
    assert form["callback_id"] == "remind.add"
    values = {"channel": chosen("srs-torfaen"), "text": typed("Papers for F&G due")}
    errors = submitted(slack, SECRETARY, form, **values, when=typed("on 2020-01-01 09:00"))
    assert set(errors["errors"]) == {"when"}
    assert db.scalar(select(Reminder.id)) is None
    assert submitted(slack, SECRETARY, form, **values, when=typed("every monday 9am")) is None
    confirmation = fake.wait_for("chat.postEphemeral")[0]
    assert "#srs-torfaen" in texts(confirmation.body)
    db.expire_all()
    reminder = db.scalar(select(Reminder))
    assert reminder is not None and reminder.text == "Papers for F&G due"


# -- issue 5's loop, from Slack -----------------------------------------------------------------
NEWPORT, NEWPORT_CHANNEL, MONMOUTHSHIRE_CHANNEL = "U0NEW00001", "C0NEW00001", "C0MON00001"
CHANNEL_NAMES.update({NEWPORT_CHANNEL: "srs-newport", MONMOUTHSHIRE_CHANNEL: "srs-monmouthshire"})
BUSINESS = datetime(2026, 12, 17, 10, 0, tzinfo=UTC)
SPEC = "business 2026-12-17"


def posts_by_key(fake: LimitedSlackApi, prefix: str) -> Counter[tuple[str, str]]:
    """Accepted chat.postMessage calls whose delivery key starts with `prefix`, by
    (channel, key)."""
    found: Counter[tuple[str, str]] = Counter()
    for call in fake.calls_to("chat.postMessage"):
        key = str(((call.body.get("metadata") or {}).get("event_payload") or {}).get("key", ""))
        if call.ok and key.startswith(prefix):
            found[(str(call.body["channel"]), key)] += 1
    return found


def worker(app: ScrutinyApp, fake: LimitedSlackApi, now: datetime) -> None:
    """One pass of the worker: the scheduler's jobs due at `now`, then the outbox."""
    run_schedules(app, now)
    send_due(app, sender=sender_for(app, fake))


def test_the_joint_scrutiny_loop_from_slack(
    slack: SlackSender,
    fake: LimitedSlackApi,
    slack_app: ScrutinyApp,
    seed: Seed,
    session: Session,
    db: Session,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    meeting = add_meeting(session, seed, "business-collaboration", BUSINESS)
    add_partner_channels(session, seed)

    # The window opens and is announced in each partner channel, once.
    opened_reply = command(slack, SECRETARY, f"window open {SPEC}", channel=SECRETARIAT_CHANNEL)
    assert "are open until" in texts(opened_reply.body)
    worker(slack_app, fake, NOW)
    worker(slack_app, fake, NOW + timedelta(minutes=1))
    partner_channels = (TORFAEN_CHANNEL, POLICE_CHANNEL, NEWPORT_CHANNEL, MONMOUTHSHIRE_CHANNEL)
    assert posts_by_key(fake, f"window-open:{meeting.id}:") == Counter(
        {(c, f"window-open:{meeting.id}:{CHANNEL_NAMES[c]}"): 1 for c in partner_channels}
    )

    # Members of three partners submit.
    q1 = ref_in(
        command(slack, POLICE, f"ask {SPEC} How resilient is the network while switches are "
                "replaced? theme:delivery", channel=POLICE_CHANNEL)
    )  # fmt: skip
    q2 = ref_in(
        command(slack, TORFAEN, f"ask {SPEC} When will the file shares move to SharePoint "
                "Online? theme:delivery")
    )  # fmt: skip
    q3 = ref_in(
        command(slack, NEWPORT, f"ask {SPEC} What savings will the data centre move bring to "
                "each partner? theme:benefits", channel=NEWPORT_CHANNEL)
    )  # fmt: skip
    assert [q1, q2, q3] == ["Q-BC-2026-12-001", "Q-BC-2026-12-002", "Q-BC-2026-12-003"]

    # A near-duplicate is offered, not stored, and supported with the button.
    offered = command(
        slack,
        MONMOUTHSHIRE,
        f"ask {SPEC} When will file shares move to SharePoint Online?",
        channel=MONMOUTHSHIRE_CHANNEL,
    )
    [support] = buttons(offered.body, "question.support")
    assert support["value"] == q2
    before = len(db.scalars(select(QuestionSupport.id)).all())
    supported = click(slack, MONMOUTHSHIRE, "question.support", q2, MONMOUTHSHIRE_CHANNEL)
    assert q2 in texts(supported.body)  # in Welsh: this member reads Welsh first
    assert len(db.scalars(select(QuestionSupport.id)).all()) == before + 1

    # The secretariat merges one into another, rejects one and accepts the rest.
    q4 = ref_in(
        command(slack, POLICE, f"ask! {SPEC} When will the file shares be moved to SharePoint "
                "Online?", channel=POLICE_CHANNEL)
    )  # fmt: skip
    q5 = ref_in(
        command(slack, NEWPORT, f"ask {SPEC} Please list every laptop and who has it.",
                channel=NEWPORT_CHANNEL)
    )  # fmt: skip
    merged = command(slack, SECRETARY, f"merge {q4} into {q2}", channel=SECRETARIAT_CHANNEL)
    assert f"Merged {q4} into {q2}." in texts(merged.body)
    slack.button(SECRETARY, "question.reject_form", q5, channel_id=SECRETARIAT_CHANNEL)
    reject_form = opened(slack, 1)
    reason = typed("Asset lists are in the monthly service report.")
    assert submitted(slack, SECRETARY, reject_form, reason=reason) is None
    for ref in (q1, q2, q3):
        click(slack, SECRETARY, "question.accept", ref, SECRETARIAT_CHANNEL)
    assert [state_of(db, q) for q in (q1, q2, q3, q4, q5)] == [
        QuestionState.ACCEPTED,
        QuestionState.ACCEPTED,
        QuestionState.ACCEPTED,
        QuestionState.MERGED,
        QuestionState.REJECTED,
    ]

    # The window closes; the worker uploads the pack to the secretariat channel.
    closed = command(slack, SECRETARY, f"window close {SPEC}", channel=SECRETARIAT_CHANNEL)
    assert "are closed" in texts(closed.body)
    worker(slack_app, fake, NOW + timedelta(hours=1))
    pack_key = f"question-pack:{meeting.id}:srs-secretariat:"
    assert list(posts_by_key(fake, pack_key).values()) == [1]
    [pack_message] = [
        m for m in fake.messages_in(SECRETARIAT_CHANNEL) if (m.key or "").startswith(pack_key)
    ]
    uploads = [u for u in fake.uploads_in(SECRETARIAT_CHANNEL) if u.thread_ts == pack_message.ts]
    assert [u.name for u in uploads] == [
        "questions-business-collaboration-2026-12-17.docx",
        "questions-business-collaboration-2026-12-17.md",
    ]
    document = docx.Document(io.BytesIO(uploads[0].content))
    numbered = [p.text.split()[1] for p in document.paragraphs if p.text[:2] in ("1.", "2.", "3.")]
    assert numbered == [q2, q1, q3]  # most partners first, then by time; themes in order

    # Answers imported through the CLI reach each partner channel exactly once.
    monkeypatch.setenv("DATABASE_URL", slack_app.settings.database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    csv = tmp_path / "answers.csv"
    csv.write_text(
        "question_ref,answer,answered_by\n"
        f"{q2},The migration finishes in March 2027.,Head of SRS\n"
        f"{q3},About £400k a year across partners.,Finance lead\n",
        encoding="utf-8",
    )
    for _ in range(2):
        result = CliRunner().invoke(cli, ["import", "answers", str(csv)])
        assert result.exit_code == 0, result.output
        worker(slack_app, fake, NOW + timedelta(hours=2))
    expected = {
        q2: (TORFAEN_CHANNEL, POLICE_CHANNEL, MONMOUTHSHIRE_CHANNEL),
        q3: (NEWPORT_CHANNEL,),
    }
    assert posts_by_key(fake, "answer:") == Counter(
        {
            (channel, f"answer:{ref}:{CHANNEL_NAMES[channel]}"): 1
            for ref, channels in expected.items()
            for channel in channels
        }
    )
    [answered] = [
        m
        for m in fake.messages_in(MONMOUTHSHIRE_CHANNEL)
        if m.key == f"answer:{q2}:srs-monmouthshire"
    ]
    assert "The migration finishes in March 2027." in answered.text

    # After the meeting the unanswered question moves to the board's next meeting.
    add_meeting(session, seed, "business-collaboration", datetime(2027, 2, 18, 10, 0, tzinfo=UTC))
    worker(slack_app, fake, BUSINESS + timedelta(hours=4))
    assert state_of(db, q1) is QuestionState.CARRIED_FORWARD
    listing = texts(command(slack, POLICE, "questions business 2027-02-18", POLICE_CHANNEL).body)
    assert "Q-BC-2027-02-001" in listing
    assert f"Carried forward from {q1}" in listing
    assert fake.duplicates() == {}


# -- small fixes: `decision new`, the "Mark updated" button, visibility at send time ---------
def test_decision_new_opens_the_record_decision_form_for_the_secretariat_only(
    slack: SlackSender, fake: LimitedSlackApi
) -> None:
    response = slack.command(
        SECRETARY, "decision new", channel_id=SECRETARIAT_CHANNEL, channel_name="srs-secretariat"
    )
    assert response.status_code == 200
    assert opened(slack, 1)["callback_id"] == "register.record_decision"
    refusal = command(slack, TORFAEN, "decision new")
    assert "Only members with the role secretariat" in texts(refusal.body)
    assert len(fake.calls_to("views.open")) == 1


def test_action_detail_offers_mark_updated_to_the_secretariat_only(slack: SlackSender) -> None:
    shown = command(slack, SECRETARY, "action TP-001", channel=SECRETARIAT_CHANNEL)
    [button] = buttons(shown.body, "register.update_action_form")
    assert button["value"] == "TP-001"
    member_view = command(slack, TORFAEN, "action TP-001")
    assert "Migrate file shares" in texts(member_view.body)
    assert buttons(member_view.body, "register.update_action_form") == []


def test_an_answer_post_is_cancelled_if_its_question_may_no_longer_be_shown_there(
    slack: SlackSender, fake: LimitedSlackApi, slack_app: ScrutinyApp, db: Session
) -> None:
    asked = ref_in(command(slack, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    click(slack, SECRETARY, "question.accept", asked, SECRETARIAT_CHANNEL)
    command(slack, SECRETARY, f"answer {asked} Yes, within 2%.", channel=SECRETARIAT_CHANNEL)
    db.expire_all()
    question = db.scalar(select(Question).where(Question.ref == asked))
    assert question is not None
    # Reclassified after the post was queued: #srs-torfaen is not cleared for it any more.
    question.marking = Marking.OFFICIAL_SENSITIVE
    question.exempt_paragraph = 14
    db.commit()
    report = send_due(slack_app, sender=sender_for(slack_app, fake))
    assert report.cancelled == 1 and report.sent == 0
    assert posts_by_key(fake, "answer:") == Counter()
    db.expire_all()
    delivery = db.scalar(select(Delivery).where(Delivery.kind == "question-answer"))
    assert delivery is not None and delivery.state is DeliveryState.CANCELLED
