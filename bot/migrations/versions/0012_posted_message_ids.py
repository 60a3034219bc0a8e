"""posted_messages: room for Teams conversation and activity ids

A Teams channel is stored as "<team group id>/<channel thread id>" and its activity ids are the
Bot Connector's, both longer than Slack's channel ids and timestamps (64 characters).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posted_messages") as batch:
        batch.alter_column("channel", type_=sa.String(255), existing_nullable=False)
        batch.alter_column("message_id", type_=sa.String(255), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("posted_messages") as batch:
        batch.alter_column("message_id", type_=sa.String(64), existing_nullable=False)
        batch.alter_column("channel", type_=sa.String(64), existing_nullable=False)
