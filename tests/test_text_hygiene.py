"""Text hygiene at every door (bot/text_input.py): hidden characters cleaned or refused the
same way in chat, forms, the console, the CLI and imports; bounded numbers; terminal-safe
output; links; ownership before state; and a Word pack that never fails on stored text."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import date, timedelta
from pathlib import Path

import docx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import String, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from bot import text_input
from bot.app import ScrutinyApp
from bot.cli import TerminalSafeFormatter, cli
from bot.domain import Marking, Platform, QuestionState
from bot.i18n import Translator
from bot.imports import ImportRejected, import_file
from bot.messages import Request
from bot.models import Action, Channel, Decision, Delivery, Meeting, Question, Reminder
from bot.platforms.console.app import run_console
from bot.rendering.teams_cards import text_card
from bot.services import reminders
from bot.services.questions import pack as question_pack
from bot.services.questions.core import record_answer
from bot.services.questions.windows import QuestionError
from tests.conftest import NOW
from tests.factories import Seed
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import SlackSender
from tests.fakes.token_issuer import FakeTokenIssuer
from tests.support.cards import assert_valid_card
from tests.support.teams import TEAM, THREAD, connector_messenger, send
from tests.test_imports import ACTION_HEADER, DECISION_HEADER, action, write_csv
from tests.test_questions import NEWPORT, POLICE, SECRETARIAT, TORFAEN, act, ref_of, say
from tests.test_slack_questions import (
    chosen,
    db,
    fake,
    opened,
    platform,
    shortcut,
    slack,
    slack_app,
    submitted,
    typed,
)

SB = "strategic 2026-12-03"
HIDDEN = ("\x00", "\x1b[2J", "\x07", "\x7f", "\x9b", "\u202e", "\u2066")
"""One of each refused class: NUL, an ESC sequence, BEL, DEL, C1 CSI, a bidi override, an
isolate."""


# -- the one function -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("Shift\x0bEnter", "Shift\nEnter"),
        ("page\x0cbreak", "page\nbreak"),
        ("windows\r\nmac\rnel\x85ls\u2028ps\u2029end", "windows\nmac\nnel\nls\nps\nend"),
        ("\ufeffpasted from Excel", "pasted from Excel"),
        ("  tabs\tkept\n  ", "tabs\tkept"),
        ("Cymraeg: ŵ ŷ â — “quotes” 👍🏽 👩\u200d💻", "Cymraeg: ŵ ŷ â — “quotes” 👍🏽 👩\u200d💻"),
    ],
)
def test_clean_keeps_text_and_turns_every_line_break_into_a_newline(raw: str, cleaned: str) -> None:
    assert text_input.clean(raw, text_input.QUESTION) == cleaned


@pytest.mark.parametrize("hidden", HIDDEN)
def test_clean_refuses_hidden_characters_naming_the_field_and_the_character(hidden: str) -> None:
    with pytest.raises(text_input.TextRefused) as caught:
        text_input.clean(f"Why{hidden}?", text_input.QUESTION)
    message = caught.value.message(Translator("en")._)
    assert message.startswith("Question: contains a hidden control character, ")
    assert f"U+{ord(hidden[0]):04X}" in message and "at character 4" in message
    assert "retype the value without hidden characters" in message
    welsh = caught.value.message(Translator("cy")._)
    assert welsh.startswith("Cwestiwn: yn cynnwys nod rheoli cudd, ")


def test_single_line_fields_refuse_line_breaks_and_every_field_has_its_limit() -> None:
    with pytest.raises(text_input.TextRefused, match="contains a line break"):
        text_input.clean("two\x0blines", text_input.TITLE)
    assert text_input.clean("a\tb", text_input.TITLE) == "a b"
    with pytest.raises(text_input.TextRefused, match=r"too long \(501 characters\)"):
        text_input.clean("x" * 501, text_input.TITLE)
    assert text_input.clean("x" * 500, text_input.TITLE) == "x" * 500


def test_no_field_limit_is_longer_than_its_database_column() -> None:
    columns = {
        text_input.TITLE: (Action.title, Decision.title),
        text_input.OWNER: (Action.owner,),
        text_input.THEME: (Action.theme,),
        text_input.LINK: (Decision.link, Meeting.link),
        text_input.LOCATION: (Meeting.location,),
        text_input.TITLE_CY: (Action.title_cy, Decision.title_cy),
        text_input.LOCATION_CY: (Meeting.location_cy,),
        text_input.CALENDAR_UID: (Meeting.source_uid,),
        text_input.REF: (Action.ref, Decision.ref),
        text_input.QUESTION_REF: (Question.ref,),
        text_input.ANSWERED_BY: (Question.answered_by,),
    }
    for field, stored in columns.items():
        for column in stored:
            kind = column.property.columns[0].type
            assert isinstance(kind, String) and kind.length is not None
            assert field.limit <= kind.length, (field.key, column)


@given(st.text(max_size=60))
def test_whatever_is_typed_clean_either_refuses_or_gives_text_it_accepts_again(raw: str) -> None:
    try:
        once = text_input.clean(raw, text_input.ANSWER)
    except text_input.TextRefused:
        return
    assert text_input.clean(once, text_input.ANSWER) == once
    assert not any(ch in once for ch in "\x00\x1b\r\x0b\x0c\x85\u2028\u2029\ufeff")
    safe = text_input.terminal_safe(raw)
    assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in safe)
    assert not any(0x7F <= ord(ch) <= 0x9F for ch in safe)


@pytest.mark.parametrize(
    ("word", "number"),
    [
        ("7", 7),
        ("999999", 999_999),
        ("1000000", None),
        ("99999999999999999999", None),
        ("²", None),
        ("٣", None),
        ("1e3", None),
        ("-1", None),
        ("", None),
        (" 7", None),
    ],
)
def test_numbers_typed_in_chat_are_ascii_digits_and_bounded(word: str, number: int | None) -> None:
    assert text_input.whole_number(word) == number


@pytest.mark.parametrize(
    ("link", "ok"),
    [
        ("https://democracy.torfaen.gov.uk/ieListDocuments.aspx?CId=1&MId=2", True),
        ("http://example.org/papers", True),
        ("https://evil.example|Board papers", False),
        ("https://example.org/<!channel>", False),
        ("https://example.org/a>b", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://exa mple.org", False),
        ("democracy.torfaen.gov.uk/x", False),
    ],
)
def test_links_are_http_addresses_without_markup(link: str, ok: bool) -> None:
    assert text_input.is_web_link(link) is ok


# -- chat: the real dispatcher ----------------------------------------------------------------
def _stored_texts(session: Session) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(Question.text)))


def test_a_question_with_vertical_tab_is_cleaned_and_nul_or_esc_is_refused_at_the_door(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is phase 2\x0bon budget?"))
    assert session.scalar(select(Question.text).where(Question.ref == ref)) == (
        "Is phase 2\non budget?"
    )
    for hidden in ("\x00", "\x1b[2J"):
        reply = say(app, TORFAEN, f"ask {SB} Is the move{hidden} late?")
        assert "contains a hidden control character" in reply.text
        assert "Something went wrong" not in reply.text
    assert _stored_texts(session) == ["Is phase 2\non budget?"]
    # Every other command that takes free text meets the same door.
    for command in (
        f"edit {ref} Changed\x1b[31m words?",
        f"answer {ref} Finished\x00 in March.",
        "record-decision board=strategic title=Bad\x1btitle decided_on=2026-11-19",
        'remind #srs-torfaen "Papers\x00 due" every monday 9am',
        "find croes\x1b[2Jyceiliog",
    ):
        for user in (TORFAEN, SECRETARIAT):
            assert "contains a hidden control character" in say(app, user, command).text
    assert _stored_texts(session) == ["Is phase 2\non budget?"]
    assert session.scalar(select(func.count()).select_from(Reminder)) == 0


def test_forms_and_buttons_refuse_hidden_characters_per_field(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    meeting = str(seed.meetings[0].id)
    refused = act(
        app, TORFAEN, "question.ask", values={"meeting": meeting, "question": "Why\x1b[2J?"}
    )
    assert set(refused.reply.field_errors) == {"question"}
    assert "question: contains a hidden control character, ESC" in refused.text
    decision = act(
        app,
        SECRETARIAT,
        "register.record_decision",
        values={"board": "strategic", "title": "Data\u202ecentre", "decided_on": "2026-11-19"},
    )
    assert "contains a hidden control character" in decision.text
    assert _stored_texts(session) == []
    assert session.scalar(select(func.count()).select_from(Decision)) == len(seed.decisions)


def test_services_behind_the_cli_and_imports_check_the_same_way(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is phase 2 on budget?"))
    with pytest.raises(QuestionError, match="Answer: contains a hidden control character, NUL"):
        record_answer(session, ref, "Yes\x00", None, actor="cli", now=NOW, t=Translator("en"))
    with pytest.raises(reminders.ReminderError, match="hidden control character, ESC"):
        reminders.create_reminder(
            session,
            channel="#srs-torfaen",
            text="Papers \x1b[2J due",
            when="every monday 9am",
            now=NOW,
            created_by=None,
            actor="cli",
        )
    session.rollback()


def test_imports_share_the_limits_and_the_cleaning(
    session: Session, seed: Seed, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "actions.csv",
        ACTION_HEADER,
        [
            action(ref="TP-201", last_update="Line one\x0bline two"),
            action(ref="TP-202", title="Bad\x1b[2Jtitle"),
            action(ref="TP-203", last_update="x" * (text_input.NOTE.limit + 1)),
        ],
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(session, "actions", path, actor="test", now=NOW)
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 2
    assert problems[0].startswith('actions.csv line 3, title "Bad\x1b[2Jtitle": contains a hidden')
    assert "ESC (U+001B), at character 4" in problems[0]
    assert "too long (3,001 characters); shorten it to at most 3,000 characters" in problems[1]
    session.rollback()
    good = write_csv(
        tmp_path / "good.csv", ACTION_HEADER, [action(ref="TP-201", last_update="One\x0btwo")]
    )
    import_file(session, "actions", good, actor="test", now=NOW)
    assert session.scalar(select(Action.last_update).where(Action.ref == "TP-201")) == "One\ntwo"
    links = write_csv(
        tmp_path / "decisions.csv",
        DECISION_HEADER,
        [
            {
                "ref": "SB-2026-090",
                "board": "strategic",
                "decided_on": "2026-11-19",
                "title": "Papers",
                "link": "https://evil.example|Board papers",
            }
        ],
    )
    with pytest.raises(ImportRejected) as refused_link:
        import_file(session, "decisions", links, actor="test", now=NOW)
    assert "not a web address" in str(refused_link.value.problems[0])


def test_decision_links_from_chat_must_be_plain_web_addresses(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    base = "record-decision board=strategic title=Papers decided_on=2026-11-19 link="
    for link in ("https://evil.example|Board", "https://x.example/<b>", "javascript:alert(1)"):
        reply = say(app, SECRETARIAT, base + link)
        assert "is not a web address" in reply.text and "| < >" in reply.text
    reply = say(app, SECRETARIAT, base + "https://democracy.torfaen.gov.uk/papers")
    assert "is not a web address" not in reply.text
    assert session.scalar(select(Decision.link).where(Decision.title == "Papers")) == (
        "https://democracy.torfaen.gov.uk/papers"
    )


@pytest.mark.parametrize(
    "command",
    [
        "questions 99999999999999999999",
        "questions ²",
        "questions #²",
        "questions #99999999999999999999",
        "ask 99999999999999999999 Why?",
        "actions page 99999999999999999999",
        "actions page ²",
        "decisions page 99999999999999999999",
        "actions due in 99999999999999999999 days",
        "remind cancel 99999999999999999999",
        "remind cancel ²",
        'remind #srs-torfaen "Papers due" cron "² 9 * * *"',
        'remind #srs-torfaen "Papers due" cron "0 99999999999999999999 * * *"',
        "record-decision board=strategic title=T decided_on=2026-11-19 exempt_paragraph=²",
    ],
)
def test_numbers_typed_in_chat_never_break_a_command(
    app: ScrutinyApp, seed: Seed, command: str
) -> None:
    for user in (TORFAEN, SECRETARIAT):
        reply = say(app, user, command)
        assert "Something went wrong" not in reply.text, (user, reply.text)


def test_withdraw_or_edit_of_someone_elses_question_never_reveals_its_state(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    open_ref = ref_of(say(app, TORFAEN, f"ask {SB} Is the data centre move on budget?"))
    rejected_ref = ref_of(say(app, TORFAEN, f"ask {SB} Why are the switches late?"))
    assert "Rejected" in say(app, SECRETARIAT, f"reject {rejected_ref} Asked already.").text
    for verb in ("withdraw", "edit"):
        extra = " New words?" if verb == "edit" else ""
        to_open = say(app, POLICE, f"{verb} {open_ref}{extra}").text
        to_rejected = say(app, POLICE, f"{verb} {rejected_ref}{extra}").text
        assert to_rejected == to_open.replace(open_ref, rejected_ref)
        assert "rejected" not in to_rejected.lower()
    session.expire_all()
    states = {ref: state for ref, state in session.execute(select(Question.ref, Question.state))}
    assert states == {open_ref: QuestionState.SUBMITTED, rejected_ref: QuestionState.REJECTED}


# The signed Slack endpoint's fixtures, as test_slack_questions serves them.
SLACK_FIXTURES = (db, fake, platform, slack, slack_app)


# -- the Slack endpoint, signed ---------------------------------------------------------------


def test_the_signed_slack_ask_form_cleans_vertical_tab_and_refuses_nul_and_esc(
    slack: SlackSender, seed: Seed, db: Session
) -> None:
    shortcut(slack, "U0TOR00001", "C0TOR00001", "Draft")
    view = opened(slack, 1)
    meeting = chosen(str(seed.meetings[0].id))
    for hidden in ("\x00", "\x1b[2J"):
        errors = submitted(
            slack,
            "U0TOR00001",
            view,
            meeting=meeting,
            question=typed(f"Is it{hidden} late?"),
        )
        assert errors["response_action"] == "errors" and set(errors["errors"]) == {"question"}
        assert "hidden control character" in errors["errors"]["question"]
    assert db.scalar(select(Question.id)) is None
    assert (
        submitted(
            slack,
            "U0TOR00001",
            view,
            meeting=meeting,
            question=typed("Is phase 2\x0bon budget?"),
        )
        is None
    )
    db.expire_all()
    assert db.scalar(select(Question.text)) == "Is phase 2\non budget?"


# -- stored text: the pack, the terminal ------------------------------------------------------
def _asked(app: ScrutinyApp, session: Session) -> Question:
    """A question asked through chat, to overwrite with what an older version let in."""
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Placeholder question?"))
    question = session.scalar(select(Question).where(Question.ref == ref))
    assert question is not None
    return question


def test_the_word_pack_never_fails_on_text_stored_before_these_checks(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    question = _asked(app, session)
    say(app, SECRETARIAT, f"accept {question.ref}")
    # What an older version let in: written straight to the database (PostgreSQL itself
    # refuses NUL in text, so only SQLite can hold one).
    nul = "\x00" if session.get_bind().dialect.name == "sqlite" else ""
    question.text = f"Vertical\x0btab, NUL{nul}, clear\x1b[2J screen, C1\x9b and bidi\u202e."
    question.answer, question.answered_by = f"Answer{nul} with\x1b[31m colour", "Ceri\x07"
    question.state = QuestionState.ANSWERED
    session.commit()
    pack = question_pack.build_pack(
        session,
        seed.meetings[0],
        question_pack.secretariat_audience(session),
        now=NOW,
        zone=app.settings.timezone,
    )
    data = question_pack.to_docx(pack, Translator("en"))
    words = "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    assert "Vertical\ntab, NUL, clear[2J screen, C1 and bidi." in words
    assert "Answer (Ceri): Answer with[31m colour" in words
    markdown = question_pack.to_markdown(pack, Translator("cy"))
    assert "\x1b" not in markdown and "\x00" not in markdown


def test_the_console_and_logs_never_print_raw_escape_sequences(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    question = _asked(app, session)
    question.text = "Stored\x1b[2J\x1b]0;owned\x07 text\r overwritten \u202eevil"
    session.commit()
    out = io.StringIO()
    status = run_console(
        app,
        "ceri-morgan",
        None,
        io.StringIO(f"questions {SB}\n:as no\x1b[2Jbody\n"),
        out,
        interactive=False,
        clock=lambda: NOW,
    )
    assert status == 0
    printed = out.getvalue()
    assert "Stored\\x1b[2J\\x1b]0;owned\\x07 text\\r overwritten \\u202eevil" in printed
    assert "no\\x1b[2Jbody" in printed
    assert not any(ch in printed for ch in "\x1b\x07\r\u202e")

    formatter = TerminalSafeFormatter("%(message)s")
    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "got %s", ("a\x1b[2Jb",), None)
    assert formatter.format(record) == "got a\\x1b[2Jb"


def test_cli_output_of_user_data_is_terminal_safe(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SCRUTINY_LANGUAGE", "en")
    question = _asked(app, session)
    question.text = "Clear\x1b[2J the screen"
    session.commit()
    result = CliRunner().invoke(cli, ["questions", "list", "--meeting", SB])
    assert result.exit_code == 0, result.output
    assert "Clear\\x1b[2J the screen" in result.output and "\x1b" not in result.output


# -- no oracle ---------------------------------------------------------------------------------
WITHHELD_ONLY = ("exempt", "contract", "renewal", "segregation")
"""Words only in the titles of items a Newport board member may not see (TP-003 is exempt,
TP-004 is police only)."""


def _without_words(text: str, words: list[str]) -> str:
    text = text.replace(" ".join(words), "WORDS")
    for number, word in enumerate(words):
        text = text.replace(word, f"WORD{number}")
    return text


_REF = re.compile(r"\b[A-Z]{2}-(?:\d{4}-)?\d{3}\b")


def _what_it_tells(reply: str) -> tuple[set[str], list[str]]:
    """What a reply tells about the register: the refs it lists and any line about what was
    left out (the wording around the searched words is the reader's, and may add glossary
    notes of its own)."""
    withheld = [
        line
        for line in reply.splitlines()
        if "left out" in line or "cleared" in line or "withheld" in line
    ]
    return set(_REF.findall(reply)), withheld


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    hit=st.lists(st.sampled_from(WITHHELD_ONLY), min_size=1, max_size=2, unique=True),
    miss=st.lists(
        st.text(alphabet="qxzjvkw", min_size=5, max_size=9), min_size=2, max_size=2, unique=True
    ),
    command=st.sampled_from(["find", "actions", "decisions"]),
)
def test_withheld_counts_never_tell_whether_words_match_withheld_items(
    app: ScrutinyApp, seed: Seed, hit: list[str], miss: list[str], command: str
) -> None:
    """For any words, what a reply tells (items listed, withheld count) is the same for words
    that match only withheld items and for words that match nothing: mentions and Teams go
    through the same dispatcher, so both platforms are asked."""
    for surface, user in (
        (Platform.SLACK, NEWPORT),
        (Platform.TEAMS, seed.members["tom-price"].entra_object_id or ""),
    ):
        told = []
        for words in (hit, miss[: len(hit)]):
            text = f"{command} {' '.join(words)}"
            request = Request(surface, user, text, is_direct=True, now=NOW)
            told.append(_what_it_tells(app.dispatch(request, "txt").text))
        assert told[0] == told[1]
        assert told[0][1] == []


def test_filters_without_words_still_count_what_was_withheld(app: ScrutinyApp, seed: Seed) -> None:
    reply = say(app, NEWPORT, "actions torfaen all").text
    assert "left out because you aren't cleared for it (1 exempt under Schedule 12A)" in reply
    searched = say(app, NEWPORT, "actions torfaen contract").text
    assert "left out" not in searched


def test_a_search_that_only_withheld_items_match_still_falls_back_to_any_word(
    app: ScrutinyApp, seed: Seed
) -> None:
    # "network segregation" has both words only in TP-004 (police only). Had that withheld
    # row stopped the fallback to any word, the answer would differ from a search whose second
    # word matches nothing, and so tell that a withheld item has both words.
    both = say(app, NEWPORT, "actions network segregation").text
    neither = say(app, NEWPORT, "actions network qxzjv").text
    assert _without_words(both, ["segregation"]) == _without_words(neither, ["qxzjv"])
    assert "TP-002" in both and "TP-004" not in both


# -- Teams: user Markdown stays inert -----------------------------------------------------------
def test_markdown_in_a_question_and_answer_is_inert_in_the_posted_teams_card(
    app: ScrutinyApp,
    seed: Seed,
    session: Session,
    issuer: FakeTokenIssuer,
    connector: FakeBotConnector,
) -> None:

    session.add(
        Channel(
            slug="teams-torfaen",
            name="teams-torfaen",
            platform=Platform.TEAMS,
            external_id=f"{TEAM}/{THREAD}",
            partner=seed.partners["torfaen"],
            clearance=Marking.OFFICIAL,
        )
    )
    session.commit()
    phish = "[click me](https://evil.example/phish)"
    ref = ref_of(say(app, TORFAEN, f"ask {SB} Is **this** {phish} on budget?\n1. first"))
    say(app, SECRETARIAT, f"accept {ref}")
    answered = say(app, SECRETARIAT, f"answer {ref} See {phish} _now_\n- listed")
    assert "teams-torfaen" in answered.text
    delivery = session.scalar(
        select(Delivery).where(Delivery.idempotency_key == f"answer:{ref}:teams-torfaen")
    )
    assert delivery is not None
    # Due now, whatever the machine's clock says.
    delivery.next_try_at = NOW - timedelta(minutes=1)
    session.commit()
    assert send(app, connector_messenger(app, issuer, connector)).sent == 1
    [posted] = connector.calls_of("create")
    assert posted.body["channelData"] == {"channel": {"id": THREAD}}
    [card] = posted.cards
    assert_valid_card(card)
    texts = [block["text"] for block in card["body"]]
    assert not any(phish in text for text in texts)
    assert any("\\[click me\\](https://evil.example/phish)" in text for text in texts)
    assert any("\\*\\*this\\*\\*" in text for text in texts)
    assert any("\n1\\. first" in text for text in texts)  # a list marker on its own line
    assert any("\n\\- listed" in text for text in texts)


def test_markdown_in_user_text_is_inert_in_teams_cards(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    phish = "[click me](https://evil.example/phish)"
    title = f"Papers {phish} **now** _here_ #1 <b>bold</b>"
    recorded = say(
        app,
        SECRETARIAT,
        f'record-decision board=strategic "title={title}" decided_on=2026-11-20',
    )
    assert "Something went wrong" not in recorded.text
    assert session.scalar(select(Decision.title).where(Decision.decided_on == date(2026, 11, 20)))
    member = seed.members["sian-hughes"].entra_object_id or ""
    request = Request(Platform.TEAMS, member, "decisions strategic", is_direct=True, now=NOW)
    card = app.dispatch(request, "teams.json").bodies[0]
    assert phish not in card and "**now**" not in card and "<b>bold</b>" not in card
    escaped = json.dumps("\\[click me\\](https://evil.example/phish) \\*\\*now\\*\\*")[1:-1]
    assert escaped in card
    assert json.dumps("\\_here\\_ \\#1 \\<b\\>bold\\</b\\>")[1:-1] in card
    # The card of a reply without a Teams template escapes the same way.
    fallback = json.dumps(text_card(f"Heading\n{title}", Translator("en")))
    assert phish not in fallback and escaped in fallback


def test_a_link_stored_before_links_were_checked_is_left_out_of_every_reply(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    decision = seed.decisions["SB-2026-031"]
    decision.link = "https://evil.example|Board papers"
    session.commit()
    for fmt in ("txt", "slack.json"):
        reply = say(app, SECRETARIAT, "decision SB-2026-031", fmt=fmt)
        assert "evil.example" not in "".join(reply.bodies)
    member = seed.members["sian-hughes"].entra_object_id or ""
    request = Request(Platform.TEAMS, member, "decisions strategic", is_direct=True, now=NOW)
    assert "evil.example" not in app.dispatch(request, "teams.json").bodies[0]
