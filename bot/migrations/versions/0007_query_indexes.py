"""indexes for the query services: lists in display order, counts by classification, owners

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:00:00

Every list pages in its display order straight from an index (newest decisions first, of one
board or all; actions soonest due first, of one owner); the withheld counts group rows by
their classification from a covering index rather than reading the table; actions by owner,
status and due date. Refs already have their unique indexes (looked up without `upper()`).
On PostgreSQL a `json` column cannot be a b-tree key, so it is carried in INCLUDE, and the
partners a decision concerns get a GIN index for `@>`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CLASSIFICATION = ["marking", "exempt_paragraph"]


def _covering(name: str, table: str, keys: list[str]) -> None:
    """An index on `keys` plus the classification, `restricted_to` included for counting."""
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(name, table, [*keys, *CLASSIFICATION], postgresql_include=["restricted_to"])
    else:
        op.create_index(name, table, [*keys, *CLASSIFICATION, "restricted_to"])


def upgrade() -> None:
    # Prefixes of the new (board, date, ref) and (date, ref) indexes: no longer needed.
    op.drop_index("ix_decisions_board_id", table_name="decisions")
    op.drop_index("ix_decisions_decided_on", table_name="decisions")
    op.create_index("ix_decisions_newest", "decisions", ["decided_on", "ref"])
    op.create_index("ix_decisions_board_newest", "decisions", ["board_id", "decided_on", "ref"])
    _covering("ix_decisions_classification", "decisions", [])
    _covering("ix_decisions_board_classification", "decisions", ["board_id"])

    op.create_index(
        "ix_actions_owner_status_due", "actions", ["owner_partner_id", "status", "due_date"]
    )
    op.create_index(
        "ix_actions_due_order", "actions", [sa.text("(due_date IS NULL)"), "due_date", "ref"]
    )
    _covering("ix_actions_classification", "actions", [])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_decisions_partners ON decisions USING GIN ((CAST(partners AS JSONB)))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_decisions_partners", table_name="decisions")
    for name in (
        "ix_actions_classification",
        "ix_actions_due_order",
        "ix_actions_owner_status_due",
    ):
        op.drop_index(name, table_name="actions")
    for name in (
        "ix_decisions_board_classification",
        "ix_decisions_classification",
        "ix_decisions_board_newest",
        "ix_decisions_newest",
    ):
        op.drop_index(name, table_name="decisions")
    op.create_index("ix_decisions_decided_on", "decisions", ["decided_on"])
    op.create_index("ix_decisions_board_id", "decisions", ["board_id"])
