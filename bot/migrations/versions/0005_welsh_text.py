"""Welsh text of records: decision title and summary, action title, meeting location; full-text
search over both languages

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

# English columns first, in migration 0002's order, then the Welsh ones: search.py's bm25 weights
# follow this order. The Welsh columns are indexed with the 'simple' configuration on PostgreSQL
# (it has no Welsh stemmer) and with the same tokenizer as the English on SQLite.
SEARCHED_EN = {
    "decisions": ("ref", "title", "summary"),
    "actions": ("ref", "title", "theme", "last_update", "owner"),
}
SEARCHED_CY = {
    "decisions": ("title_cy", "summary_cy"),
    "actions": ("title_cy",),
}
# PostgreSQL weights of the Welsh columns: the same as their English counterparts.
WEIGHTS_CY = {"title_cy": "B", "summary_cy": "C"}
NEW_COLUMNS = {
    "decisions": (("title_cy", sa.String(length=500)), ("summary_cy", sa.Text())),
    "actions": (("title_cy", sa.String(length=500)),),
    "meetings": (("location_cy", sa.String(length=300)),),
}


def _sqlite_fts(table: str, columns: tuple[str, ...]) -> None:
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    for suffix in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
    op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    op.execute(
        f"CREATE VIRTUAL TABLE {table}_fts USING fts5({cols}, content='{table}', "
        f"content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {table}_fts(rowid, {cols}) VALUES (new.id, {new}); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {table}_fts({table}_fts, rowid, {cols}) "
        f"VALUES ('delete', old.id, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_update AFTER UPDATE ON {table} BEGIN "
        f"INSERT INTO {table}_fts({table}_fts, rowid, {cols}) "
        f"VALUES ('delete', old.id, {old}); "
        f"INSERT INTO {table}_fts(rowid, {cols}) VALUES (new.id, {new}); END"
    )
    op.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")


def _postgresql_vector(table: str, welsh: bool) -> None:
    parts = [
        f"setweight(to_tsvector('english', coalesce({c}, '')), '{'ABCD'[min(i, 3)]}')"
        for i, c in enumerate(SEARCHED_EN[table])
    ]
    if welsh:
        parts += [
            f"setweight(to_tsvector('simple', coalesce({c}, '')), '{WEIGHTS_CY[c]}')"
            for c in SEARCHED_CY[table]
        ]
    op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
    op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({' || '.join(parts)}) STORED"
    )
    op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING GIN (search_vector)")


def _search(welsh: bool) -> None:
    dialect = op.get_bind().dialect.name
    for table in SEARCHED_EN:
        if dialect == "sqlite":
            _sqlite_fts(table, SEARCHED_EN[table] + (SEARCHED_CY[table] if welsh else ()))
        elif dialect == "postgresql":
            _postgresql_vector(table, welsh)
        else:
            raise RuntimeError(f"full-text search is not implemented for {dialect}")


def upgrade() -> None:
    for table, columns in NEW_COLUMNS.items():
        for name, type_ in columns:
            op.add_column(
                table, sa.Column(name, type_, nullable=False, server_default=sa.text("''"))
            )
    _search(welsh=True)


def downgrade() -> None:
    # The search index must stop reading the Welsh columns before they can go.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in SEARCHED_EN:
            for suffix in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    else:
        for table in SEARCHED_EN:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
    for table, columns in NEW_COLUMNS.items():
        with op.batch_alter_table(table) as batch_op:
            for name, _type in columns:
                batch_op.drop_column(name)
    _search(welsh=False)
