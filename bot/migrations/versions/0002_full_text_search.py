"""full-text search: SQLite FTS5 tables kept by triggers, PostgreSQL generated tsvector + GIN

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Columns indexed per table, most important first (PostgreSQL weights A, B, C, D follow this order).
SEARCHED = {
    "decisions": ("ref", "title", "summary"),
    "actions": ("ref", "title", "theme", "last_update", "owner"),
}


def _sqlite_upgrade() -> None:
    for table, columns in SEARCHED.items():
        cols = ", ".join(columns)
        new = ", ".join(f"new.{c}" for c in columns)
        old = ", ".join(f"old.{c}" for c in columns)
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


def _postgresql_upgrade() -> None:
    for table, columns in SEARCHED.items():
        weighted = " || ".join(
            f"setweight(to_tsvector('english', coalesce({c}, '')), '{'ABCD'[min(i, 3)]}')"
            for i, c in enumerate(columns)
        )
        op.execute(
            f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({weighted}) STORED"
        )
        op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING GIN (search_vector)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        _sqlite_upgrade()
    elif dialect == "postgresql":
        _postgresql_upgrade()
    else:
        raise RuntimeError(f"full-text search is not implemented for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in SEARCHED:
        if dialect == "sqlite":
            for suffix in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
