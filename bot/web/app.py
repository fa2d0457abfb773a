"""Builds the aiohttp application: simulator, health, and whatever else is mounted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.web import simulator
from bot.web.keys import HEALTH, PIPELINE, SERVICES, SIMULATOR

MAX_REQUEST_BYTES = 256 * 1024


async def health(request: web.Request) -> web.Response:
    report = request.app[HEALTH]()
    return web.json_response(report, status=200 if report.get("ok") else 503)


def make_web_app(services: Any, pipeline: Any, simulator_channel: Any,
                 health_report: Callable[[], dict[str, Any]]) -> web.Application:
    """The bot's web application, sharing the bot's services through typed keys."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SERVICES] = services
    app[PIPELINE] = pipeline
    app[SIMULATOR] = simulator_channel
    app[HEALTH] = health_report
    app.router.add_get("/health", health)
    app.add_routes(simulator.routes)
    for mount in services.extras.get("web_mounts", []):
        mount(app)
    return app
