"""Counting that stops at a cap: lists members page through count their matches exactly up to
`queries.COUNT_UP_TO`, then say "more than" (and "at least" for the withheld), so a page costs
the same whatever the size of the register. The counts stay true: exact under the cap, lower
bounds past it, in every reply format and in Welsh."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bot.app import ScrutinyApp, create_app
from bot.domain import Marking
from bot.services import queries
from bot.settings import Settings
from bot.visibility import Audience
from bot.web import create_web_app
from tests.conftest import NOW
from tests.factories import Seed, add_action
from tests.test_handlers import TORFAEN_CHANNEL, run
from tests.test_i18n_cy import WELSH_MEMBER
from tests.test_questions import say
from tests.test_register_web import LOCAL, sign_in

TODAY = NOW.date()
PUBLIC = Audience(Marking.OFFICIAL, False, frozenset({"torfaen"}))
VISIBLE, EXEMPT = 37, 5


@pytest.fixture
def blaenau(session: Session, seed: Seed) -> None:
    """37 actions Torfaen's readers may see and 5 exempt ones, all of Blaenau Gwent."""
    for n in range(VISIBLE):
        due = date(2027, 1, 1) + timedelta(days=n)
        add_action(session, seed, f"TP-{200 + n}", "blaenau-gwent", due)
    for n in range(EXEMPT):
        due = date(2027, 1, 1) + timedelta(days=n)
        add_action(session, seed, f"TP-{300 + n}", "blaenau-gwent", due, exempt_paragraph=14)
    session.commit()


def _page(session: Session, cap: int | None, page: int = 1) -> queries.Page[queries.ActionView]:
    return queries.find_actions(
        session,
        PUBLIC,
        today=TODAY,
        partner="blaenau-gwent",
        page=page,
        per_page=2,
        count_up_to=cap,
    )


@pytest.mark.parametrize("cap", [1, 2, 5, 10, 20, 36, 37, 41, 42, 43, 100])
def test_capped_counts_are_exact_under_the_cap_and_lower_bounds_past_it(
    session: Session, blaenau: None, cap: int
) -> None:
    exact = _page(session, None)
    assert (exact.total_visible, exact.withheld, exact.more_than) == (
        VISIBLE,
        {"exempt": EXEMPT},
        False,
    )
    capped = _page(session, cap)
    up_to = max(cap, 4)  # page 1 of 2 a page: the count runs at least past page 2
    assert capped.items == exact.items
    if up_to >= VISIBLE:
        assert (capped.total_visible, capped.more_than, capped.pages) == (VISIBLE, False, 19)
    else:
        assert (capped.total_visible, capped.more_than) == (up_to, True)
        assert capped.has_next and capped.pages > up_to // 2
    if up_to >= VISIBLE + EXEMPT:
        assert (capped.withheld, capped.withheld_at_least) == (exact.withheld, False)
    else:
        assert capped.withheld.get("exempt", 0) <= EXEMPT
        assert set(capped.withheld) <= {"exempt"}
        assert capped.withheld_at_least == bool(capped.withheld)


def test_paging_past_the_cap_reaches_every_row_and_the_exact_end(
    session: Session, blaenau: None
) -> None:
    seen: list[str] = []
    page = _page(session, 5)
    while True:
        seen += [a.ref for a in page.items]
        if not page.has_next:
            break
        assert page.more_than or page.total_visible >= page.last
        page = _page(session, 5, page.page + 1)
    assert len(seen) == len(set(seen)) == VISIBLE
    # Near the end the count passes the last row: it is exact again.
    assert (page.total_visible, page.more_than, page.page, page.pages) == (VISIBLE, False, 19, 19)


def test_without_a_cap_the_services_count_exactly(session: Session, blaenau: None) -> None:
    page = queries.find_actions(session, PUBLIC, today=TODAY, partner="blaenau-gwent")
    assert (page.total_visible, page.more_than, page.withheld_at_least) == (VISIBLE, False, False)


@pytest.fixture
def web_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"web_session_secret": "test-secret-" + "x" * 32})


# -- the wording, through the real dispatcher and the register ---------------------------
OVER = queries.COUNT_UP_TO + 10


@pytest.fixture
def many_overdue(session: Session, seed: Seed) -> None:
    """More overdue Torfaen actions than the cap, every other one police-only."""
    for n in range(2 * OVER):
        due = TODAY - timedelta(days=1 + n // 2)
        extra = {"restricted_to": ["gwent-police"]} if n % 2 else {}
        add_action(session, seed, f"TP-{1000 + n}", "torfaen", due, **extra)
    session.commit()


LEFT_OUT = re.compile(r"at least (\d+) more were left out because this channel isn't cleared")


def _left_out(text: str) -> int:
    found = LEFT_OUT.search(text)
    assert found, text
    return int(found.group(1))


def test_more_than_in_text_slack_and_teams(app: ScrutinyApp, many_overdue: None) -> None:
    cap = queries.COUNT_UP_TO
    command = "actions overdue torfaen"
    text = run(app, "sian-hughes", command, channel=TORFAEN_CHANNEL).text
    assert f"(showing 1–10 of more than {cap})" in text
    assert "Next 10: /scrutiny actions overdue torfaen page 2" in text
    assert 0 < _left_out(text) <= OVER

    slack = run(app, "sian-hughes", command, channel=TORFAEN_CHANNEL, fmt="slack.json")
    blocks = [b for body in slack.bodies for b in json.loads(body)["blocks"]]
    rendered = json.dumps(blocks, ensure_ascii=False)
    assert f"showing 1–10 of more than {cap}" in rendered
    assert 0 < _left_out(rendered) <= OVER

    teams = run(app, "sian-hughes", command, channel=TORFAEN_CHANNEL, fmt="teams.json")
    card = json.dumps(teams.documents, ensure_ascii=False)
    assert f"showing 1–10 of more than {cap}" in card
    assert 0 < _left_out(card) <= OVER


def test_more_than_in_welsh(app: ScrutinyApp, many_overdue: None) -> None:
    reply = say(app, WELSH_MEMBER, "camau hwyr torfaen")
    assert f"(yn dangos 1–10 o fwy na {queries.COUNT_UP_TO})" in reply.text
    assert "Gadawyd o leiaf " in reply.text
    assert "more than" not in reply.text and "at least" not in reply.text


def test_a_small_list_keeps_its_exact_wording(app: ScrutinyApp, seed: Seed) -> None:
    text = run(app, "sian-hughes", "actions overdue torfaen", channel=TORFAEN_CHANNEL).text
    assert "more than" not in text and "at least" not in text
    assert re.search(r"\(showing 1–\d+ of \d+\)", text)


def test_more_than_in_the_register_pages(
    web_settings: Settings, engine: Engine, seed: Seed, many_overdue: None
) -> None:
    web = create_web_app(create_app(web_settings, engine), clock=lambda: NOW)
    with TestClient(web, client=LOCAL) as client:
        sign_in(client, "sian-hughes")
        page = client.get("/actions", params={"partner": "torfaen", "timing": "overdue"}).text
    cap = queries.COUNT_UP_TO
    assert f"More than {cap} actions" in page
    assert f"Showing 1–20 of more than {cap}" in page
    assert re.search(r"At least \d+ items are not shown", page)
