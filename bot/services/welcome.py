"""The welcome a member gets the first time they open the bot's messages, once per platform."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from bot.domain import Platform
from bot.models import Member, MemberWelcome


def first_visit(session: Session, member: Member, platform: Platform, at: datetime) -> bool:
    """Remember that `member` was welcomed on `platform`; True only the first time (two
    deliveries arriving together cannot both win: the insert does nothing on a conflict)."""
    table = MemberWelcome.__table__
    assert isinstance(table, Table)
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(member_id=member.id, platform=platform.value, welcomed_at=at)
        .on_conflict_do_nothing(index_elements=["member_id", "platform"])
        .returning(table.c.member_id)
    )
    return session.execute(statement).scalar_one_or_none() is not None
