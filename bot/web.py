"""The ASGI app `scrutiny-bot serve` runs: a health check plus the routes each platform brings.

This module knows no chat platform: a platform object (see `WebPlatform`) hands over its
routes and its start and stop hooks (Socket Mode connects in `startup`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from bot.db import schema_problem, unit_of_work
from bot.i18n import _
from bot.register_web.app import build_register
from bot.runtime import Runtime
from bot.services.delivery_log import waiting_without_credentials

log = logging.getLogger(__name__)


class WebPlatform(Protocol):
    """What a chat platform gives the web app."""

    name: str

    @property
    def routes(self) -> Sequence[BaseRoute]:
        """HTTP routes the platform answers (empty when it needs none, e.g. Socket Mode)."""
        ...

    def health(self) -> dict[str, Any]:
        """A few facts for /healthz (mode, connected); never secrets."""
        ...

    async def startup(self) -> None:
        """Called once when the server starts."""
        ...

    async def shutdown(self) -> None:
        """Called once when the server stops."""
        ...


def _database_state(app: Runtime) -> tuple[str, str | None]:
    """("ok", None), ("unreachable", why) or ("schema behind", what to run)."""
    try:
        problem = schema_problem(app.engine)
    except Exception as error:
        log.warning("health check: the database cannot be reached: %s", error)
        return "unreachable", _(
            "the database cannot be reached ({error}); check DATABASE_URL"
        ).format(error=type(error).__name__)
    if problem is not None:
        return "schema behind", problem
    return "ok", None


def _posts_without_credentials(app: Runtime) -> dict[str, int]:
    """Posts waiting for a platform this deployment has no credentials for, by platform."""
    with unit_of_work(app.sessions, writes=False) as session:
        waiting = waiting_without_credentials(session, app.settings.posting_platforms)
    return {platform.value: count for platform, count in sorted(waiting.items())}


def create_web_app(
    app: Runtime,
    platforms: Sequence[WebPlatform] = (),
    clock: Callable[[], datetime] | None = None,
) -> Starlette:
    """Starlette app with GET /healthz, every platform's routes, and the register's pages."""

    async def healthz(_request: Request) -> JSONResponse:
        database, reason = await asyncio.to_thread(_database_state, app)
        ready = database == "ok"
        body: dict[str, Any] = {
            "status": "ok" if ready else "unavailable",
            "database": database,
            "platforms": {platform.name: platform.health() for platform in platforms},
        }
        if reason is not None:
            body["reason"] = reason
        if ready:
            stuck = await asyncio.to_thread(_posts_without_credentials, app)
            if stuck:
                # Not a reason to take this process out of service, but an operator must know.
                body["posts_waiting_without_credentials"] = stuck
        return JSONResponse(body, status_code=200 if ready else 503)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        started: list[WebPlatform] = []
        try:
            for platform in platforms:
                await platform.startup()
                started.append(platform)
            yield
        finally:
            for platform in reversed(started):
                await platform.shutdown()

    routes: list[BaseRoute] = [Route("/healthz", healthz, methods=["GET"])]
    for platform in platforms:
        routes.extend(platform.routes)
    # Last, so the platforms' and the health check's paths match first.
    routes.append(Mount("/", app=build_register(app, clock or app.clock.now)))
    return Starlette(routes=routes, lifespan=lifespan)
