"""`python -m bot.cli`, the same as the `scrutiny-bot` script."""

from bot.cli.main import main

main()
