"""Engine, sessions (one per unit of work) and migrations."""

from __future__ import annotations

import re
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Select,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from bot.i18n import _

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

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
WRITES = "writes"
"""`session.info` key: whether the unit of work was declared as one that writes."""
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


def _sqlite_checkin(dbapi_connection: Any, record: Any) -> None:
    # A pooled connection goes back writable, whatever uses it next (even outside an event).
    if record.info.get(_QUERY_ONLY, False):
        dbapi_connection.execute("PRAGMA query_only = OFF")
        record.info[_QUERY_ONLY] = False


def make_engine(url: str) -> Engine:
    """An engine for SQLite (file created under its folder, WAL, foreign keys) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "checkin", _sqlite_checkin)
        return engine
    # psycopg prepares a statement on the server after its fifth run on a connection, and
    # PostgreSQL may then plan it once for any values: a full-text search planned that way
    # took 1.5-2x as long (units of work commit, so prepared statements live on). Statements
    # are planned for their values instead; `DriverSelect` look-ups, one fixed shape by an
    # index, still ask for a prepared statement (a threshold of None would refuse that too).
    engine = create_engine(url, connect_args={"prepare_threshold": sys.maxsize})
    event.listen(engine, "checkin", _note_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


IDLE_PING_SECONDS = 5.0
"""A pooled PostgreSQL connection idle longer than this is pinged before it is handed out."""
_CHECKED_IN = "scrutiny_checked_in"
"""Key in a pooled connection's info: the monotonic time it went back to the pool."""


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # Instead of `pool_pre_ping`, a round trip before every unit of work: a connection handed
    # back moments ago (a busy bot) is used as it is, one that sat idle (where restarts and
    # idle timeouts strike) is tried first and, if dead, replaced by the pool
    # (DisconnectionError). A connection that dies while busy fails its statement instead:
    # SQLAlchemy then drops it with the rest of the pool, and `look_up` runs again once.
    checked_in = record.info.get(_CHECKED_IN)
    if checked_in is None or time.monotonic() - checked_in < IDLE_PING_SECONDS:
        return
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        dbapi_connection.rollback()
    except Exception as error:
        raise DisconnectionError(f"pooled connection failed its ping: {error}") from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (replies are rendered after it)."""
    return sessionmaker(engine, expire_on_commit=False)


_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_WRITERS_LOCK = threading.Lock()
WRITER_QUEUE_SECONDS = 30.0
"""How long a writer queues behind this process's others before trying SQLite's lock anyway."""


@contextmanager
def _sqlite_writer(engine: Engine) -> Iterator[None]:
    """This process's SQLite writers one at a time, in turn.

    SQLite has one writer at a time anyway; a writer it turns away sleeps in steps of up to
    100 ms (its busy handler) and may miss the lock again, so many threads writing briefly
    (the outbox sender marking posts sent) spent far longer waiting than writing. Queued on a
    lock here, each starts the moment the one before it commits.
    """
    with _WRITERS_LOCK:
        lock = _WRITERS.setdefault(engine, threading.RLock())
    queued = lock.acquire(timeout=WRITER_QUEUE_SECONDS)
    try:
        yield
    finally:
        if queued:
            lock.release()


@contextmanager
def unit_of_work(factory: sessionmaker[Session], *, writes: bool = True) -> Iterator[Session]:
    """One transaction: commit if the block succeeds, roll back everything if it raises.

    On SQLite a unit of work that `writes` holds the write lock from its start (queued behind
    this process's other writers, `_sqlite_writer`); one that does not reads one snapshot,
    takes no write lock and may not write (see `_sqlite_begin`).
    """
    session = factory()
    session.info[WRITES] = writes
    bind = session.get_bind()
    sqlite_writer = bind.dialect.name == "sqlite" and writes and isinstance(bind, Engine)
    with _sqlite_writer(bind) if sqlite_writer else nullcontext():  # type: ignore[arg-type]
        try:
            if bind.dialect.name == "sqlite":
                option = IMMEDIATE if writes else READ_ONLY
                session.connection(execution_options={option: True})
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


T = TypeVar("T")


def look_up(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run read-only `work` on a pooled connection without a Session: for look-ups that run on
    every request (a ref), where a Session's begin, rollback and bookkeeping cost more than
    the statement.

    On SQLite the connection reads without the write lock (`READ_ONLY` when `work` executes
    through SQLAlchemy; `DriverSelect` statements run in the driver's autocommit mode, one
    snapshot per statement). A connection found dead (the database restarted, the connection
    was killed) is dropped with the rest of the pool by SQLAlchemy, and the work, which wrote
    nothing, runs once more on a new connection.
    """
    for attempt in (1, 2):
        try:
            with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
                result = work(connection)
                # Ended with COMMIT, not the pool's ROLLBACK: psycopg answers a rollback by
                # deallocating the connection's prepared statements, so every look-up was
                # planned again (a read-only transaction commits to the same effect). Both:
                # SQLAlchemy's transaction, if `work` began one, and the driver's own.
                connection.commit()
                connection.connection.commit()
                return result
        except DBAPIError as error:
            if attempt == 2 or not error.connection_invalidated:
                raise
    raise AssertionError("unreachable: the second attempt returns or raises")


def insert_rows(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], *, copy: bool = True
) -> None:
    """Insert many rows that all have the same keys, in one executemany on the driver, or on
    PostgreSQL through psycopg (unless `copy` is False) in one COPY.

    Each column's values are converted once, column by column, with the same bind processors
    a Core insert uses (so the stored values are identical), and the statement is compiled
    once; what this skips is Core's per-row parameter bookkeeping, most of a bulk insert's
    Python time. COPY also spares the server parsing and planning a statement per batch of
    rows; triggers, generated columns and constraints apply as for an INSERT.
    """
    if not rows:
        return
    dialect = connection.dialect
    given = list(rows[0])
    compiled = insert(table).compile(dialect=dialect, column_keys=given, for_executemany=True)
    # Core adds the columns with a Python-side default the rows leave out; fill them the same
    # way (a callable default once per row, as an executemany does).
    columns: dict[str, list[Any]] = {}
    names: list[str] = []
    for key, bind in compiled.binds.items():
        column = table.c[key]
        if key in rows[0]:
            values = [row[key] for row in rows]
        elif column.default is not None and column.default.is_scalar:
            values = [column.default.arg] * len(rows)  # type: ignore[attr-defined]
        elif column.default is not None and column.default.is_callable:
            values = [column.default.arg(None) for _ in rows]  # type: ignore[attr-defined]
        else:
            raise ValueError(f"insert_rows: no value or Python default for {table.name}.{key}")
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        columns[bind.key] = values if process is None else [process(v) for v in values]
        names.append(column.name)
    if copy and dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy_rows(connection, table, names, list(zip(*columns.values(), strict=True)))
        return
    parameters: list[Any]
    if compiled.positiontup is not None:
        parameters = list(zip(*(columns[key] for key in compiled.positiontup), strict=True))
    else:
        parameters = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
    connection.exec_driver_sql(compiled.string, parameters)


