"""The query commands through the real dispatcher: actions, action, decisions, decision,
meetings and free text, in text and Slack Block Kit, in English and Welsh."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.app import Outcome, ScrutinyApp
from bot.domain import ChannelLanguage, Platform
from bot.messages import Request
from tests.conftest import NOW
from tests.factories import Seed, add_action

SLACK_IDS = {
    "ceri-morgan": "U0SEC00001",
    "sian-hughes": "U0TOR00001",
    "rhys-evans": "U0POL00001",
    "eleri-jones": "U0MON00001",
    "tom-price": "U0NEW00001",
}


def run(
    app: ScrutinyApp, member: str, text: str, *, channel: str | None = None, fmt: str = "txt"
) -> Outcome:
    """As `member`: a direct message on the console, or in a seeded Slack channel id."""
    if channel is None:
        request = Request(Platform.CONSOLE, member, text, is_direct=True, now=NOW)
    else:
        request = Request(Platform.SLACK, SLACK_IDS[member], text, channel_id=channel, now=NOW)
    return app.dispatch(request, fmt)


def ask(app: ScrutinyApp, member: str, text: str, channel: str | None = None) -> str:
    return run(app, member, text, channel=channel).text


def blocks(outcome: Outcome) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for body in outcome.bodies:
        parsed = json.loads(body)
        assert set(parsed) == {"blocks"} and isinstance(parsed["blocks"], list)
        result += parsed["blocks"]
    return result


TORFAEN_CHANNEL = "C0TOR00001"


def test_overdue_actions_for_a_partner(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "actions overdue torfaen")
    assert "Actions: overdue · Torfaen County Borough Council (showing 1–2 of 2)" in out
    lines = [line.strip() for line in out.splitlines()]
    assert lines[1].startswith("TP-001  Migrate file shares to SharePoint Online")
    assert "54 days late · RED · owner: S. Hughes" in lines[1]
    assert "TP-003" in lines[2]
    assert "TP-002" not in out and "left out" not in out


def test_channel_clearance_withholds_and_counts_without_content(
    app: ScrutinyApp, seed: Seed
) -> None:
    out = ask(app, "sian-hughes", "actions overdue torfaen", channel=TORFAEN_CHANNEL)
    assert "TP-001" in out
    assert "TP-003" not in out and "Exempt contract renewal" not in out
    assert "1 more was left out because this channel isn't cleared for it" in out
    assert "(1 exempt under Schedule 12A)" in out


def test_member_not_cleared_is_told_it_is_them(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "tom-price", "actions overdue torfaen")
    assert "1 more was left out because you aren't cleared for it" in out


def test_plain_actions_lists_open_ones_and_all_includes_closed(
    app: ScrutinyApp, seed: Seed
) -> None:
    assert "TP-005" not in ask(app, "ceri-morgan", "actions")
    assert "Actions: open" in ask(app, "ceri-morgan", "actions")
    assert "TP-005" in ask(app, "ceri-morgan", "actions all")
    assert "TP-005" in ask(app, "ceri-morgan", "actions done")


def _many_actions(session: Session, seed: Seed, count: int) -> None:
    for n in range(count):
        add_action(session, seed, f"TP-{100 + n}", "torfaen", NOW.date() - timedelta(days=n + 1))
    session.commit()


def test_pages_of_ten_with_a_next_page_command(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _many_actions(session, seed, 35)
    out = ask(app, "sian-hughes", "actions overdue torfaen")
    assert "(showing 1–10 of 37)" in out
    assert "Next 10: /scrutiny actions overdue torfaen page 2" in out
    last = ask(app, "sian-hughes", "actions overdue torfaen page 4")
    assert "(showing 31–37 of 37)" in last and "Next" not in last
    assert len([line for line in last.splitlines() if line.startswith("  TP-")]) == 7


def test_slack_next_button_re_runs_the_command(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    _many_actions(session, seed, 35)
    outcome = run(app, "sian-hughes", "overdue actions for torfaen", fmt="slack.json")
    (buttons,) = [b for b in blocks(outcome) if b["type"] == "actions"]
    (button,) = buttons["elements"]
    assert button["action_id"] == "page"
    assert button["value"] == "actions overdue torfaen page 2"
    request = Request(
        Platform.CONSOLE, "sian-hughes", button["value"], now=NOW, values={"value": button["value"]}
    )
    second = app.interact("page", request, "slack.json")
    assert "showing 11–20 of 37" in second.text
    assert any(b["type"] == "actions" for b in blocks(second))


def test_page_button_refuses_other_commands(app: ScrutinyApp, seed: Seed) -> None:
    request = Request(Platform.CONSOLE, "sian-hughes", "", now=NOW, values={"value": "help"})
    assert "no longer supported" in app.interact("page", request).text


def test_one_action_in_full(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "action tp-1")
    assert out.splitlines()[0] == "TP-001  Migrate file shares to SharePoint Online"
    assert "Owner: S. Hughes, Torfaen County Borough Council" in out
    assert "Due: Wednesday 30 September 2026 (54 days late)" in out
    assert "Marking: OFFICIAL" in out
    assert "Marking: OFFICIAL · exempt under Schedule 12A, paragraph 14" in ask(
        app, "sian-hughes", "cam TP-003"
    )


def test_withheld_action_says_only_that_it_exists(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "action TP-003", channel=TORFAEN_CHANNEL)
    assert "TP-003 exists, but this channel is not cleared to see it." in out
    assert "ask me in a direct message" in out
    assert "Exempt contract renewal" not in out and "A. Person" not in out and "Torfaen" not in out
    dm = ask(app, "tom-price", "action TP-003")
    assert "you are not cleared to see it" in dm and "#srs-secretariat" in dm
    assert "Exempt" not in dm and "direct message" not in dm


def test_unknown_refs_and_missing_refs(app: ScrutinyApp, seed: Seed) -> None:
    assert "There is no action TP-999" in ask(app, "sian-hughes", "action TP-999")
    assert "There is no decision SB-2026-999" in ask(app, "sian-hughes", "decision SB-2026-999")
    assert "Give one reference, for example: /scrutiny action TP-014" in ask(
        app, "sian-hughes", "action"
    )


def test_decisions_by_board_since_a_date(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "decisions strategic since 2026-01-01")
    assert "Decisions: Strategic Board · since Thursday 1 January 2026 (showing 1–2 of 2)" in out
    assert "SB-2026-032  Strategic Board, 19 Nov: Exempt procurement award" in out
    assert "SB-2026-031" in out and "FG-2026-044" not in out


def test_decision_in_full_and_withheld(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "penderfyniad SB-2026-031")
    assert "Strategic Board, decided Thursday 19 November 2026" in out
    assert "phase 2 of the move to the Blaenavon data centre" in out
    withheld = ask(app, "sian-hughes", "decision BC-2026-010")
    assert "BC-2026-010 exists, but you are not cleared to see it" in withheld
    assert "Police-only" not in withheld
    assert "Police-only records system" in ask(app, "rhys-evans", "decision BC-2026-010")


def test_welsh_member_gets_welsh_names_and_dates(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "eleri-jones", "penderfyniadau")
    assert "Bwrdd Strategol, 19 Tach" in out
    assert "Bwrdd Cyllid a Llywodraethu, 20 Tach" in out
    meetings = ask(app, "eleri-jones", "cyfarfodydd strategol")
    assert "Dydd Iau 3 Rhagfyr 2026, 10:00yb" in meetings


def test_bilingual_channel_renders_both_languages(
    app: ScrutinyApp, seed: Seed, session: Session
) -> None:
    seed.channels["srs-strategic-board"].language = ChannelLanguage.CY_EN
    session.commit()
    request = Request(
        Platform.SLACK,
        SLACK_IDS["ceri-morgan"],
        "decisions strategic",
        channel_id="C0SBB00001",
        now=NOW,
    )
    outcome = app.dispatch(request, "slack.json")
    blocks(outcome)  # every language's body is valid Block Kit JSON


def test_meetings_and_their_question_windows(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "meetings")
    assert "Strategic Board, Thursday 3 December 2026, 10:00am · Blaenavon data centre" in out
    assert "questions close Friday 27 November 2026, 5:00pm (/scrutiny ask)" in out
    assert "Finance & Governance Board" in out
    assert "Finance & Governance" not in ask(app, "sian-hughes", "meetings strategic")
    assert "only be narrowed to a board" in ask(app, "sian-hughes", "meetings about wifi")
    assert "No board meetings are scheduled." in ask(app, "sian-hughes", "meetings tomorrow")
    assert "No meetings of the Business & Collaboration Board" in ask(
        app, "sian-hughes", "meetings business"
    )


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        ("overdue actions for Torfaen", "Actions: overdue · Torfaen", "SB-2026"),
        (
            "what did the strategic board decide about the data centre move?",
            "SB-2026-031",
            "TP-005",
        ),
        ("when does the strategic board meet?", "Next meetings of the Strategic Board", "TP-"),
        ("data centre", "Results: “data centre”", "FG-2026-044"),
        ("TP-001", "Owner: S. Hughes", "Results"),
        ("sb-2026-031", "decided Thursday 19 November 2026", "Results"),
        ("red actions", "TP-001", "TP-002"),
    ],
)
def test_free_text_is_routed_by_its_words(
    app: ScrutinyApp, seed: Seed, text: str, expected: str, absent: str
) -> None:
    out = ask(app, "sian-hughes", text)
    assert expected in out
    assert absent not in out
    assert expected in ask(app, "sian-hughes", f"find {text}")


def test_nothing_found_suggests_a_better_query(app: ScrutinyApp, seed: Seed) -> None:
    typo = ask(app, "sian-hughes", "actions overdu torfaen")
    assert "Actions: overdue · Torfaen County Borough Council" in typo
    assert "Read “overdu” as “overdue”." in typo
    out = ask(app, "sian-hughes", "actions zebra torfaen")
    assert "No actions match Torfaen County Borough Council · “zebra”." in out
    assert "Try: /scrutiny actions torfaen" in out
    nothing = ask(app, "sian-hughes", "zebra crossings")
    assert "Nothing matches “zebra crossings”." in nothing and "/scrutiny help" in nothing
    assert "I didn't find anything to look for in “what is the”" in ask(
        app, "sian-hughes", "what is the"
    )


def test_bad_dates_are_refused_with_the_fix(app: ScrutinyApp, seed: Seed) -> None:
    out = ask(app, "sian-hughes", "decisions since 2026-02-31")
    assert out == "“2026-02-31” is not a date; use YYYY-MM-DD (e.g. 2026-11-23)."


def test_slack_text_is_escaped(app: ScrutinyApp, seed: Seed, session: Session) -> None:
    add_action(
        session,
        seed,
        "TP-900",
        "torfaen",
        date(2026, 12, 1),
        title="<!channel> & *bold* <http://x|y>",
        owner="<@U1>",
    )
    session.commit()
    outcome = run(app, "sian-hughes", "action TP-900", fmt="slack.json")
    dumped = json.dumps(blocks(outcome))
    assert (
        "<!channel>" not in dumped and "&lt;!channel&gt; &amp;" in dumped and "<@U1>" not in dumped
    )
    listing = json.dumps(blocks(run(app, "sian-hughes", "actions torfaen", fmt="slack.json")))
    assert "<!channel>" not in listing and "&lt;@U1&gt;" in listing


COMMANDS = [
    "actions",
    "actions overdue torfaen",
    "actions zebra",
    "actions page 3",
    "camau red",
    "action TP-001",
    "action TP-003",
    "action TP-999",
    "decisions",
    "decisions zebra strategic",
    "decision SB-2026-031",
    "decision BC-2026-010",
    "decision XX-2026-001",
    "meetings",
    "meetings business",
    "data centre",
    "zebra",
    "what is the",
    "hlep me",
    "decisions since 2026-02-31",
]


@pytest.mark.parametrize("member", ["sian-hughes", "eleri-jones"])
@pytest.mark.parametrize("text", COMMANDS)
def test_every_reply_renders_block_kit_json(
    app: ScrutinyApp, seed: Seed, member: str, text: str
) -> None:
    for channel in (None, TORFAEN_CHANNEL):
        if channel and member != "sian-hughes":
            continue
        outcome = run(app, member, text, channel=channel, fmt="slack.json")
        for block in blocks(outcome):
            assert block["type"] in {"section", "context", "actions", "header", "divider"}
        assert outcome.text.strip()
