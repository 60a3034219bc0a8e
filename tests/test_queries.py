"""Query services: filters, overdue and due-soon boundaries, pagination and withheld counts,
lookups by ref, meetings, and a constant number of SQL statements per page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.domain import ActionStatus, Marking, Rag
from bot.models import Meeting
from bot.services import queries
from bot.services.queries import Found, NotFound, Withheld
from bot.visibility import Audience
from tests.conftest import NOW
from tests.factories import Seed, add_action, add_decision
from tests.support.statements import counting

TODAY = NOW.date()

EVERYONE = frozenset(
    {"blaenau-gwent", "monmouthshire", "newport", "torfaen", "gwent-police", "srs"}
)


def audience(
    clearance: Marking = Marking.OFFICIAL_SENSITIVE,
    exempt: bool = True,
    readers: frozenset[str] = frozenset({"gwent-police"}),
) -> Audience:
    return Audience(clearance=clearance, exempt_access=exempt, readers=readers)


ALL_CLEARED = audience()
"""Sees everything in the seed, police-only items included."""
PUBLIC = audience(Marking.OFFICIAL, False, frozenset({"torfaen"}))
"""Official only, no exempt items, Torfaen readers."""


def refs(page: queries.Page[Any]) -> list[str]:
    return [item.ref for item in page.items]


# -- actions: filters ------------------------------------------------------------------------
def test_partner_filter_takes_slugs(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, partner="torfaen")
    assert refs(page) == ["TP-001", "TP-003", "TP-002"]  # soonest due first
    both = queries.find_actions(session, ALL_CLEARED, today=TODAY, partner=["torfaen", "newport"])
    assert set(refs(both)) == {"TP-001", "TP-002", "TP-003", "TP-005"}


def test_status_and_rag_filters(session: Session, seed: Seed) -> None:
    done = queries.find_actions(session, ALL_CLEARED, today=TODAY, status={ActionStatus.DONE})
    assert refs(done) == ["TP-005"]
    red = queries.find_actions(session, ALL_CLEARED, today=TODAY, rag=Rag.RED)
    assert refs(red) == ["TP-001"]
    amber_or_red = queries.find_actions(session, ALL_CLEARED, today=TODAY, rag=[Rag.RED, Rag.AMBER])
    assert len(amber_or_red.items) == 6


def test_overdue_boundaries(session: Session, seed: Seed) -> None:
    add_action(session, seed, "TP-101", "newport", TODAY)
    add_action(session, seed, "TP-102", "newport", TODAY - timedelta(days=1))
    add_action(
        session, seed, "TP-103", "newport", TODAY - timedelta(days=1), status=ActionStatus.CANCELLED
    )
    add_action(session, seed, "TP-104", "newport", None)
    add_action(
        session, seed, "TP-105", "newport", TODAY - timedelta(days=3), status=ActionStatus.BLOCKED
    )
    session.commit()
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, partner="newport", overdue=True)
    assert refs(page) == ["TP-105", "TP-102"]  # due today is not late; closed never are
    late = {a.ref: a for a in page.items}
    assert late["TP-102"].days_late == 1 and late["TP-102"].overdue
    assert late["TP-105"].days_late == 3


def test_due_soon_boundaries(session: Session, seed: Seed) -> None:
    for ref, offset in (("TP-111", -1), ("TP-112", 0), ("TP-113", 14), ("TP-114", 15)):
        add_action(session, seed, ref, "newport", TODAY + timedelta(days=offset))
    add_action(
        session, seed, "TP-115", "newport", TODAY + timedelta(days=2), status=ActionStatus.DONE
    )
    session.commit()
    page = queries.find_actions(
        session, ALL_CLEARED, today=TODAY, partner="newport", due_within_days=14
    )
    assert refs(page) == ["TP-112", "TP-113"]
    days = {a.ref: a.days_left for a in page.items}
    assert days == {"TP-112": 0, "TP-113": 14}


def test_overdue_and_due_soon_together_mean_either(session: Session, seed: Seed) -> None:
    page = queries.find_actions(
        session, ALL_CLEARED, today=TODAY, partner="torfaen", overdue=True, due_within_days=14
    )
    assert refs(page) == ["TP-001", "TP-003", "TP-002"]


def test_due_date_range_is_inclusive(session: Session, seed: Seed) -> None:
    page = queries.find_actions(
        session, ALL_CLEARED, today=TODAY, due_from=date(2026, 10, 1), due_until=date(2026, 11, 1)
    )
    assert refs(page) == ["TP-003", "TP-004", "TP-006"]


def test_text_filter_combines_with_other_filters(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, text="network")
    assert set(refs(page)) == {"TP-002", "TP-004"}
    torfaen = queries.find_actions(
        session, ALL_CLEARED, today=TODAY, partner="torfaen", text="network"
    )
    assert refs(torfaen) == ["TP-002"]
    assert not torfaen.any_word


def test_text_falls_back_to_any_word_when_no_row_has_all(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, text="switches zebra")
    assert refs(page) == ["TP-002"]
    assert page.any_word


def test_text_without_searchable_words_finds_nothing(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, text="🙂 ?!")
    assert page.items == () and page.total_visible == 0 and page.withheld_total == 0


# -- visibility and pagination ---------------------------------------------------------------
def test_withheld_are_counted_by_reason_without_content(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, PUBLIC, today=TODAY)
    assert refs(page) == ["TP-005", "TP-001", "TP-002"]
    assert page.withheld == {"exempt": 1, "restricted": 1, "sensitive": 1}
    assert page.candidates == 6


def test_pagination_counts_after_visibility(session: Session, seed: Seed) -> None:
    for n in range(37):
        add_action(
            session, seed, f"TP-{200 + n}", "blaenau-gwent", date(2027, 1, 1) + timedelta(days=n)
        )
    for n in range(5):
        add_action(
            session, seed, f"TP-{300 + n}", "blaenau-gwent", date(2027, 1, 1), exempt_paragraph=14
        )
    session.commit()
    first = queries.find_actions(session, PUBLIC, today=TODAY, partner="blaenau-gwent")
    assert (first.total_visible, first.pages, first.page, first.first, first.last) == (
        37,
        4,
        1,
        1,
        10,
    )
    assert first.withheld == {"exempt": 5} and first.has_next
    assert refs(first)[0] == "TP-200"
    last = queries.find_actions(session, PUBLIC, today=TODAY, partner="blaenau-gwent", page=4)
    assert (len(last.items), last.first, last.last, last.has_next) == (7, 31, 37, False)
    assert refs(last)[-1] == "TP-236"
    beyond = queries.find_actions(session, PUBLIC, today=TODAY, partner="blaenau-gwent", page=99)
    assert beyond.page == 4 and refs(beyond) == refs(last)
    seen = [
        r
        for p in range(1, 5)
        for r in refs(
            queries.find_actions(session, PUBLIC, today=TODAY, partner="blaenau-gwent", page=p)
        )
    ]
    assert len(seen) == len(set(seen)) == 37


def test_an_empty_result_is_one_empty_page(session: Session, seed: Seed) -> None:
    page = queries.find_actions(session, ALL_CLEARED, today=TODAY, partner="srs")
    assert (page.items, page.page, page.pages, page.first, page.last) == ((), 1, 1, 0, 0)


def test_views_are_display_ready(session: Session, seed: Seed) -> None:
    (view,) = queries.find_actions(session, ALL_CLEARED, today=TODAY, rag=Rag.RED).items
    assert view.owner_partner.slug == "torfaen"
    assert view.owner_partner.label("cy") == "Cyngor Bwrdeistref Sirol Torfaen"
    assert view.owner_partner.label("en") == "Torfaen County Borough Council"
    assert (view.owner, view.days_late, view.status, view.rag) == (
        "S. Hughes",
        54,
        "in-progress",
        "red",
    )
    with pytest.raises(AttributeError):
        view.title = "changed"  # type: ignore[misc]


# -- lookups by ref --------------------------------------------------------------------------
def test_get_action_found_withheld_and_not_found(session: Session, seed: Seed) -> None:
    found = queries.get_action(session, PUBLIC, "TP-001", today=TODAY)
    assert (
        isinstance(found, Found) and found.item.title == "Migrate file shares to SharePoint Online"
    )
    withheld = queries.get_action(session, PUBLIC, "tp-3", today=TODAY)
    assert withheld == Withheld("TP-003")
    assert queries.get_action(session, PUBLIC, "TP-999", today=TODAY) == NotFound("TP-999")


def test_get_decision_found_withheld_and_not_found(session: Session, seed: Seed) -> None:
    found = queries.get_decision(session, PUBLIC, "sb-2026-31")
    assert isinstance(found, Found)
    assert found.item.board.name == "Strategic Board" and found.item.decided_on == date(
        2026, 11, 19
    )
    assert queries.get_decision(session, PUBLIC, "SB-2026-032") == Withheld("SB-2026-032")
    assert queries.get_decision(session, PUBLIC, "BC-2026-010") == Withheld("BC-2026-010")
    police = audience(readers=frozenset({"gwent-police"}))
    assert isinstance(queries.get_decision(session, police, "BC-2026-010"), Found)
    assert queries.get_decision(session, PUBLIC, "XX-1") == NotFound("XX-1")


# -- decisions --------------------------------------------------------------------------------
def test_decisions_newest_first_with_board_and_dates(session: Session, seed: Seed) -> None:
    page = queries.find_decisions(session, ALL_CLEARED)
    assert refs(page) == ["FG-2026-044", "SB-2026-032", "SB-2026-031", "BC-2026-010"]
    strategic = queries.find_decisions(session, ALL_CLEARED, board="strategic")
    assert refs(strategic) == ["SB-2026-032", "SB-2026-031"]
    window = queries.find_decisions(
        session, ALL_CLEARED, since=date(2026, 3, 5), until=date(2026, 11, 19)
    )
    assert refs(window) == ["SB-2026-032", "SB-2026-031", "BC-2026-010"]


def test_decisions_by_partner_concerned(session: Session, seed: Seed) -> None:
    add_decision(
        session,
        seed,
        "FG-2026-050",
        "finance-governance",
        date(2026, 6, 1),
        partners=["torfaen", "newport"],
    )
    add_decision(
        session, seed, "FG-2026-051", "finance-governance", date(2026, 6, 2), partners=["newport"]
    )
    add_decision(
        session,
        seed,
        "FG-2026-052",
        "finance-governance",
        date(2026, 6, 3),
        partners=["torfaenish"],
    )
    session.commit()
    assert refs(queries.find_decisions(session, ALL_CLEARED, partner="torfaen")) == ["FG-2026-050"]
    assert refs(queries.find_decisions(session, ALL_CLEARED, partner="newport")) == [
        "FG-2026-051",
        "FG-2026-050",
    ]
    both = queries.find_decisions(session, ALL_CLEARED, partner=["torfaen", "newport"])
    assert refs(both) == ["FG-2026-051", "FG-2026-050"]
    (view,) = queries.find_decisions(session, ALL_CLEARED, partner="torfaen").items
    assert [p.name for p in view.partners] == [
        "Torfaen County Borough Council",
        "Newport City Council",
    ]


def test_decisions_text_ranks_and_filters(session: Session, seed: Seed) -> None:
    add_decision(
        session,
        seed,
        "SB-2026-040",
        "strategic",
        date(2026, 1, 10),
        summary="Noted the data centre costs.",
    )
    session.commit()
    page = queries.find_decisions(session, ALL_CLEARED, text="data centre")
    assert refs(page) == [
        "SB-2026-031",
        "SB-2026-040",
    ]  # title match first, though older rows exist
    assert (
        refs(
            queries.find_decisions(
                session, ALL_CLEARED, board="finance-governance", text="data centre"
            )
        )
        == []
    )


def test_decisions_withheld_counts(session: Session, seed: Seed) -> None:
    page = queries.find_decisions(session, PUBLIC)
    assert refs(page) == ["FG-2026-044", "SB-2026-031"]
    assert page.withheld == {"exempt": 1, "restricted": 1}


# -- meetings ---------------------------------------------------------------------------------
def test_next_meetings_and_question_windows(session: Session, seed: Seed) -> None:
    past = Meeting(board=seed.boards["strategic"], starts_at=datetime(2026, 11, 1, 10, tzinfo=UTC))
    session.add(past)
    session.commit()
    upcoming = queries.next_meetings(session, now=NOW)
    assert [(m.board.slug, m.starts_at.day) for m in upcoming] == [
        ("strategic", 3),
        ("finance-governance", 10),
    ]
    assert upcoming[0].window == "open"
    assert [
        m.board.slug for m in queries.next_meetings(session, now=NOW, board="finance-governance")
    ] == ["finance-governance"]
    assert len(queries.next_meetings(session, now=NOW, limit=1)) == 1
    assert len(queries.open_question_windows(session, now=NOW)) == 2
    closing = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
    assert queries.open_question_windows(session, now=closing) == []
    assert queries.next_meetings(session, now=closing)[0].window == "closed"
    before = datetime(2026, 11, 19, 8, 59, tzinfo=UTC)
    assert queries.open_question_windows(session, now=before) == []
    assert queries.next_meetings(session, now=before)[0].window == "not-yet"


# -- statements per page ----------------------------------------------------------------------
def _statements_for(
    engine: Engine, session: Session, seed: Seed, start: int, end: int
) -> tuple[int, int]:
    """Add rows start..end-1, then count the statements four list queries take."""
    for i in range(start, end):
        partner = ["torfaen", "newport", "monmouthshire"][i % 3]
        add_action(
            session, seed, f"TP-{500 + i}", partner, date(2027, 2, 1), title=f"Upgrade item {i}"
        )
        # A meeting each, so a lazy load per decision would show as extra statements.
        meeting = Meeting(
            board=seed.boards["business-collaboration"],
            starts_at=datetime(2027, 1, 1, 10, tzinfo=UTC) + timedelta(days=i),
        )
        add_decision(
            session,
            seed,
            f"BC-2027-{i + 1:03d}",
            "business-collaboration",
            date(2027, 1, 1),
            title=f"Upgrade decision {i}",
            partners=["torfaen"],
            meeting=meeting,
        )
    session.commit()
    session.expunge_all()
    with counting(engine) as statements:
        queries.find_actions(session, PUBLIC, today=TODAY, text="upgrade")
        queries.find_actions(session, PUBLIC, today=TODAY, due_from=date(2027, 1, 1))
        actions = len(statements)
    session.expunge_all()
    with counting(engine) as statements:
        queries.find_decisions(session, PUBLIC, partner="torfaen", text="upgrade")
        queries.find_decisions(session, PUBLIC, board="business-collaboration")
        decisions = len(statements)
    return actions, decisions


def test_statements_per_page_do_not_grow_with_rows(
    engine: Engine, session: Session, seed: Seed
) -> None:
    few = _statements_for(engine, session, seed, 0, 5)
    session.expunge_all()
    many = _statements_for(engine, session, seed, 5, 50)
    assert few == many
    # PostgreSQL builds a search's tsquery with a statement of its own (once per transaction),
    # so the match keeps one shape whatever the number of words (bot/services/search.py).
    tsquery = 1 if engine.dialect.name == "postgresql" else 0
    assert few[0] <= 4 + tsquery and few[1] <= 6 + tsquery


def test_get_decision_names_only_the_partners_it_concerns(session: Session, seed: Seed) -> None:
    add_decision(session, seed, "FG-2026-050", "finance-governance", date(2026, 11, 2))
    add_decision(
        session,
        seed,
        "FG-2026-051",
        "finance-governance",
        date(2026, 11, 3),
        partners=["torfaen", "nowhere", "newport"],
    )
    session.commit()
    found = queries.get_decision(session, PUBLIC, "fg-2026-51")
    assert isinstance(found, Found)
    assert [(p.slug, p.name, p.name_cy) for p in found.item.partners] == [
        ("torfaen", "Torfaen County Borough Council", "Cyngor Bwrdeistref Sirol Torfaen"),
        ("nowhere", "nowhere", "nowhere"),
        ("newport", "Newport City Council", "Cyngor Dinas Casnewydd"),
    ]
    alone = queries.get_decision(session, PUBLIC, "FG-2026-050")
    assert isinstance(alone, Found) and alone.item.partners == ()
