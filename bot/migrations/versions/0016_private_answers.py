"""private_answers: a command's answer kept for its asker alone (Teams channels' private
answers to commands that change something), so it is shown again without running them again

The revision ids are the two variables below, and nowhere else in this file.
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

TABLE = "private_answers"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("conversation", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("directory_id", sa.String(length=255), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("base", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_private_answers")),
    )
    op.create_index(op.f("ix_private_answers_created_at"), TABLE, ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_private_answers_created_at"), table_name=TABLE)
    op.drop_table(TABLE)
