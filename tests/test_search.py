"""Full-text search through the database's own index (SQLite FTS5 or PostgreSQL tsvector):
kept in step with inserts, updates and deletes, ranked, and safe against any typed text."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import case, event, func, select, text
from sqlalchemy.engine import Connection, ExecutionContext
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.services import queries, search
from bot.visibility import Audience
from tests.conftest import NOW
from tests.factories import Seed, add_action, add_decision
from tests.test_queries import ALL_CLEARED

HOSTILE = [
    '"',
    '""',
    "'",
    'data "centre',
    "*",
    "data*",
    "NEAR(",
    "NEAR(data centre, 2)",
    "data NEAR centre",
    "-data",
    "data -centre",
    "title:data",
    ":",
    "^data",
    "data AND OR NOT",
    "OR",
    "AND",
    "NOT",
    "(",
    ")",
    "{title}: data",
    "data & | ! <-> centre",
    "'; DROP TABLE actions; --",
    "\\",
    "\x00",
    "ŵ ŷ â ê",
    "Caerffili ÿ ðæ",
    "数据中心",
    "🙂🚀",
    "💾 data 💾",
    "data" * 2500,
    "a " * 5000,
    " ".join(f"w{i}" for i in range(2000)),
    "",
    "   ",
]


def ids_of(session: Session, kind: search.Searchable, text: str, **kw: bool) -> list[int]:
    return search.ranked_ids(session, kind, text, **kw)


def test_search_words_keeps_letters_and_digits_only() -> None:
    assert search.search_words('Data "centre" NEAR(move)* -2027/28 data') == [
        "data",
        "centre",
        "near",
        "move",
        "2027",
        "28",
    ]
    assert search.search_words("🙂 ?! :") == []
    assert len(search.search_words(" ".join(f"w{i}" for i in range(100)))) == search.MAX_WORDS
    assert search.search_words("x" * 500) == ["x" * search.MAX_WORD_LENGTH]


def test_index_follows_insert_update_and_delete_of_actions(session: Session, seed: Seed) -> None:
    action = add_action(
        session, seed, "TP-050", "newport", date(2027, 1, 1), title="Retire the mainframe"
    )
    session.commit()
    assert ids_of(session, "actions", "mainframe") == [action.id]
    action.title = "Retire the tape library"
    session.commit()
    assert ids_of(session, "actions", "mainframe") == []
    assert ids_of(session, "actions", "tape library") == [action.id]
    action.last_update = "Vendor chosen: Quantum"
    session.commit()
    assert ids_of(session, "actions", "quantum") == [action.id]
    session.delete(action)
    session.commit()
    assert ids_of(session, "actions", "tape") == []
    assert ids_of(session, "actions", "quantum") == []


def test_index_follows_insert_update_and_delete_of_decisions(session: Session, seed: Seed) -> None:
    decision = add_decision(
        session,
        seed,
        "BC-2026-020",
        "business-collaboration",
        date(2026, 5, 1),
        title="Adopted the learning log",
        summary="Partners share lessons monthly.",
    )
    session.commit()
    assert ids_of(session, "decisions", "lessons") == [decision.id]
    decision.summary = "Partners share findings quarterly."
    session.commit()
    assert ids_of(session, "decisions", "lessons") == []
    assert ids_of(session, "decisions", "quarterly findings") == [decision.id]
    session.delete(decision)
    session.commit()
    assert ids_of(session, "decisions", "learning") == []


def test_title_match_ranks_above_summary_only_match(session: Session, seed: Seed) -> None:
    summary_only = add_decision(
        session,
        seed,
        "FG-2026-060",
        "finance-governance",
        date(2026, 12, 1),
        title="Noted the quarterly report",
        summary="The report mentions the telephony contract and the telephony budget twice.",
    )
    in_title = add_decision(
        session,
        seed,
        "FG-2026-061",
        "finance-governance",
        date(2026, 1, 1),
        title="Renewed the telephony contract",
        summary="",
    )
    session.commit()
    assert ids_of(session, "decisions", "telephony") == [in_title.id, summary_only.id]
    noted = add_action(
        session,
        seed,
        "TP-061",
        "torfaen",
        None,
        title="Quarterly review",
        last_update="telephony audit",
    )
    titled = add_action(session, seed, "TP-062", "torfaen", None, title="Telephony audit")
    session.commit()
    assert ids_of(session, "actions", "telephony") == [titled.id, noted.id]


def test_every_word_must_match_unless_any_word_is_asked(session: Session, seed: Seed) -> None:
    strict = ids_of(session, "decisions", "data centre contributions")
    assert strict == []
    loose = ids_of(session, "decisions", "data centre contributions", any_word=True)
    assert {seed.decisions["SB-2026-031"].id, seed.decisions["FG-2026-044"].id} == set(loose)


def test_stemming_finds_other_forms(session: Session, seed: Seed) -> None:
    assert ids_of(session, "actions", "migration") == [seed.actions["TP-001"].id]


def test_operators_in_user_text_are_plain_words(session: Session, seed: Seed) -> None:
    # "OR" typed by a person must not widen the search to every action with either word.
    assert ids_of(session, "actions", "switches OR sharepoint") == []
    # "NOT" and "-" must not negate: nothing but the action about switches may come back
    # ("not" is a word on SQLite, a stop word PostgreSQL drops).
    switches = {seed.actions["TP-002"].id}
    assert set(ids_of(session, "actions", "NOT switches")) <= switches
    assert set(ids_of(session, "actions", "-switches")) == switches


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_never_raises(session: Session, seed: Seed, text: str) -> None:
    for kind in ("actions", "decisions"):
        search.ranked_ids(session, kind, text)
        search.ranked_ids(session, kind, text, any_word=True)
    queries.find_actions(session, ALL_CLEARED, today=NOW.date(), text=text)
    queries.find_decisions(session, ALL_CLEARED, text=text)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=st.text(max_size=300))
def test_arbitrary_text_never_raises(session: Session, seed: Seed, text: str) -> None:
    for any_word in (False, True):
        search.ranked_ids(session, "actions", text, any_word=any_word)
        search.ranked_ids(session, "decisions", text, any_word=any_word)
    audience = Audience(ALL_CLEARED.clearance, ALL_CLEARED.exempt_access, ALL_CLEARED.readers)
    queries.find_decisions(session, audience, text=text)


def compiled_statements(session: Session, work: Callable[[], object]) -> set[int]:
    """Ids of the distinct compiled statements `work` ran through `session`'s engine (each kept
    alive until the end, so no id is reused)."""
    engine = session.get_bind()
    compiled: dict[int, object] = {}

    def note(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext,
        executemany: bool,
    ) -> None:
        if getattr(context, "compiled", None) is not None:
            compiled[id(context.compiled)] = context.compiled  # type: ignore[attr-defined]

    event.listen(engine, "before_cursor_execute", note)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return set(compiled)


WORD_COUNTS = ("data", "data centre", "data centre move", "data centre move telephony board")


def test_one_compiled_statement_whatever_the_number_of_words(session: Session, seed: Seed) -> None:
    # A statement whose shape followed the number of words was compiled anew for almost every
    # question: most of a search's CPU on PostgreSQL.
    for kind in ("actions", "decisions"):
        one_word = compiled_statements(
            session, lambda kind=kind: search.ranked_ids(session, kind, WORD_COUNTS[0])
        )
        every_count = compiled_statements(
            session,
            lambda kind=kind: [
                search.ranked_ids(session, kind, text, any_word=any_word)
                for text in WORD_COUNTS
                for any_word in (False, True)
            ],
        )
        # On PostgreSQL the tsquery is built by a statement of its own before the match.
        assert every_count == one_word and len(one_word) <= 2, kind
    grouped = compiled_statements(
        session,
        lambda: [
            search.ranked_ids(session, "decisions", groups)
            for groups in (
                [["data"]],
                [["canolfan ddata", "data centre"], ["move", "symud"]],
                [["a b c", "d"], ["e"], ["f", "g", "h i"]],
            )
        ],
    )
    assert len(grouped) <= 2
    one_word = compiled_statements(
        session, lambda: queries.find_decisions(session, ALL_CLEARED, text=WORD_COUNTS[0])
    )
    every_count = compiled_statements(
        session,
        lambda: [queries.find_decisions(session, ALL_CLEARED, text=t) for t in WORD_COUNTS],
    )
    assert every_count == one_word


@pytest.mark.parametrize(
    "typed",
    [
        "O'Brien & Co: data (centre)!",
        "o'brien|co \\ data:* !centre",
        "(o) brien <-> 'co' & data & centre",
        "o\\'brien co data centre\\",
    ],
)
def test_tsquery_syntax_in_words_finds_the_row(session: Session, seed: Seed, typed: str) -> None:
    # Only letters and digits are searched for: the punctuation of tsquery and FTS5 is neither
    # an error nor an operator, and the row holding the words is found.
    title = {"title": "O'Brien & Co: data (centre) renewed"}
    decision = add_decision(session, seed, "FG-2026-062", "strategic", date(2026, 12, 2), **title)
    session.commit()
    assert ids_of(session, "decisions", typed) == [decision.id]
    assert ids_of(session, "decisions", typed, any_word=True)[0] == decision.id
    assert search.ranked_ids(session, "decisions", [[typed, "nothing"], ["co"]]) == [decision.id]


def operators_tsquery(groups: list[search.Alternatives]) -> ColumnElement[Any]:
    """The tsquery of `groups` written out word by word with && and || (as the search did before
    its one-shape build): a word its English stem or itself as typed, a stop word empty."""

    def fold(parts: list[ColumnElement[Any]], operator: str) -> ColumnElement[Any]:
        combined = parts[0]
        for part in parts[1:]:
            combined = combined.op(operator)(part)
        return combined

    def word(w: str) -> ColumnElement[Any]:
        english: ColumnElement[Any] = func.plainto_tsquery("english", w)
        as_typed = english.op("||")(func.plainto_tsquery("simple", w))
        return case((func.numnode(english) == 0, english), else_=as_typed)

    return fold([fold([fold([word(w) for w in a], "&&") for a in g], "||") for g in groups], "&&")


SEARCHED = st.lists(
    st.sampled_from([*"ab'&|!:()*\\ -ŵ1", "the ", "data ", "moves ", "o'brien "]), max_size=12
).map("".join)
"""Typed text with tsquery operators, quotes, backslashes, stop words and stemmed words."""


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    typed=st.lists(st.lists(SEARCHED, min_size=1, max_size=3), min_size=1, max_size=4),
    any_word=st.booleans(),
)
def test_postgresql_tsquery_is_the_word_by_word_one(
    session: Session, typed: list[list[str]], any_word: bool
) -> None:
    # The same tsquery tree means the same matches and the same ts_rank as before.
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the tsquery is PostgreSQL's")
    groups = search.search_groups(typed)
    if not groups:
        return
    if any_word:
        groups = [[alternative for group in groups for alternative in group]]
    built = search._postgresql_tsquery(session, groups)
    same = select(operators_tsquery(groups).op("=")(text("CAST(:built AS tsquery)")))
    assert session.scalar(same, {"built": built}), (groups, built)
