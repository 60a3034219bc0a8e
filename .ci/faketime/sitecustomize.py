"""Loaded only by the moved-clock leg of `.ci/run` (it puts this folder on PYTHONPATH).

libfaketime 0.9.10 (Debian 12) and Python 3.11 disagree in two places:
- with the monotonic clock faked too (libfaketime's default), Python's timed lock waits
  (`threading.Event.wait(timeout)`, `queue.get(timeout=...)`) compute their deadline on the fake
  clock and wait for it on the real one: a year ahead, they never return. So the leg sets
  FAKETIME_DONT_FAKE_MONOTONIC=1: only dates move; timers, as in the program, stay monotonic.
- with the monotonic clock left alone, libfaketime's clock_nanosleep wrapper fails with EINVAL,
  and Python's `time.sleep` is built on clock_nanosleep. Here `time.sleep` therefore sleeps on a
  timed lock wait instead, which works; every process started with this PYTHONPATH (the test
  run and the workers it starts) gets the same fix.
"""

from __future__ import annotations

import _thread
import time

_system_sleep = time.sleep


def _sleep(seconds: float) -> None:
    lock = _thread.allocate_lock()
    lock.acquire()
    # Even sleep(0) must let other threads run, as the real one does (it releases the GIL).
    lock.acquire(timeout=max(seconds, 1e-6))


try:
    _system_sleep(0.000001)
except OSError:
    time.sleep = _sleep