def _copy_rows(
    connection: Connection, table: Table, names: list[str], rows: list[tuple[Any, ...]]
) -> None:
    """`rows` (values in the order of `names`, converted for the driver) by COPY FROM STDIN."""
    quote = connection.dialect.identifier_preparer
    listed = ", ".join(quote.quote(name) for name in names)
    sql = f"COPY {quote.format_table(table)} ({listed}) FROM STDIN"
    dbapi_connection = connection.connection.dbapi_connection
    cursor = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _announce(connection, cursor, sql, rows, executemany=True)
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as error:
        raise _wrapped(connection, sql, error, cursor) from error
    finally:
        cursor.close()


def _announce(
    connection: Connection, cursor: Any, sql: str, parameters: Any, *, executemany: bool
) -> None:
    """Tell the engine's `before_cursor_execute` listeners (statement counts, query-plan
    checks, fault injection) of a statement sent past SQLAlchemy, as its execution would."""
    connection.dispatch.before_cursor_execute(
        connection, cursor, sql, parameters, None, executemany
    )


def _wrapped(connection: Connection, sql: str, error: Any, cursor: Any) -> Exception:
    """A driver error met outside SQLAlchemy's execution path, as SQLAlchemy raises it (the
    connection invalidated when the error says it is gone)."""
    dialect = connection.dialect
    gone = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if gone:
        connection.invalidate(error)
    wrapped: Exception = DBAPIError.instance(
        sql, None, error, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
    )
    return wrapped


