"""Feature handlers. Each module exposes `router`; `bot.app.create_app` registers them in order."""

from __future__ import annotations

from bot.router import Router
from handlers import (
    actions,
    attendance,
    decisions,
    find,
    help,
    history,
    home,
    meetings,
    questions,
    register,
    remind,
    welcome,
)

ROUTERS: list[Router] = [
    help.router,
    actions.router,
    decisions.router,
    meetings.router,
    attendance.router,
    find.router,
    home.router,
    register.router,
    remind.router,
    questions.router,
    history.router,
    welcome.router,
]
