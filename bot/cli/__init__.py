"""The `scrutiny-bot` command line: `main` wires the groups, one module per group (`database`,
`config`, `imports`, `serving`, `logs`, `digest`, `remind`, `questions`, `teams`, `i18n`), and
`output` and `startup` hold what every command shares. A command parses its options, calls a
service and prints; the work itself lives in `bot.services` and the features."""

from bot.cli.main import cli, main
from bot.cli.output import TerminalSafeFormatter, echo

__all__ = ["TerminalSafeFormatter", "cli", "echo", "main"]