class DriverSelect:
    """A SELECT run as SQL the driver takes as it is: compiled once per dialect, its values
    converted with the column types' own result processors (the rows are typed as Core's).

    For a look-up run on every command: a compiled Core statement still pays, per call, for
    the compiled-cache key, the parameter processing and the result's metadata, several times
    the work of the query itself. Binds must need no conversion (strings, integers).
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self.names = [str(column.key) for column in statement.selected_columns]
        self._prepared: dict[str, tuple[str, Callable[[dict[str, Any]], Any], list[Any]]] = {}

    def _prepare(self, dialect: Dialect) -> tuple[str, Callable[[dict[str, Any]], Any], list[Any]]:
        compiled = self.statement.compile(dialect=dialect)
        fixed = compiled.params  # the LIMIT, say
        order = compiled.positiontup
        if order is not None:

            def parameters(given: dict[str, Any]) -> Any:
                return tuple(given[name] if name in given else fixed[name] for name in order)
        else:

            def parameters(given: dict[str, Any]) -> Any:
                return {**fixed, **given}

        processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self.statement.selected_columns
        ]
        return compiled.string, parameters, processors

    def first(self, connection: Connection, parameters: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of typed values, or None."""
        dialect = connection.dialect
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            prepared = self._prepared[dialect.name] = self._prepare(dialect)
        sql, bind, processors = prepared
        row = _driver_first(connection, sql, bind(parameters))
        if row is None:
            return None
        return {
            name: value if process is None else process(value)
            for name, process, value in zip(self.names, processors, row, strict=True)
        }


def _driver_first(connection: Connection, sql: str, parameters: Any) -> Any:
    """The first row of `sql`, run on the driver's own cursor of `connection`.

    SQLAlchemy's execution path (events, result objects) costs more than a look-up by an
    index. What it adds that matters is kept: a driver error is raised as SQLAlchemy's, and
    a disconnect goes back through `exec_driver_sql`, which fails the same way there and so
    drops the dead connection and the rest of the pool as for any other statement.
    """
    dialect = connection.dialect
    dbapi_connection = connection.connection.dbapi_connection
    cursor: Any = dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _announce(connection, cursor, sql, parameters, executemany=False)
        if dialect.driver == "psycopg":
            cursor.execute(sql, parameters, prepare=True)
        else:
            cursor.execute(sql, parameters)
        return cursor.fetchone()
    except dialect.loaded_dbapi.Error as error:
        if dialect.is_disconnect(error, dbapi_connection, cursor):
            return connection.exec_driver_sql(sql, parameters).first()
        raise _wrapped(connection, sql, error, cursor) from error
    finally:
        cursor.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    """Alembic configured in code, so no alembic.ini has to sit in the working directory."""
    # Imported here, not at the top: processes that never migrate (web, console) skip it.
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


MIGRATION_LOCK = 0x5C2B_0001
"""PostgreSQL advisory lock key that serialises processes migrating the same database."""

_REVISION = re.compile(r'^(down_)?revision\s*=\s*"([^"]+)"', re.MULTILINE)


@cache
def head_revision() -> str:
    """The schema revision this code needs: the one migration no other migration revises, read
    from the files (loading Alembic for this alone is slow)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for down, name in _REVISION.findall(path.read_text(encoding="utf-8")):
            (revised if down else revisions).add(name)
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"expected one newest migration in {MIGRATIONS_DIR}, found {heads}")
    return heads.pop()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None when it has no schema yet.

    Raises SQLAlchemy's OperationalError (or the driver's) when the database cannot be reached.
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    return str(rows[0][0]) if len(rows) == 1 else None


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision` (idempotent).

    A database already at the head is left alone without loading Alembic, which is slow to
    import and otherwise needed only when there is something to migrate. On PostgreSQL an
    advisory lock makes processes starting together (web and worker) migrate one after the
    other; the second finds nothing left to do.
    """
    if revision == "head" and schema_revision(engine) == head_revision():
        return
    from alembic import command

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
