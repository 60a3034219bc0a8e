"""What every command prints with: terminal-safe lines and log records, and the list of a
collaboration file's problems before exit status 1."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from bot.i18n import ngettext
from bot.text_input import terminal_safe

if TYPE_CHECKING:
    from bot.collaboration.problems import ConfigProblem


class TerminalSafeFormatter(logging.Formatter):
    """Log lines may quote what people typed: made safe for the terminal they are read on."""

    def format(self, record: logging.LogRecord) -> str:
        return terminal_safe(super().format(record))


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print a line that may carry user text (titles, questions, names): never a raw escape
    sequence or other control character (`terminal_safe`)."""
    typer.echo(terminal_safe(message), err=err, nl=nl)


def refuse_config(problems: list[ConfigProblem], path: Path, *, err: bool) -> NoReturn:
    """Print every problem and the count, then exit with status 1."""

    for problem in problems:
        echo(str(problem), err=err)
    count = len(problems)
    echo(
        ngettext("{count} problem in {file}", "{count} problems in {file}", count).format(
            count=count, file=path
        ),
        err=err,
    )
    raise typer.Exit(1)
