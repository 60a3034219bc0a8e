"""The one clock: every "now" in the bot comes from here.

Nothing else in `bot/` or `handlers/` reads the wall clock. The app, the worker, the sender,
the platforms and the command line all take their time from `CLOCK` (directly, or from a
`now` their caller took from it), so setting it sets the time everywhere at once: tests pin
it to an instant, and an operator could replay a day. Unset, it follows the system clock.

Monotonic timers used for pacing and timeouts are not dates and stay with `time.monotonic`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo


class Clock:
    """The current instant, timezone-aware in UTC: the system's, or one it was set to.

    Thread-safe. A set clock stands still until it is set or advanced again, so every thread
    of a test sees the same instant, unless it was set `ticking`: then it runs on from the
    instant it was set to at the pace of the monotonic clock (for tests that wait in real
    time, such as a sender settling its retries).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fixed: tuple[datetime, float | None] | None = None
        """The instant set, and the monotonic time it was set at when the clock ticks."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        fixed = self._fixed
        if fixed is None:
            return datetime.now(UTC)
        at, since = fixed
        return at if since is None else at + timedelta(seconds=time.monotonic() - since)

    def __call__(self) -> datetime:
        """The same as `now()`, so the clock can stand wherever a `() -> datetime` is taken."""
        return self.now()

    def today(self, zone: tzinfo) -> date:
        """Today's date in `zone` (a wall-clock zone such as Europe/London)."""
        return self.now().astimezone(zone).date()

    @property
    def is_set(self) -> bool:
        """Whether the clock stands at a set instant rather than following the system's."""
        return self._fixed is not None

    def set(self, at: datetime, *, ticking: bool = False) -> None:
        """Set the clock to `at` (aware): standing still there, or running on from it when
        `ticking`, until it is set, advanced or released."""
        if at.tzinfo is None:
            raise ValueError("the clock needs an aware datetime; attach a time zone first")
        with self._lock:
            self._fixed = (at.astimezone(UTC), time.monotonic() if ticking else None)

    def advance(self, delta: timedelta) -> datetime:
        """Move a set clock on by `delta`; the new instant."""
        with self._lock:
            if self._fixed is None:
                raise RuntimeError("only a set clock can be advanced; set it first")
            at, since = self._fixed
            self._fixed = (at + delta, since)
        return self.now()

    def release(self) -> None:
        """Follow the system clock again."""
        with self._lock:
            self._fixed = None

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[Clock]:
        """Set the clock to `at` for the block, then put back whatever it was before."""
        with self._lock:
            before = self._fixed
        self.set(at)
        try:
            yield self
        finally:
            with self._lock:
                self._fixed = before


CLOCK = Clock()
"""The program's clock. Pass it (or `CLOCK.now`) down; never read the system clock directly."""


def now() -> datetime:
    """The current instant in UTC from the program's clock."""
    return CLOCK.now()
