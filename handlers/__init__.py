"""Feature handlers. Each module exposes `router`; `bot.app.create_app` registers them in this order."""

from __future__ import annotations

from bot.router import Router
from handlers import help

ROUTERS: list[Router] = [help.router]
