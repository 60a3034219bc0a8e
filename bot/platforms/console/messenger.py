"""The console's sender for the outbox: posts are printed in the terminal (or handed to the
interactive console, which shows them between prompts)."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TextIO

from bot.domain import Platform
from bot.outbox import Target
from bot.platforms.contract import ShowPost


class ConsoleMessenger:
    """Prints posts to console channels, framed, or hands them to the console's `show_post`."""

    platform = Platform.CONSOLE

    def __init__(self, show: ShowPost | None = None, stream: TextIO | None = None) -> None:
        self.show = show
        self.stream = stream
        self._posted: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def post(self, target: Target, payload: Mapping[str, Any], *, key: str) -> str:
        """Show the text rendering; the id is a counter local to this process."""
        text = str(payload.get("text", ""))
        if self.show is not None:
            self.show(target.slug, text)
        else:
            stream = self.stream or sys.stdout
            rule = "─" * 60
            stream.write(f"\n┌{rule}\n│ {target.name}\n├{rule}\n")
            stream.write("".join(f"│ {line}\n" for line in text.splitlines()))
            stream.write(f"└{rule}\n")
            stream.flush()
        with self._lock:
            message_id = f"console-{next(self._ids)}"
            self._posted[key] = message_id
        return message_id

    def find_posted(self, target: Target, key: str, *, since: datetime) -> str | None:
        """Posts shown by this process (a console has no history beyond it)."""
        with self._lock:
            return self._posted.get(key)
