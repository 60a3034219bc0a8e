"""Full-text search over decisions and actions with the database's own index.

SQLite: the FTS5 tables `decisions_fts` / `actions_fts` (migrations 0002 and 0005), ranked by
bm25() with the title weighted above the summary. PostgreSQL: the generated `search_vector`
column (GIN-indexed), ranked by ts_rank with the same order of weights.

Both languages are searched: the Welsh title and summary are in the same index as the English
(PostgreSQL has no Welsh stemmer, so they are indexed with the 'simple' configuration, and each
word is looked for both stemmed as English and as typed).

User text never reaches the query syntax: only runs of letters and digits are kept, and on
SQLite each is quoted as an FTS5 string, so quotes, `*`, `NEAR(`, `-`, `:` or `OR` typed by a
person are searched for as words (or ignored) and can never break or widen the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

from sqlalchemy import Connection, Float, Integer, Table, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Subquery

Searchable = Literal["actions", "decisions"]
SearchText = str | Sequence[Sequence[str]]
"""Text typed by a person (every word must match), or groups that must each match through any
one of their alternatives, each alternative a few words: (("canolfan ddata", "data centre"),
("move", "symud"))."""

MAX_WORDS = 24
"""Words beyond this are ignored: more narrows nothing useful and only slows the query."""
MAX_WORD_LENGTH = 64

_WORD = re.compile(r"[^\W_]+")

# bm25 weights per FTS column, in migration 0005's column order; a title match (in either
# language) must outrank a match only in the summary, update or theme, and a ref match
# outranks everything.
_BM25_WEIGHTS: dict[Searchable, tuple[float, ...]] = {
    "decisions": (10.0, 4.0, 1.0, 4.0, 1.0),  # ref, title, summary, title_cy, summary_cy
    "actions": (10.0, 4.0, 2.0, 1.0, 1.0, 4.0),  # ref, title, theme, last_update, owner, title_cy
}


def search_words(user_text: str) -> list[str]:
    """The distinct words of `user_text` that are searched for, lower-cased, in order."""
    seen: list[str] = []
    for word in _WORD.findall(user_text.lower()):
        word = word[:MAX_WORD_LENGTH]
        if word not in seen:
            seen.append(word)
        if len(seen) == MAX_WORDS:
            break
    return seen


Alternatives = list[list[str]]


def search_groups(text: SearchText) -> list[Alternatives]:
    """The groups searched for: each a list of alternatives, each a list of words."""
    if isinstance(text, str):
        return [[[word]] for word in search_words(text)]
    groups: list[Alternatives] = []
    for group in text[:MAX_WORDS]:
        alternatives = [search_words(alternative) for alternative in group]
        alternatives = [a for a in alternatives if a][:MAX_WORDS]
        if alternatives:
            groups.append(alternatives)
    return groups


def _fts5_string(word: str) -> str:
    # Each word is a quoted FTS5 string: inside quotes nothing is an operator.
    return '"' + word.replace('"', '""') + '"'


def _sqlite_match(
    kind: Searchable, groups: list[Alternatives], any_word: bool, scored: bool
) -> Subquery:
    if any_word:
        expression = " OR ".join(
            "(" + " ".join(_fts5_string(w) for w in alternative) + ")"
            for group in groups
            for alternative in group
        )
    else:
        expression = " AND ".join(
            "("
            + " OR ".join(
                "(" + " ".join(_fts5_string(w) for w in alternative) + ")" for alternative in group
            )
            + ")"
            for group in groups
        )
    weights = ", ".join(str(w) for w in _BM25_WEIGHTS[kind])
    # Counting needs no rank, and bm25 is most of the cost of a match on many rows.
    score = f"-bm25({kind}_fts, {weights})" if scored else "0.0"
    # The table name comes from the closed Searchable set, never from user input.
    statement = text(
        f"SELECT rowid AS id, {score} AS score FROM {kind}_fts WHERE {kind}_fts MATCH :expression"
    ).bindparams(expression=expression)
    return statement.columns(id=Integer, score=Float).subquery(f"{kind}_match")


# The tsquery of a search, built in the database from three bound arrays (group, alternative and
# word of each searched word) so the statement has one shape whatever the number of words and
# SQLAlchemy compiles it once. Each word still goes through its own plainto_tsquery, so no user
# text is ever parsed as tsquery syntax; only the database's own rendering of those tsqueries
# is, parenthesised and joined into the same tree the && and || operators build. A word matches
# its English stem or itself as typed (the Welsh columns are unstemmed); an English stop word is
# left out (NULL, which string_agg skips) rather than demanding "the" in the Welsh text, as &&
# and || leave out an empty operand. The words of an alternative are joined with & (and),
# alternatives with | (or), groups with & (and).
_POSTGRESQL_TSQUERY = text("""
    WITH each_word AS (
        SELECT t.g, t.a, t.n,
            CASE WHEN numnode(plainto_tsquery('english', t.w)) = 0 THEN NULL
                ELSE (plainto_tsquery('english', t.w) || plainto_tsquery('simple', t.w))::text
            END AS query
        FROM unnest(CAST(:search_groups AS integer[]), CAST(:search_alternatives AS integer[]),
            CAST(:search_words AS text[])) WITH ORDINALITY AS t(g, a, w, n)
    ), each_alternative AS (
        SELECT g, a, string_agg('(' || query || ')', ' & ' ORDER BY n) AS query
        FROM each_word GROUP BY g, a
    ), each_group AS (
        SELECT g, string_agg('(' || query || ')', ' | ' ORDER BY a) AS query
        FROM each_alternative GROUP BY g
    )
    SELECT coalesce(string_agg('(' || query || ')', ' & ' ORDER BY g), '') FROM each_group
