"""Exactly one scheduler leads: a PostgreSQL advisory lock, or an exclusive lock file on SQLite.

Both locks belong to something the operating system or the database releases when the holder
dies (a connection, an open file), so a standby takes over without any home-made consensus:
a killed leader's connection closes and its lock goes with it.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

ADVISORY_LOCK_ID = 0x5C2B_5C4E
"""The advisory lock key of the scheduler (one per database)."""


class LeaderLock(Protocol):
    """A lock only one process holds at a time, released by the system if the holder dies."""

    def acquire(self) -> bool:
        """Take the lock if it is free (never waits); whether this process now holds it."""
        ...

    def held(self) -> bool:
        """Whether this process still holds the lock (a lost connection loses it)."""
        ...

    def release(self) -> None:
        """Give the lock up (harmless when not held)."""
        ...

    def describe(self) -> str:
        """What the lock is, for logs."""
        ...


class PostgresLeaderLock:
    """`pg_try_advisory_lock` held on a dedicated connection for as long as this process leads."""

    def __init__(self, engine: Engine, key: int = ADVISORY_LOCK_ID) -> None:
        self.engine = engine
        self.key = key
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        """Try the advisory lock on a fresh connection kept open while leading."""
        if self._connection is not None:
            return self.held()
        connection = self.engine.connect()
        try:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
                ).scalar()
            )
            connection.commit()
        except SQLAlchemyError:
            connection.invalidate()
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def held(self) -> bool:
        """Ask the server whether this session still holds the lock."""
        if self._connection is None:
            return False
        try:
            found = self._connection.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND objid = (:key & 4294967295)"
                ),
                {"key": self.key},
            ).scalar()
            self._connection.commit()
        except SQLAlchemyError:
            log.warning("lost the scheduler's database connection; standing down")
            self._drop()
            return False
        return bool(found)

    def release(self) -> None:
        """Unlock and close the dedicated connection."""
        if self._connection is None:
            return
        try:
            self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
            self._connection.commit()
        except SQLAlchemyError:
            pass
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Never hand a connection that held the lock back to the pool.
            connection.invalidate()
            connection.close()

    def describe(self) -> str:
        """The lock key."""
        return f"PostgreSQL advisory lock {self.key}"


class FileLeaderLock:
    """An exclusive `flock` on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the exclusive lock if no other process has it."""
        if self._fd is not None:
            return self.held()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        """Held while our file is still the one at `path` (someone deleting it loses it)."""
        if self._fd is None:
            return False
        try:
            return os.fstat(self._fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def release(self) -> None:
        """Unlock and close."""
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None

    def describe(self) -> str:
        """The lock file."""
        return f"lock file {self.path}"


if (
    sys.platform == "win32"
):  # pragma: no cover - the bot is deployed on Linux; this keeps dev.py working
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def leader_lock_for(engine: Engine) -> LeaderLock:
    """The advisory lock on PostgreSQL; on SQLite a lock file next to the database file."""
    url = make_url(engine.url)
    if url.get_backend_name() == "postgresql":
        return PostgresLeaderLock(engine)
    database = url.database or ""
    if not database or database == ":memory:":
        raise ValueError(
            "an in-memory SQLite database has no file to put the scheduler's lock beside"
        )
    return FileLeaderLock(Path(database).with_name(Path(database).name + ".leader.lock"))
