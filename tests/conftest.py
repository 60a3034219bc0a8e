"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), the app built by the real factory, and seeded example rows."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.clock import CLOCK, Clock
from bot.db import make_engine, make_session_factory, migrate
from bot.models import Base
from bot.settings import Settings, load_settings
from tests.factories import Seed, seed_collaboration

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
"""Monday 23 November 2026, 9am: the 'now' most tests run at."""

_pg_engine: Engine | None = None


@pytest.fixture(autouse=True)
def clock() -> Iterator[Clock]:
    """The program's one clock, standing at NOW for every test whatever the machine's date.

    The app, worker, sender, platforms and command line all read it, so a test moves time for
    all of them at once with `clock.set(...)`, `clock.advance(...)` or `with clock.frozen(...)`.
    """
    with CLOCK.frozen(NOW):
        yield CLOCK
    CLOCK.release()


def _postgres_engine() -> Engine:
    global _pg_engine
    if _pg_engine is None:
        assert TEST_DATABASE_URL
        url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        migrate(engine)
        _pg_engine = engine
    return _pg_engine


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated once per run; each test gets a copy (migrating costs far more)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        # Fold the write-ahead log into the main file so a plain copy holds the whole schema.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if TEST_DATABASE_URL:
        engine = _postgres_engine()
        _truncate_all(engine)
        yield engine.url.render_as_string(hide_password=False)
        return
    template: Path = request.getfixturevalue("migrated_sqlite_template")
    target = tmp_path / "test.db"
    shutil.copyfile(template, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on the test database."""
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data; commit explicitly."""
    with make_session_factory(engine)() as s:
        yield s


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database, with no platform credentials."""
    return load_settings(
        database_url=database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
        teams_webhook_secret=None,
    )


@pytest.fixture
def app(settings: Settings, engine: Engine) -> ScrutinyApp:
    """The real app from the real factory."""
    return create_app(settings, engine)


@pytest.fixture
def seed(session: Session) -> Seed:
    """A small collaboration: partners, boards, members, channels, a few actions and decisions."""
    result = seed_collaboration(session)
    session.commit()
    return result