""")


def _postgresql_tsquery(session: Session, groups: list[Alternatives]) -> str:
    """The tsquery, as PostgreSQL renders it, that matches every group of `groups`; built once
    per transaction of `session` (a list counts its matches and then reads a page of them)."""
    session.connection()  # begins the transaction the cache belongs to
    transaction = session.get_transaction()
    cached: tuple[object, dict[object, str]] | None = session.info.get("search_tsqueries")
    if cached is None or cached[0] is not transaction:
        cached = session.info["search_tsqueries"] = (transaction, {})
    key = tuple(tuple(tuple(alternative) for alternative in group) for group in groups)
    if key in cached[1]:
        return cached[1][key]
    numbered = [
        (g, a, word)
        for g, group in enumerate(groups)
        for a, alternative in enumerate(group)
        for word in alternative
    ]
    built = str(
        session.scalar(
            _POSTGRESQL_TSQUERY,
            {
                "search_groups": [g for g, _, _ in numbered],
                "search_alternatives": [a for _, a, _ in numbered],
                "search_words": [w for _, _, w in numbered],
            },
        )
    )
    cached[1][key] = built
    return built


def _postgresql_match(
    session: Session, kind: Searchable, groups: list[Alternatives], any_word: bool, scored: bool
) -> Subquery:
    if any_word:
        # Any one alternative of any group: one group of them all, so one statement serves both.
        groups = [[alternative for group in groups for alternative in group]]
    # Built first and bound as one value, so the planner sees the tsquery itself and estimates
    # its matches as it did when the query was written out word by word (a tsquery computed in
    # the same statement is unknown at planning and gave slower plans).
    query = "CAST(:tsquery AS tsquery)"
    # Counting needs no rank, and ts_rank is most of the cost of a match on many rows.
    score = f"ts_rank({kind}.search_vector, {query})" if scored else "0.0"
    # The table name comes from the closed Searchable set, never from user input.
    statement = text(
        f"SELECT {kind}.id AS id, {score} AS score FROM {kind} "
        f"WHERE {kind}.search_vector @@ {query}"
    ).bindparams(tsquery=_postgresql_tsquery(session, groups))
    return statement.columns(id=Integer, score=Float).subquery(f"{kind}_match")


def match(
    session: Session,
    kind: Searchable,
    user_text: SearchText,
    *,
    any_word: bool = False,
    scored: bool = True,
) -> Subquery | None:
    """A subquery of (id, score) for rows matching every word or group (or any one of them),
    higher score better (with `scored=False` the score is 0: for counting, which needs no
    rank).

    None when `user_text` holds no searchable word (only punctuation or emoji, say): such text
    matches nothing.
    """
    groups = search_groups(user_text)
    if not groups:
        return None
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return _sqlite_match(kind, groups, any_word, scored)
    if dialect == "postgresql":
        return _postgresql_match(session, kind, groups, any_word, scored)
    raise RuntimeError(f"full-text search is not implemented for {dialect}")


def ranked_ids(
    session: Session,
    kind: Searchable,
    user_text: SearchText,
    *,
    any_word: bool = False,
    limit: int | None = None,
) -> list[int]:
    """Ids of matching rows, best first. Visibility is NOT applied: callers filter with
    `visibility.visible_to`."""
    subquery = match(session, kind, user_text, any_word=any_word)
    if subquery is None:
        return []
    statement = select(subquery.c.id).order_by(subquery.c.score.desc(), subquery.c.id).limit(limit)
    return list(session.scalars(statement))


@contextmanager
def index_filled_once(connection: Connection, table: Table) -> Iterator[None]:
    """Rows inserted in the block into an empty table are indexed once at its end, not one by
    one (on SQLite, inside a transaction; elsewhere the block runs as it is).

    FTS5's 'rebuild' builds the index of an external-content table from the table itself: the
    same index the per-row insert trigger would have built, in a fraction of the time. The
    trigger is dropped for the block and created again from its stored SQL whatever happens;
    both are part of the caller's transaction, so no other connection ever sees it missing.
    Outside a transaction (the sqlite3 module's own handling) the DDL would commit on its own,
    so the trigger is left alone there.
    """
    trigger = f"{table.name}_fts_insert"
    if (
        connection.dialect.name != "sqlite"
        or not connection.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
    ):
        yield
        return
    created = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,)
    ).scalar()
    if created is None or connection.execute(select(select(table.c.id).exists())).scalar():
        yield
        return
    connection.exec_driver_sql(f'DROP TRIGGER "{trigger}"')
    try:
        yield
        connection.exec_driver_sql(
            f"INSERT INTO {table.name}_fts({table.name}_fts) VALUES ('rebuild')"
        )
    finally:
        connection.exec_driver_sql(created)
