"""Engine, sessions (one per unit of work) and migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

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
READ_ONLY = "sqlite_read_only"
"""Connection execution option: on SQLite, a read-only snapshot that takes no write lock."""
_QUERY_ONLY = "scrutiny_query_only"
"""Key in a DBAPI connection's info: PRAGMA query_only is on (a read-only unit of work)."""


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes must upgrade its lock, and in WAL mode
    # that fails at once ("database is locked"; busy_timeout does not help) if another writer
    # committed meanwhile. Units of work that write therefore take the write lock at BEGIN, so
    # a second writer waits (up to busy_timeout) instead. A read-only unit of work begins
    # deferred (one consistent snapshot, no lock that holds writers or other readers up) with
    # PRAGMA query_only, so a write it was not declared for fails loudly instead of racing.
    # Other connections keep the sqlite3 module's own handling (no transaction until the
    # first write). Savepoints (begin_nested) nest inside either BEGIN as usual.
    options = connection.get_execution_options()
    info = connection.connection.info
    read_only = options.get(READ_ONLY, False)
    if info.get(_QUERY_ONLY, False) != read_only:
        connection.exec_driver_sql(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")
        info[_QUERY_ONLY] = read_only
    if read_only:
        connection.exec_driver_sql("BEGIN")
    elif options.get(IMMEDIATE, False):
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
def unit_of_work(factory: sessionmaker[Session], *, writes: bool = True) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back everything if it raises.

    On SQLite a unit of work that `writes` holds the write lock from its start; one that does
    not reads one snapshot, takes no write lock and may not write (see `_sqlite_begin`).
    """
    session = factory()
    try:
        if session.get_bind().dialect.name == "sqlite":
            option = IMMEDIATE if writes else READ_ONLY
            session.connection(execution_options={option: True})
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


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)
