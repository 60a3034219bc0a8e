"""channels.webhook_url dropped: Teams' Workflows posting is gone

The bot posts to Teams as the Teams app through the Bot Connector, so a channel no longer
keeps a Workflows webhook address; the collaboration file refuses `webhook_url` with the fix.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channels") as batch:
        batch.drop_column("webhook_url")


def downgrade() -> None:
    op.add_column("channels", sa.Column("webhook_url", sa.String(length=1000), nullable=True))
