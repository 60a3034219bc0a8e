"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), the app built by the real factory, and seeded example rows."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Dialect, Engine, Table, create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from bot.app import ScrutinyApp, create_app
from bot.clock import CLOCK, Clock
from bot.db import make_engine, make_session_factory, migrate
from bot.models import Base
from bot.settings import Settings, load_settings
from tests.factories import Seed, SeedIds, load_seed, seed_collaboration, seed_ids
from tests.support.teams import bot, connector, issuer, served, teams_app

__all__ = ["bot", "connector", "issuer", "served", "teams_app"]
"""The Teams bot's fixtures (tests/support/teams.py), for every test module."""

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
"""Monday 23 November 2026, 9am: the 'now' most tests run at."""

_pg_engine: Engine | None = None

DATABASE_FIXTURE = "database_url"
"""The one fixture through which a test reaches the test database: `engine`, `session`, `app`,
`settings`, `seed` and every module's own database fixtures depend on it."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark `database` every test whose fixtures reach the test database (directly or through
    other fixtures), and every `postgres` test. Only these can behave differently on PostgreSQL,
    so CI's PostgreSQL leg runs `-m database`; the rest use no database or their own SQLite file."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if DATABASE_FIXTURE in fixtures or item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.database)


@pytest.fixture(autouse=True)
def clock() -> Iterator[Clock]:
    """The program's one clock, standing at NOW for every test whatever the machine's date.

    The app, worker, sender, platforms and command line all read it, so a test moves time for
    all of them at once with `clock.set(...)`, `clock.advance(...)` or `with clock.frozen(...)`.
    """
    with CLOCK.frozen(NOW):
        yield CLOCK
    CLOCK.release()


def _worker_database_url(url: str) -> str:
    """TEST_DATABASE_URL for this process: under pytest-xdist each worker gets a database of
    its own, `<name>_gw0`, `<name>_gw1`, ..., created on first use (the fixtures drop the
    schema of the database they are given, so workers must never share one)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    given = make_url(url)
    name = f"{given.database}_{worker}"
    admin = create_engine(given, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return given.set(database=name).render_as_string(hide_password=False)


def _postgres_engine() -> Engine:
    global _pg_engine
    if _pg_engine is None:
        assert TEST_DATABASE_URL
        url = TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        engine = make_engine(_worker_database_url(url))
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        migrate(engine)
        _pg_sequences.update(_owned_sequences(engine))
        _pg_engine = engine
    return _pg_engine


SEEDED = pytest.StashKey[SeedIds]()
"""On a test whose database `database_url` made seeded: the ids `seed` loads its handles by."""


def _wants_seed(request: pytest.FixtureRequest) -> bool:
    return "seed" in request.fixturenames


def _owned_sequences(engine: Engine) -> set[str]:
    """The sequences behind the tables' serial columns (the ones TRUNCATE ... RESTART IDENTITY
    would restart)."""
    names = [t.name for t in Base.metadata.sorted_tables]
    with engine.connect() as conn:
        return set(
            conn.scalars(
                text(
                    "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid"
                    " AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
                    " WHERE s.relkind = 'S' AND d.refobjid::regclass::text = ANY(:tables)"
                ),
                {"tables": names},
            )
        )


_pg_sequences: set[str] = set()

TRIGGER_KEPT = {"register_version"}
"""Tables only the database's triggers write (migration 0015): left to them, neither emptied nor
seeded. Its one row's number only ever moves on, which is all a test may rely on."""


def _empty_postgres(engine: Engine) -> None:
    """Every table empty and every serial column starting again at 1, as after TRUNCATE ...
    RESTART IDENTITY, but touching only the tables and sequences the last test used: TRUNCATE
    makes new files for every table and index, 0.4-0.7 s a test; this takes about 15 ms."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in TRIGGER_KEPT]
    probe = " UNION ALL ".join(
        f"SELECT '{t.name}' WHERE EXISTS (SELECT 1 FROM {t.name})" for t in tables
    )
    with engine.begin() as conn:
        used = set(conn.scalars(text(probe)))
        # Children before parents, so no foreign key is left pointing at a deleted row.
        for table in reversed(tables):
            if table.name in used:
                conn.execute(table.delete())
        started = conn.scalars(
            text(
                "SELECT sequencename FROM pg_sequences"
                " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
            )
        )
        for sequence in set(started) & _pg_sequences:
            conn.exec_driver_sql(f'ALTER SEQUENCE "{sequence}" RESTART')


_pg_seed: tuple[list[tuple[Table, list[dict[str, object]]]], dict[str, int], SeedIds] | None = None
"""This worker's seed on PostgreSQL, made through the ORM once: its rows by table, its
sequences' values and its handles' ids, to put back into an emptied database per test."""


def _seed_postgres(engine: Engine) -> SeedIds:
    """Seed the emptied PostgreSQL test database; the ids of the seeded rows."""
    global _pg_seed
    if _pg_seed is None:
        with CLOCK.frozen(NOW), make_session_factory(engine)() as session:
            ids = seed_ids(seed_collaboration(session))
            session.commit()
        with engine.connect() as conn:
            rows = [
                (t, [dict(r._mapping) for r in conn.execute(t.select())])
                for t in Base.metadata.sorted_tables
                if t.name not in TRIGGER_KEPT
            ]
            started = conn.execute(
                text(
                    "SELECT sequencename, last_value FROM pg_sequences"
                    " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
            )
            sequences = {name: value for name, value in started}
        _pg_seed = ([(t, r) for t, r in rows if r], sequences, ids)
        return ids
    rows_by_table, sequences, ids = _pg_seed
    with engine.begin() as conn:
        for table, rows in rows_by_table:
            conn.execute(insert(table), rows)
        for sequence, value in sequences.items():
            conn.execute(text("SELECT setval(:s, :v)"), {"s": f'"{sequence}"', "v": value})
    return ids


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite file migrated once per run; each test gets a copy (migrating costs far more)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    _checkpoint(engine)
    return path


@pytest.fixture(scope="session")
def seeded_sqlite_template(
    migrated_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, SeedIds]:
    """The migrated template seeded once (at NOW) per run, for the tests that use `seed`; and
    the ids of the seeded rows."""
    path = tmp_path_factory.mktemp("seeded") / "seeded.db"
    shutil.copyfile(migrated_sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    with CLOCK.frozen(NOW), make_session_factory(engine)() as session:
        ids = seed_ids(seed_collaboration(session))
        session.commit()
    _checkpoint(engine)
    return path, ids


def _checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        # Fold the write-ahead log into the main file so a plain copy holds the whole database.
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database for one test; already seeded when the test uses `seed`."""
    if TEST_DATABASE_URL:
        engine = _postgres_engine()
        _empty_postgres(engine)
        if _wants_seed(request):
            request.node.stash[SEEDED] = _seed_postgres(engine)
        yield engine.url.render_as_string(hide_password=False)
        return
    if _wants_seed(request):
        template, ids = request.getfixturevalue("seeded_sqlite_template")
        request.node.stash[SEEDED] = ids
    else:
        template = request.getfixturevalue("migrated_sqlite_template")
    target = tmp_path / "test.db"
    shutil.copyfile(template, target)
    yield f"sqlite:///{target}"


@pytest.fixture
def reply_processes() -> int:
    """SLACK_REPLY_PROCESSES for a Slack app under test: threads, unless a test parametrizes
    it (processes take seconds to start)."""
    return 0


_SHARED_COMPILING: dict[str, tuple[Dialect, Any]] = {}
"""Per backend, the dialect and compiled-statement cache every `engine` in this process uses."""


def _test_engine(url: str) -> Engine:
    """`make_engine(url)`, compiling through this process's one dialect and statement cache for
    its backend. SQLAlchemy caches compiled statements per engine, keyed by its dialect, so a
    new engine per test compiled every statement afresh: about a third of a database test."""
    engine = make_engine(url)
    backend = f"{engine.dialect.name}+{engine.dialect.driver}"
    shared = _SHARED_COMPILING.get(backend)
    if shared is None:
        with engine.connect():
            pass  # the dialect reads the server's version and features on first connect
        _SHARED_COMPILING[backend] = (engine.dialect, engine._compiled_cache)
    else:
        # Statements compiled for one engine of a backend serve every other one of it; each
        # engine's own dialect still initializes its connections (created via its pool).
        engine.dialect, engine._compiled_cache = shared
    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on the test database."""
    eng = _test_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session for arranging and checking data; commit explicitly."""
    with make_session_factory(engine)() as s:
        yield s


def settings_without_platforms(database_url: str) -> Settings:
    """Settings pointing at `database_url`, with no platform credentials."""
    return load_settings(
        database_url=database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
    )


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database, with no platform credentials."""
    return settings_without_platforms(database_url)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> ScrutinyApp:
    """The real app from the real factory."""
    return create_app(settings, engine)


@pytest.fixture
def seed(session: Session, request: pytest.FixtureRequest) -> Seed:
    """A small collaboration: partners, boards, members, channels, a few actions and decisions
    (`seed_collaboration`, made at NOW), loaded from the seeded copy `database_url` made."""
    ids = request.node.stash.get(SEEDED, None)
    if ids is None:
        # Asked for after the database was made (request.getfixturevalue): seed it now.
        result = seed_collaboration(session)
        session.commit()
        return result
    result = load_seed(session, ids)
    # End the loading transaction, as seeding's commit did: on PostgreSQL it would hold its
    # table locks through the test (and block one that alters or locks a table).
    session.commit()
    return result


# -- no thread may outlive the run ----------------------------------------------------------
_THREAD_ORIGINS: dict[int | None, str] = {}
"""Which test started each non-daemon thread still alive after it, to name the culprit."""
THREAD_GRACE_SECONDS = 10.0
EXIT_WATCHDOG_SECONDS = 30.0


@pytest.fixture(autouse=True)
def _note_new_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    for thread in threading.enumerate():
        if thread.ident not in before and not thread.daemon:
            _THREAD_ORIGINS.setdefault(thread.ident, request.node.nodeid)


def _lingering_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a non-daemon thread is still alive at the end: it would keep the process
    from exiting after the last test passed (a run that never ends can never land)."""
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    left = _lingering_threads()
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = _lingering_threads()
    if not left:
        return
    names = "; ".join(
        f"{t.name} (started by {_THREAD_ORIGINS.get(t.ident, 'a fixture or the session')})"
        for t in left
    )
    sys.stderr.write(f"\nnon-daemon threads still running after the last test: {names}\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def end_anyway() -> None:
        time.sleep(EXIT_WATCHDOG_SECONDS)
        sys.stderr.write("the threads above kept the process alive; ending it\n")
        sys.stderr.flush()
        os._exit(int(pytest.ExitCode.TESTS_FAILED))

    # Interpreter shutdown waits for non-daemon threads; this daemon one ends the wait.
    threading.Thread(target=end_anyway, name="exit-watchdog", daemon=True).start()
