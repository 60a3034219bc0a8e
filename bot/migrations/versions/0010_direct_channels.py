"""direct-message channels (channels.direct_member_id), channel alerts, anonymous questions

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch copy of `channels` (deliveries and reminders point at it).
    # SQLite cannot add a column with a foreign key; its column stays a plain integer.
    references: list[sa.ForeignKey] = []
    if op.get_bind().dialect.name != "sqlite":
        references.append(
            sa.ForeignKey(
                "members.id",
                name=op.f("fk_channels_direct_member_id_members"),
                ondelete="CASCADE",
            )
        )
    op.add_column(
        "channels", sa.Column("direct_member_id", sa.Integer(), *references, nullable=True)
    )
    op.add_column("channels", sa.Column("alerts", sa.JSON(), nullable=False, server_default="[]"))
    op.add_column(
        "boards",
        sa.Column("anonymous_questions", sa.String(16), nullable=False, server_default="no"),
    )
    op.add_column(
        "questions", sa.Column("anonymous", sa.Boolean(), nullable=False, server_default="0")
    )
    op.create_index(
        op.f("ix_channels_direct_member_id"), "channels", ["direct_member_id"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_channels_direct_member_id"), table_name="channels")
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("direct_member_id")
        batch.drop_column("alerts")
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("anonymous")
    with op.batch_alter_table("boards") as batch:
        batch.drop_column("anonymous_questions")
