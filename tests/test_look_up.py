"""Look-ups without a Session (`db.look_up`, `DriverSelect` on the driver's cursor): the same
answers as through a unit of work, driver errors raised as SQLAlchemy's, and a pooled
connection that died (killed, or the database restarted) survived by the next look-up."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, column, create_engine, select, table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from bot import db
from bot.db import DriverSelect, look_up, make_session_factory, unit_of_work
from bot.domain import Marking
from bot.models import Partner
from bot.services import queries
from bot.services.queries import Found
from bot.visibility import Audience
from tests.factories import Seed

PUBLIC = Audience(Marking.OFFICIAL, False, frozenset(), "test")
POLICE = Audience(Marking.OFFICIAL, False, frozenset({"gwent-police"}), "test")
LOOKED_UP = [
    (PUBLIC, "sb-2026-31"),
    (PUBLIC, "SB-2026-032"),
    (PUBLIC, "BC-2026-010"),
    (POLICE, "BC-2026-010"),
    (PUBLIC, "XX-1"),
]


def _postgres_only(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("killing a server connection needs PostgreSQL")


def _backend(connection: Connection) -> int:
    return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def _kill(engine: Engine, pid: int) -> None:
    """End backend `pid` from a connection outside `engine`'s pool, as a restart would."""
    killer = create_engine(engine.url, poolclass=NullPool)
    with killer.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    killer.dispose()


def test_a_look_up_answers_as_a_unit_of_work_does(
    engine: Engine, session: Session, seed: Seed
) -> None:
    for audience, ref in LOOKED_UP:
        alone = look_up(engine, lambda c, a=audience, r=ref: queries.get_decision(c, a, r))
        assert alone == queries.get_decision(session, audience, ref), ref
    kinds = [type(queries.get_decision(session, a, r)).__name__ for a, r in LOOKED_UP]
    assert kinds == ["Found", "Withheld", "Withheld", "Found", "NotFound"]


def test_a_driver_error_is_raised_as_sqlalchemys_and_not_retried(
    engine: Engine, seed: Seed
) -> None:
    missing = DriverSelect(select(column("slug")).select_from(table("no_such_partners")))
    calls = []

    def work(connection: Connection) -> object:
        calls.append(connection)
        return missing.first(connection, {})

    with pytest.raises(DBAPIError) as raised:
        look_up(engine, work)
    assert not raised.value.connection_invalidated and "no_such_partners" in str(raised.value)
    assert len(calls) == 1


def test_a_look_up_survives_its_pooled_connection_being_killed(
    engine: Engine, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(engine)
    # No ping on checkout: the dead connection is met by the look-up's own statement.
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    first = look_up(engine, _backend)
    _kill(engine, first)
    found = look_up(engine, lambda c: queries.get_decision(c, PUBLIC, "sb-2026-31"))
    assert isinstance(found, queries.Found) and found.item.ref == "SB-2026-031"
    assert look_up(engine, _backend) != first


def test_a_unit_of_work_on_a_connection_idle_past_the_ping_gets_a_live_one(
    engine: Engine, seed: Seed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(engine)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as session:
        first = _backend(session.connection())
    _kill(engine, first)
    with unit_of_work(factory) as session:
        assert "torfaen" in session.scalars(select(Partner.slug)).all()
        assert _backend(session.connection()) != first


def test_on_postgresql_only_the_look_ups_are_prepared(engine: Engine, seed: Seed) -> None:
    """Lists and searches are planned for their values each time (a plan made once for any
    values was slower for searches); a ref look-up, one fixed shape, is prepared once."""
    _postgres_only(engine)
    with engine.connect() as connection:
        for _ in range(8):  # past psycopg's usual threshold of five runs
            assert isinstance(queries.get_decision(connection, PUBLIC, "sb-2026-31"), Found)
            assert connection.execute(select(Partner.slug).where(Partner.id > 0)).all()
            connection.commit()
            connection.connection.commit()
        prepared = connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements")
        statements = list(prepared.scalars())
    assert len(statements) == 1 and "decisions.ref IN" in statements[0]
