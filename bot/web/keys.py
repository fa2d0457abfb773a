"""Typed keys for what the web application shares with its handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from bot.channels.simulator import SimulatorChannel
    from bot.context import Services
    from bot.pipeline import Pipeline

SERVICES: web.AppKey[Services] = web.AppKey("services")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
SIMULATOR: web.AppKey[SimulatorChannel | None] = web.AppKey("simulator")
HEALTH: web.AppKey[Any] = web.AppKey("health")  # () -> dict
