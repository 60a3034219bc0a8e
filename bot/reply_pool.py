"""Reply work (`ScrutinyApp.dispatch` and `interact`) in worker processes.

A chat platform acknowledges requests on its event loop and builds replies after the ack. In
threads, that work holds the GIL the loop needs to acknowledge the next request; in processes
of their own it cannot. Each worker builds its own app (engine, templates) from the settings
once, when it starts.

Workers start with `spawn`, never `fork`: the web process runs threads (uvicorn, the Slack
client), and a child forked while one of them held a lock would wait on it for ever. A worker
that dies (killed, out of memory) breaks the pool: the job it was running, and any queued
with it, fail with `ReplyWorkerLost` (they are not run again: a command may write, and it is
answered exactly once or reported), and the next job starts a new pool.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bot.app import Outcome, ScrutinyApp
    from bot.i18n import Translator
    from bot.settings import Settings

log = logging.getLogger(__name__)

Work = Literal["dispatch", "interact"]

_app: ScrutinyApp | None = None
"""The worker process's own app (set by `_start_worker`)."""


NICENESS = 10
"""How much lower the workers' CPU priority is than the web process's: when the machine is
busy, acknowledgements (due within 3 s) get the CPU first, and replies take what is left."""
PARENT_CHECK = 1.0
"""Seconds between a worker's checks that the process that started it is still there."""


def _exit_with_parent(parent: int) -> None:
    # A parent killed outright (SIGKILL, out of memory) cannot stop its workers: they notice
    # they were handed to another parent, and leave.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK)
    os._exit(0)


def _start_worker(settings: Settings) -> None:
    global _app
    # Ctrl-C reaches the whole process group: the parent stops the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    os.nice(NICENESS)
    from bot.app import create_app

    _app = create_app(settings)


def _run(work: Work, args: tuple[Any, ...]) -> Outcome:
    if _app is None:
        raise RuntimeError("reply worker used before it started")
    method = _app.dispatch if work == "dispatch" else _app.interact
    return method(*args)


def _pid() -> int:
    return os.getpid()


def failed_reply_text(t: Translator) -> str:
    """What a member is told when the work for their reply failed after the ack."""
    # Not "nothing was changed": a worker can die just after its change committed.
    return t._(
        "Something went wrong on our side before we could answer. If you asked for a "
        "change, check whether it was made before you try again."
    )


class ReplyWorkerLost(Exception):
    """A reply worker process died before the job's outcome came back."""


class ReplyPool:
    """`processes` worker processes running dispatch and interact for one platform."""

    @classmethod
    def maybe(cls, settings: Settings, processes: int) -> ReplyPool | None:
        """A pool of `processes` workers, or None for 0 (replies are built in threads)."""
        return cls(settings, processes) if processes else None

    def __init__(self, settings: Settings, processes: int) -> None:
        if processes < 1:
            raise ValueError("a reply pool needs at least one process")
        self.settings = settings
        self.processes = processes
        self.restarts = 0
        """Pools started again after a worker died."""
        self._started: list[Future[int]] = []
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=(self.settings,),
                )
            return self._pool

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not broken:
                return  # another job replaced it already
            self._pool = None
            self.restarts += 1
        log.error("a reply worker process died; starting new ones")
        broken.shutdown(wait=False, cancel_futures=True)
        self.start()

    def _submit(self, function: Any, *args: Any) -> tuple[ProcessPoolExecutor, Future[Any]]:
        pool = self._current()
        try:
            return pool, pool.submit(function, *args)
        except BrokenProcessPool:
            # A worker died between jobs: nothing of this job ran yet, so a new pool takes it.
            self._replace(pool)
            pool = self._current()
            return pool, pool.submit(function, *args)

    def start(self) -> None:
        """Start the workers now, without waiting for them (each builds its app, which takes
        seconds on a busy machine): the first replies find them ready or queue for them."""
        self._started = [self._submit(_pid)[1] for _ in range(self.processes)]

    def pids(self, timeout: float = 60.0) -> list[int]:
        """The process ids of the workers that answered `start` (waiting for them)."""
        return sorted({started.result(timeout) for started in self._started})

    async def run(self, work: Work, *args: Any) -> Outcome:
        """The outcome of `app.<work>(*args)`, computed in a worker process."""
        pool, future = self._submit(_run, work, args)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool as lost:
            self._replace(pool)
            raise ReplyWorkerLost(f"the worker running {work} died") from lost

    async def stop(self) -> None:
        """Stop the workers (jobs not started are dropped) and wait for them to exit."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
