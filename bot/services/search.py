"""Full-text search over decisions and actions with the database's own index.

SQLite: the FTS5 tables `decisions_fts` / `actions_fts` (migration 0002), ranked by bm25()
with the title weighted above the summary. PostgreSQL: the generated `search_vector`
column (GIN-indexed), ranked by ts_rank with the same order of weights.

User text never reaches the query syntax: only runs of letters and digits are kept, and on
SQLite each is quoted as an FTS5 string, so quotes, `*`, `NEAR(`, `-`, `:` or `OR` typed by a
person are searched for as words (or ignored) and can never break or widen the query.
"""

from __future__ import annotations

import re
from typing import Literal

from sqlalchemy import Float, Integer, Select, func, literal_column, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Subquery

from bot.models import Action, Decision

Searchable = Literal["actions", "decisions"]

MAX_WORDS = 24
"""Words beyond this are ignored: more narrows nothing useful and only slows the query."""
MAX_WORD_LENGTH = 64

_WORD = re.compile(r"[^\W_]+")

# bm25 weights per FTS column, in migration 0002's column order; a title match must outrank
# a match only in the summary, update or theme, and a ref match outranks everything.
_BM25_WEIGHTS: dict[Searchable, tuple[float, ...]] = {
    "decisions": (10.0, 4.0, 1.0),  # ref, title, summary
    "actions": (10.0, 4.0, 2.0, 1.0, 1.0),  # ref, title, theme, last_update, owner
}
_MODELS: dict[Searchable, type[Action] | type[Decision]] = {
    "actions": Action,
    "decisions": Decision,
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


def _sqlite_match(kind: Searchable, words: list[str], any_word: bool, scored: bool) -> Subquery:
    # Each word is a quoted FTS5 string: inside quotes nothing is an operator.
    expression = (" OR " if any_word else " ").join('"' + w.replace('"', '""') + '"' for w in words)
    weights = ", ".join(str(w) for w in _BM25_WEIGHTS[kind])
    # Counting needs no rank, and bm25 is most of the cost of a match on many rows.
    score = f"-bm25({kind}_fts, {weights})" if scored else "0.0"
    # The table name comes from the closed Searchable set, never from user input.
    statement = text(
        f"SELECT rowid AS id, {score} AS score FROM {kind}_fts WHERE {kind}_fts MATCH :expression"
    ).bindparams(expression=expression)
    return statement.columns(id=Integer, score=Float).subquery(f"{kind}_match")


def _postgresql_match(kind: Searchable, words: list[str], any_word: bool, scored: bool) -> Subquery:
    model = _MODELS[kind]
    vector: ColumnElement[object] = literal_column(f"{kind}.search_vector")
    tsquery: ColumnElement[object]
    if any_word:
        # OR of one plainto_tsquery per word: no user text is ever parsed as tsquery syntax.
        parts = [func.plainto_tsquery("english", w) for w in words]
        tsquery = parts[0]
        for part in parts[1:]:
            tsquery = tsquery.op("||")(part)
    else:
        tsquery = func.plainto_tsquery("english", " ".join(words))
    score = func.ts_rank(vector, tsquery) if scored else literal_column("0.0", Float)
    statement: Select[tuple[int, float]] = select(model.id.label("id"), score.label("score")).where(
        vector.op("@@")(tsquery)
    )
    return statement.subquery(f"{kind}_match")


def match(
    session: Session,
    kind: Searchable,
    user_text: str,
    *,
    any_word: bool = False,
    scored: bool = True,
) -> Subquery | None:
    """A subquery of (id, score) for rows matching every word (or any word), higher score better
    (with `scored=False` the score is 0: for counting, which needs no rank).

    None when `user_text` holds no searchable word (only punctuation or emoji, say): such text
    matches nothing.
    """
    words = search_words(user_text)
    if not words:
        return None
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return _sqlite_match(kind, words, any_word, scored)
    if dialect == "postgresql":
        return _postgresql_match(kind, words, any_word, scored)
    raise RuntimeError(f"full-text search is not implemented for {dialect}")


def ranked_ids(
    session: Session,
    kind: Searchable,
    user_text: str,
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
