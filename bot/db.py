"""Engine, sessions (one per unit of work) and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version"


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


def schema_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (none for an empty database), read without Alembic's
    migration context, which logs as it starts."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return set()
        return set(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def migrate(engine: Engine, revision: str = "head") -> bool:
    """Bring the schema up to `revision` (idempotent); whether anything was run.

    Alembic runs, and logs what it does, only when the database is behind: an up-to-date
    database costs one read and prints nothing, so commands and cron mail stay quiet."""
    config = alembic_config(engine)
    script = ScriptDirectory.from_config(config)
    wanted = set(script.get_heads()) if revision == "head" else {revision}
    if schema_revisions(engine) == wanted:
        return False
    command.upgrade(config, revision)
    return True
