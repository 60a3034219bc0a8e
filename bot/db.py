"""Engine, sessions (one per unit of work) and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.i18n import _

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while the worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


IMMEDIATE = "sqlite_begin_immediate"
"""Connection execution option: on SQLite, begin with the write lock (`unit_of_work` sets it)."""


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes must upgrade its lock, and in WAL mode
    # that fails at once ("database is locked"; busy_timeout does not help) if another writer
    # committed meanwhile. Units of work therefore take the write lock at BEGIN, so a second
    # writer waits (up to busy_timeout) instead. Other connections keep the sqlite3 module's
    # own handling (no transaction until the first write), so reads see the latest data and
    # never hold writers up. Savepoints (begin_nested) nest inside BEGIN IMMEDIATE as usual.
    if connection.get_execution_options().get(IMMEDIATE, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for SQLite (file created under its folder, WAL, foreign keys) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (replies are rendered after it)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back everything if it raises.

    On SQLite the transaction holds the write lock from its start (see `_sqlite_begin`).
    """
    session = factory()
    try:
        if session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={IMMEDIATE: True})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    """Alembic configured in code, so no alembic.ini has to sit in the working directory."""
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x5C2B_0001
"""PostgreSQL advisory lock key that serialises processes migrating the same database."""


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent).

    On PostgreSQL an advisory lock makes processes starting together (web and worker)
    migrate one after the other; the second finds nothing left to do.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            holder.commit()


@cache
def head_revision() -> str:
    """The schema revision this code needs (the newest migration)."""
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def schema_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None when it has no schema yet.

    Raises SQLAlchemy's OperationalError (or the driver's) when the database cannot be reached.
    """
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def schema_problem(engine: Engine) -> str | None:
    """Why this code cannot use the database's schema yet, or None when it is up to date."""
    current, head = schema_revision(engine), head_revision()
    if current == head:
        return None
    if current is None:
        return _(
            "the database has no schema yet; run `scrutiny-bot db upgrade` (or start `serve`, "
            "`worker` or `run`, which do it)"
        )
    return _(
        "the database schema is at revision {current}, this version needs {head}; "
        "run `scrutiny-bot db upgrade`"
    ).format(current=current, head=head)
