"""Reading filters from typed words: partners, boards, statuses, RAG, dates, pages, refs and
full-text terms, in English and Welsh; canonical words read back to the same query."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain import ActionStatus, Rag
from bot.services.plain_words import (
    DUE_SOON_DAYS,
    OPEN_STATUSES,
    Query,
    command_words,
    parse,
    ref_kind,
    tokens,
    without_filters,
    without_terms,
)
from tests.support.lexicon import example_lexicon

TODAY = date(2026, 11, 23)
LEXICON = example_lexicon()


def q(text: str) -> Query:
    return parse(text, TODAY, LEXICON)


def words_of(query: Query, **options: object) -> str:
    return command_words(query, LEXICON, **options)  # type: ignore[arg-type]


def test_the_design_examples() -> None:
    overdue = q("overdue actions for Torfaen")
    assert (overdue.overdue, overdue.partners, overdue.kinds, overdue.terms) == (
        True,
        ("torfaen",),
        frozenset({"actions"}),
        (),
    )
    decided = q("what did the strategic board decide about the data centre move?")
    assert decided.board == "strategic"
    assert decided.kinds == frozenset({"decisions"})
    assert decided.text == "data centre move"
    since = q("strategic since 2026-01-01")
    assert (since.board, since.since, since.until) == ("strategic", date(2026, 1, 1), None)


@pytest.mark.parametrize(
    ("words", "slug"),
    [
        ("torfaen", "torfaen"),
        ("police", "gwent-police"),
        ("Gwent Police", "gwent-police"),
        ("gwent-police", "gwent-police"),
        ("heddlu", "gwent-police"),
        ("monmouthshire", "monmouthshire"),
        ("mynwy", "monmouthshire"),
        ("Sir Fynwy", "monmouthshire"),
        ("Blaenau Gwent", "blaenau-gwent"),
        ("blaenau-gwent", "blaenau-gwent"),
        ("casnewydd", "newport"),
        ("Newport", "newport"),
        ("srs", "srs"),
    ],
)
def test_partner_words(words: str, slug: str) -> None:
    assert q(words).partners == (slug,)
    assert q(words).terms == ()


@pytest.mark.parametrize(
    ("words", "slug"),
    [
        ("strategic", "strategic"),
        ("strategol", "strategic"),
        ("finance", "finance-governance"),
        ("F&G", "finance-governance"),
        ("fg", "finance-governance"),
        ("finance & governance", "finance-governance"),
        ("finance and governance board", "finance-governance"),
        ("cyllid", "finance-governance"),
        ("business", "business-collaboration"),
        ("b&c", "business-collaboration"),
        ("BC", "business-collaboration"),
        ("busnes", "business-collaboration"),
    ],
)
def test_board_words(words: str, slug: str) -> None:
    assert q(words).board == slug
    assert q(words).terms == ()


def test_first_board_wins_and_later_board_words_are_text() -> None:
    query = q("the SRS strategic board business case")
    assert (query.board, query.partners, query.terms) == ("strategic", (), ("business case",))
    assert q("strategic business").terms == ("business",)


def test_status_rag_and_timing_words() -> None:
    query = q("blocked in progress not started red Amber")
    assert query.statuses == {
        ActionStatus.BLOCKED,
        ActionStatus.IN_PROGRESS,
        ActionStatus.NOT_STARTED,
    }
    assert query.rags == {Rag.RED, Rag.AMBER}
    assert q("open").statuses == OPEN_STATUSES
    assert q("done cancelled").statuses == {ActionStatus.DONE, ActionStatus.CANCELLED}
    assert q("hwyr").overdue and q("overdue").overdue
    assert q("due soon").due_within_days == DUE_SOON_DAYS
    assert q("due-soon").due_within_days == DUE_SOON_DAYS
    assert q("due in 7 days").due_within_days == 7
    assert q("due within 30 days").due_within_days == 30
    assert q("in the next 3 days").due_within_days == 3
    assert q("all").all_statuses


def test_welsh_kind_words() -> None:
    assert q("camau").kinds == {"actions"}
    assert q("penderfyniadau").kinds == {"decisions"}
    assert q("cyfarfodydd").kinds == {"meetings"}


@pytest.mark.parametrize(
    ("words", "since", "until"),
    [
        ("since 2026-01-01", date(2026, 1, 1), None),
        ("from 1/2/2026", date(2026, 2, 1), None),
        ("after 2026-01-31", date(2026, 2, 1), None),
        ("before 2026-06-30", None, date(2026, 6, 29)),
        ("until 2026-06-30", None, date(2026, 6, 30)),
        ("in 2026", date(2026, 1, 1), date(2026, 12, 31)),
        ("in 2026-02", date(2026, 2, 1), date(2026, 2, 28)),
        ("in march", date(2026, 3, 1), date(2026, 3, 31)),
        ("in march 2025", date(2025, 3, 1), date(2025, 3, 31)),
        ("this month", date(2026, 11, 1), date(2026, 11, 30)),
        ("last month", date(2026, 10, 1), date(2026, 10, 31)),
        ("this year", date(2026, 1, 1), date(2026, 12, 31)),
        ("2026-11-19", date(2026, 11, 19), date(2026, 11, 19)),
        ("in 2026 since 2026-06-01", date(2026, 6, 1), date(2026, 12, 31)),
    ],
)
def test_dates(words: str, since: date | None, until: date | None) -> None:
    query = q(words)
    assert (query.since, query.until) == (since, until)
    assert query.terms == () and query.bad_dates == ()


def test_impossible_dates_are_reported_not_searched() -> None:
    query = q("decisions since 2026-02-31 and 31/13/2026")
    assert query.bad_dates == ("2026-02-31", "31/13/2026")
    assert query.terms == ()


def test_pages_refs_and_noise() -> None:
    assert q("actions page 3").page == 3
    assert q("tudalen 2").page == 2
    assert q("page 0").page == 1
    assert q("page 99999999").page == 1  # not a page number: too long
    assert q("the page about wifi").terms == ("page", "wifi")
    assert q("TP-014").refs == ("TP-014",)
    assert q("sb-2026-031 tp-1").refs == ("SB-2026-031", "TP-1")
    assert ref_kind("SB-2026-031") == "decisions" and ref_kind("TP-014") == "actions"
    assert q("/scrutiny @bot #channel & data").terms == ("data",)


def test_stop_words_are_dropped_and_terms_deduplicated() -> None:
    assert q("What is the status of the data, the DATA centre?").terms == ("data", "data centre")
    assert q("what's happened, tell me the status").terms == ()


def test_hints_for_near_misses() -> None:
    assert q("overdu torfean").hints == (("overdu", "overdue"), ("torfean", "torfaen"))
    assert q("network").hints == ()


def test_tokens_strip_punctuation_and_normalise() -> None:
    assert tokens("“Data” (centre)? ＦＧ") == ["data", "centre", "fg"]


@pytest.mark.parametrize(
    "words",
    [
        "overdue actions for Torfaen page 2",
        "decisions strategic since 2026-01-01 data centre",
        "blocked red amber police in 2026",
        "open due within 5 days newport monmouthshire",
        "all finance & governance contributions",
        "strategic business case",
    ],
)
def test_command_words_read_back_to_the_same_query(words: str) -> None:
    query = q(words)
    again = q(words_of(query))
    assert replace(again, kinds=query.kinds) == query
    assert words_of(query, page=5).endswith("page 5")
    assert without_terms(query).terms == () and without_terms(query).page == 1
    assert not without_filters(query).has_filters


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_arbitrary_text_never_raises(text: str) -> None:
    query = parse(text, TODAY, LEXICON)
    assert query.page >= 1
    assert all(term for term in query.terms)


VOCABULARY_SAMPLE = (
    "overdue red amber blocked open all done torfaen police strategic finance business "
    "since until before after in this last month year 2026 2026-01-01 2026-13-01 page 2 "
    "due within next 7 days soon data centre tp-1 sb-2026-001 & the central team p 3 · not "
    "started"
)
words = st.sampled_from(VOCABULARY_SAMPLE.split(" "))


@settings(max_examples=200, deadline=None)
@given(st.lists(words, max_size=12))
def test_canonical_words_are_stable(chosen: list[str]) -> None:
    query = parse(" ".join(chosen), TODAY, LEXICON)
    canonical = words_of(query)
    assert words_of(parse(canonical, TODAY, LEXICON)) == canonical


def test_canonical_words_keep_terms_apart() -> None:
    query = q("last of the month, central to the team")
    assert query.terms == ("last", "month", "central", "team") and query.since is None
    assert words_of(query) == "last · month central · team"
    assert q(words_of(query)) == query
