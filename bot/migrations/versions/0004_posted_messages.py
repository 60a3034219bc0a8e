"""posted messages: the bot's own posts as Slack's message metadata events report them, so the
outbox can find a post before retrying without reading channel histories

Revision ID: 0004
Revises: 0005 (0003 on its own branch; chained after main's 0005 when main was merged in)
Create Date: 2026-12-01 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posted_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posted_messages")),
        sa.UniqueConstraint("platform", "channel", "message_id", name="platform_channel_message"),
    )
    op.create_index(op.f("ix_posted_messages_key"), "posted_messages", ["key"], unique=False)
    op.create_index(
        op.f("ix_posted_messages_received_at"), "posted_messages", ["received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_posted_messages_received_at"), table_name="posted_messages")
    op.drop_index(op.f("ix_posted_messages_key"), table_name="posted_messages")
    op.drop_table("posted_messages")
