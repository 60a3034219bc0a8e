"""posted_messages.thread_id: the first post of the thread a post replied in

A link to a Teams channel reply names its thread's first post (`parentMessageId`), which the
Bot Connector's answer to the reply does not repeat; the sender records it as it replies.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posted_messages", sa.Column("thread_id", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posted_messages") as batch:
        batch.drop_column("thread_id")
