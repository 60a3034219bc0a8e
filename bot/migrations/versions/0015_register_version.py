"""register_version: one number that changes with every committed change to what answers show

Read-only answers are cached per process (`bot.answer_cache`), keyed by this number. A trigger
on every table an answer reads moves it on, so no write path (chat, import, raw SQL) can change
an answer without changing the key. On SQLite writers run one at a time, so a row trigger that
adds one is enough. On PostgreSQL writers run together and may commit out of the order they
wrote in (as `max(id)` of a table would show), so the trigger is deferred to commit and locks
the one row only there: versions then follow commit order, and the lock is held only for the
instant between a writer's last statement and its commit (no deadlock with row locks taken
earlier). A transaction-local setting keeps it to one update per transaction.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 00:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

VERSIONED = (
    "partners",
    "boards",
    "board_members",
    "members",
    "channels",
    "meetings",
    "attendance",
    "decisions",
    "register_entries",
    "actions",
    "questions",
    "question_supports",
    "reminders",
    "calendar_feeds",
    "posted_messages",
    "member_welcomes",
)
"""Every table an answer may read at this revision (the outbox's deliveries, the audit log and
processed events are not: commands that show them are not cached)."""

PG_FUNCTION = """
CREATE FUNCTION register_version_bump() RETURNS trigger AS $$
BEGIN
    IF current_setting('scrutiny.register_bumped', true) IS DISTINCT FROM
            txid_current()::text THEN
        PERFORM set_config('scrutiny.register_bumped', txid_current()::text, true);
        INSERT INTO register_version (id, n) VALUES (1, 1)
            ON CONFLICT (id) DO UPDATE SET n = register_version.n + 1;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    op.create_table(
        "register_version",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO register_version (id, n) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for table in VERSIONED:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {table}_register_version "
                f"AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION register_version_bump()"
            )
        return
    for table in VERSIONED:
        for verb in ("INSERT", "UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_register_version_{verb.lower()} "
                f"AFTER {verb} ON {table} "
                "BEGIN UPDATE register_version SET n = n + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in VERSIONED:
            op.execute(f"DROP TRIGGER {table}_register_version ON {table}")
        op.execute("DROP FUNCTION register_version_bump()")
    else:
        for table in VERSIONED:
            for verb in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_register_version_{verb}")
    op.drop_table("register_version")
