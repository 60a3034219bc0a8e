"""What is wrong with a collaboration file, and where: problems with file, line, key and hint."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.i18n import _

KeyPath = tuple[str | int, ...]
EXAMPLE_FILE = "config/collaboration.example.yaml"


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the file: where (file, line, dotted key), what, and how to fix it."""

    file: str
    line: int | None
    key: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text


class ConfigError(Exception):
    """The collaboration file cannot be used; `problems` lists every reason."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def dotted(path: KeyPath) -> str:
    """`("channels", 3, "partner")` as `channels[3].partner` (list positions count from 0)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def quoted(value: object, limit: int = 60) -> str:
    """A value as the user wrote it, short enough for one line."""
    if value is None:
        return _("nothing")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        shown = value if len(value) <= limit else value[: limit - 1] + "…"
        return f'"{shown}"'
    if isinstance(value, Mapping):
        return _("a mapping")
    if isinstance(value, list | tuple):
        return _("a list")
    return type(value).__name__


def did_you_mean(value: object, known: Iterable[str]) -> str:
    """'did you mean "x"?' for the closest known name, or nothing when none is close."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return _('did you mean "{name}"?').format(name=close[0]) if close else ""


def hints(*parts: str) -> str:
    """The non-empty hints, joined into one."""
    return "; ".join(part for part in parts if part)


class Report:
    """Collects problems for one file, placing each key path on its line."""

    def __init__(self, file: str, lines: Mapping[KeyPath, int] | None = None) -> None:
        self.file = file
        self.lines: Mapping[KeyPath, int] = lines or {}
        self.problems: list[ConfigProblem] = []

    def line_of(self, path: KeyPath) -> int | None:
        # A missing key has no line of its own: use the closest enclosing entry that has one.
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def where(self, path: KeyPath) -> str:
        line = self.line_of(path)
        key = dotted(path)
        return key if line is None else _("{key} (line {line})").format(key=key, line=line)

    def add(self, path: KeyPath, message: str, hint: str = "", *, line: int | None = None) -> None:
        self.problems.append(
            ConfigProblem(
                self.file,
                line if line is not None else self.line_of(path),
                dotted(path),
                message,
                hint,
            )
        )

    def sorted(self) -> list[ConfigProblem]:
        return sorted(self.problems, key=lambda problem: problem.line or 0)


def key_text(value: object) -> str:
    """A mapping key as written, when YAML read it as null, a boolean or a number."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
