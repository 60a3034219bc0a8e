"""Rendered answers to read-only commands, kept per process.

An answer is a function of who reads it, what was asked, when (to the minute) and the
register's contents. The key holds each of these: the platform, the member (id, roles,
language), the channel and the combined audience the visibility rule filters for (clearance,
exempt access, readers, label), the format, the command and its words, the minute, and the
register's version. The version (`bot.register_version`) moves on with every committed change
to a table an answer reads, by database triggers (migration 0015), so no write path can change
an answer without changing the key. Errors, forms and anything a unit that writes computed are
never kept.
"""

from __future__ import annotations

import pickle
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class AnswerCache(Generic[V]):
    """A bounded LRU of rendered outcomes (stored pickled: every hit is a fresh copy that its
    sender may change without touching the next one's)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._answers: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Hashable) -> V | None:
        """The outcome kept under `key`, or None (counted as a hit or a miss)."""
        with self._lock:
            kept = self._answers.get(key)
            if kept is None:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
        outcome: V = pickle.loads(kept)
        return outcome

    def put(self, key: Hashable, outcome: V) -> None:
        """Keep `outcome` under `key`, dropping the least recently used past the size."""
        if self.size <= 0:
            return
        kept = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
        with self._lock:
            self._answers[key] = kept
            self._answers.move_to_end(key)
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
