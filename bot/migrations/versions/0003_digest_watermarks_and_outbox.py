"""register entries (digest order of decisions), channel digest watermark, outbox "maybe posted",
meeting reminder days per board

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_entries",
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stamped_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_register_entries_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("decision_id", name=op.f("pk_register_entries")),
    )
    op.create_index(op.f("ix_register_entries_seq"), "register_entries", ["seq"], unique=False)
    op.add_column("channels", sa.Column("digest_register_seq", sa.Integer(), nullable=True))
    op.add_column(
        "deliveries",
        sa.Column("maybe_posted", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("boards", sa.Column("meeting_reminder_days", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("boards") as batch_op:
        batch_op.drop_column("meeting_reminder_days")
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_column("maybe_posted")
    with op.batch_alter_table("channels") as batch_op:
        batch_op.drop_column("digest_register_seq")
    op.drop_index(op.f("ix_register_entries_seq"), table_name="register_entries")
    op.drop_table("register_entries")
