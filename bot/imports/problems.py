"""What an import reports: each problem with file, line, column, value and fix; the summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.i18n import _, ngettext

_SHOWN_VALUE = 60
"""Longer values are cut in messages: the line and column already say where to look."""


def _shown(value: str) -> str:
    one_line = " ".join(value.split()) if "\n" in value or "\r" in value else value
    if len(one_line) > _SHOWN_VALUE:
        return one_line[: _SHOWN_VALUE - 1] + "…"
    return one_line


@dataclass(frozen=True)
class ImportProblem:
    """One thing wrong with a file, and how to put it right."""

    source: str
    line: int
    column: str | None
    value: str | None
    message: str
    fix: str
    cell: str | None = None
    """A spreadsheet cell address (Actions!E7) when the problem is in one cell."""
    spreadsheet: bool = False
    """True for XLSX files: `line` is then a sheet row, and messages say "row"."""

    def __str__(self) -> str:
        if self.cell is not None:
            where = _("{source} cell {cell}").format(source=self.source, cell=self.cell)
        elif self.spreadsheet:
            where = _("{source} row {line}").format(source=self.source, line=self.line)
        else:
            where = _("{source} line {line}").format(source=self.source, line=self.line)
        if self.column is not None:
            where += f", {self.column}"
            if self.value:
                where += f' "{_shown(self.value)}"'
        stop = "" if self.fix.rstrip(")").endswith(("?", ".")) else "."
        return (
            _("{where}: {message}; {fix}").format(where=where, message=self.message, fix=self.fix)
            + stop
        )


def rejection_summary(problems: int, rows: int) -> str:
    """'Nothing was imported (3 problems in 60 rows).'"""
    counted = ngettext("{n} problem", "{n} problems", problems).format(n=problems)
    in_rows = ngettext("{n} row", "{n} rows", rows).format(n=rows)
    return _("Nothing was imported ({problems} in {rows}).").format(problems=counted, rows=in_rows)


class ImportRejected(Exception):
    """A file had problems; nothing was written. `problems` lists every one, in file order."""

    def __init__(self, problems: list[ImportProblem], rows: int) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        self.rows = rows
        super().__init__(rejection_summary(len(problems), rows))


@dataclass
class ImportReport:
    """What an accepted import did (or, in a dry run, would do).

    `problems` holds notices that did not stop the import, such as a decision whose
    meeting_date could not be linked because its board has no meetings loaded yet.
    """

    kind: str
    rows: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[ImportProblem] = field(default_factory=list)
