"""The `seed` fixture loads its rows from a database seeded once per run (SQLite) or per worker
(PostgreSQL) instead of seeding every test's own through the ORM. What a test sees must be
exactly what seeding a fresh database gives: the same rows, the same next ids, the same handles."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from bot.db import make_engine, make_session_factory
from bot.models import Base, Partner
from tests.conftest import TRIGGER_KEPT
from tests.factories import Seed, seed_collaboration

HANDLES = ("partners", "boards", "members", "channels", "actions", "decisions", "meetings")


def _contents(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            table.name: [
                dict(row._mapping)
                for row in conn.execute(table.select().order_by(*table.primary_key.columns))
            ]
            for table in Base.metadata.sorted_tables
            # The triggers' own counter: its number depends on how many writes came before.
            if table.name not in TRIGGER_KEPT
        }


def _columns(row: Any) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def test_seed_is_what_seeding_a_fresh_database_gives(
    seed: Seed, engine: Engine, session: Session, migrated_sqlite_template: Path, tmp_path: Path
) -> None:
    # Seeding ended with a commit; a transaction left open would hold PostgreSQL's table
    # locks through the test, blocking any test that alters or locks a table.
    assert not session.in_transaction()
    fresh_file = tmp_path / "fresh.db"
    shutil.copyfile(migrated_sqlite_template, fresh_file)
    fresh_engine = make_engine(f"sqlite:///{fresh_file}")
    try:
        with make_session_factory(fresh_engine)() as fresh_session:
            fresh = seed_collaboration(fresh_session)
            fresh_session.commit()
            expected = _contents(fresh_engine)
            assert sum(len(rows) for rows in expected.values()) > 20
            assert _contents(engine) == expected

            for name in HANDLES:
                loaded, made = getattr(seed, name), getattr(fresh, name)
                if isinstance(made, dict):
                    assert list(loaded) == list(made), name
                    loaded, made = list(loaded.values()), list(made.values())
                assert [_columns(row) for row in loaded] == [_columns(row) for row in made], name
                # The handles are the test session's own objects, not detached copies.
                assert all(row in session for row in loaded), name

            # Rows a test adds take the ids they would after a fresh seed.
            for target in (session, fresh_session):
                target.add(Partner(slug="extra", name="Extra", name_cy="Ychwanegol"))
                target.flush()
            added = session.query(Partner).filter_by(slug="extra").one()
            assert added.id == fresh_session.query(Partner).filter_by(slug="extra").one().id
            session.rollback()
    finally:
        fresh_engine.dispose()
