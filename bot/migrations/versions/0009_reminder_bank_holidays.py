"""reminders may skip England-and-Wales bank holidays

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-01 16:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reminders set before this change keep posting as they did; new repeating ones skip
    # bank holidays unless the secretariat says otherwise (bot.services.reminders).
    op.add_column(
        "reminders",
        sa.Column("skip_bank_holidays", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("reminders", "skip_bank_holidays")
