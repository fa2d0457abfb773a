"""The composition root: opens every long-lived part in order and closes it in reverse.

    database (migrated) → lexicon and time parser → outbox → pipeline (journal resumed)
      → scheduler → chat channel → web server
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.channels.base import ChatChannel
from bot.clock import Clock, SystemClock
from bot.config import Config
from bot.context import Services
from bot.leader import LeaderLock, startup_lock
from bot.outbox import Outbox
from bot.pipeline import Pipeline
from models.db import Database, sqlite_path, upgrade
from schedules.runner import Scheduler

log = logging.getLogger(__name__)

WEB_SHUTDOWN_SECONDS = 3.0  # requests still running then are cancelled


async def seed_from_config(db: Database, config: Config) -> None:
    """Make the grids and staff of the config file known to the database."""
    from sqlalchemy import select

    from bot.web.auth import cut_off_sessions
    from models.tables import Grid, StaffRole

    async with db.session() as session:
        for grid in config.grids:
            row = await session.get(Grid, grid.id)
            if row is None:
                session.add(Grid(id=grid.id, name=grid.name, room_id=grid.room_id,
                                 room_topic=grid.room_topic, manager_id=grid.manager))
            else:
                row.name, row.room_id, row.room_topic, row.manager_id = (
                    grid.name, grid.room_id, grid.room_topic, grid.manager)
        configured = {s.id for s in config.staff}
        for staff in config.staff:
            row = await session.get(StaffRole, staff.id)
            if row is None:
                session.add(StaffRole(member_id=staff.id, name=staff.name, role=staff.role,
                                      grids=list(staff.grids), active=True, origin="config"))
            else:  # the config file wins for the staff it lists
                row.name, row.role, row.grids, row.active, row.origin = (
                    staff.name, staff.role, list(staff.grids), True, "config")
        for row in await session.scalars(select(StaffRole)):
            if row.member_id not in configured and row.origin == "config" and row.active:
                # removed from the config: rights end, and the member's dashboard
                # sessions with them (given back later, old cookies stay dead);
                # roles given in the dashboard stay
                row.active = False
                cut_off_sessions(row)


def build_router(config: Config):  # type: ignore[no-untyped-def]
    from handlers.router import Router

    lexicon = config.community.lexicon_dir
    return Router(Path(lexicon) if lexicon else None, cache_dir=config.data_dir / "cache",
                  categories=[c.name for c in config.categories])


def install_features(services: Services) -> None:
    """Hook the optional feature modules into the services (jobs, web pages)."""
    from handlers import features

    features.install(services)


class App:
    """One running bot: its parts, opened and closed as pairs."""

    def __init__(self, config: Config, *, channel: ChatChannel | None = None,
                 clock: Clock | None = None, web_enabled: bool = True,
                 scheduler_enabled: bool = True) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.channel = channel
        self.web_enabled = web_enabled
        self.scheduler_enabled = scheduler_enabled
        self.services: Services | None = None
        self.pipeline: Pipeline | None = None
        self.scheduler: Scheduler | None = None
        self.leader: LeaderLock | None = None
        self.web_port: int | None = None
        self.started_at: datetime | None = None
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()

        async with startup_lock(config.db_url, config.data_dir):  # processes take turns
            await upgrade(config.db_url)
            db = Database(config.db_url)
            self._stack.push_async_callback(db.close)
            await seed_from_config(db, config)

        router = await loop.run_in_executor(None, build_router, config)
        from handlers import timeparse

        await loop.run_in_executor(None, timeparse.warm_up)

        outbox = Outbox(db, self.clock, config.outbox,
                        staff_room=config.community.staff_room,
                        account=config.community.bot_id, route=config.account_for_room)
        self.services = Services(config, db, self.clock, router, outbox)
        install_features(self.services)
        self.pipeline = Pipeline(self.services)
        self.services.extras["pipeline"] = self.pipeline

        channel = self.channel or self._default_channel()
        self.channel = channel
        self.services.extras["channel"] = channel

        await self.pipeline.resume()
        self._stack.push_async_callback(self.pipeline.stop)  # held messages: last try
        if self.scheduler_enabled:
            # Only the leader among the processes of this database runs the jobs (B09);
            # the others keep trying in the background and take over when it dies.
            self.scheduler = Scheduler(self.services)
            self.leader = LeaderLock(config.db_url, config.data_dir)
            self._stack.push_async_callback(self.leader.close)  # stops the scheduler first
            await self.leader.start(self.scheduler.start, on_lost=self.scheduler.stop)

        await outbox.start(channel)
        self._stack.push_async_callback(outbox.stop)
        await channel.start(self.pipeline.deliver)
        self._stack.push_async_callback(channel.stop)

        if self.web_enabled:
            await self._start_web()
        self.started_at = self.clock.now()
        log.info("weizhili ready channel=%s community=%s grids=%d", channel.name,
                 config.community.name, len(config.grids))

    def _default_channel(self) -> ChatChannel:
        config = self.config
        if config.wechaty.endpoint:
            from bot.channels.wechaty import WechatyChannel

            return WechatyChannel(config.wechaty, bot_id_hint=config.community.bot_id,
                                  data_dir=config.data_dir, welcome=config.welcome)
        from bot.channels.simulator import SimulatorChannel

        return SimulatorChannel(config.community.bot_id, config.community.bot_name, self.clock)

    async def _start_web(self) -> None:
        from bot.channels.simulator import SimulatorChannel
        from bot.web.app import make_web_app

        assert self.services is not None
        simulator = self.channel if isinstance(self.channel, SimulatorChannel) else None
        app = make_web_app(self.services, self.pipeline, simulator, self.health)
        if simulator is not None:
            # An open simulator page would hold the server's shutdown until its timeout
            # (B30): on shutdown its socket is closed first, which also stops intake.
            async def close_pages(_app: web.Application) -> None:
                await simulator.stop()

            app.on_shutdown.append(close_pages)
        runner = web.AppRunner(app, handle_signals=False, access_log=None,
                               shutdown_timeout=WEB_SHUTDOWN_SECONDS)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, self.config.web.host, self.config.web.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # noqa: SLF001
        self.web_port = sockets[0].getsockname()[1] if sockets else self.config.web.port
        log.info("web listening url=http://%s:%s/", self.config.web.host, self.web_port)

    def health(self) -> dict[str, Any]:
        channel = self.channel.health() if self.channel else None
        database = self._database_health()
        return {
            "ok": bool(channel and channel.connected) and database["ok"],
            "database": database,
            "channel": self.channel.name if self.channel else None,
            "connected": bool(channel and channel.connected),
            "since": channel.since.isoformat() if channel and channel.since else None,
            "last_event": (channel.last_event.isoformat()
                           if channel and channel.last_event else None),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "detail": channel.detail if channel else {},
        }

    def _database_health(self) -> dict[str, Any]:
        """What intake last saw of the database, and whether a SQLite file still exists."""
        intake = self.pipeline.intake if self.pipeline is not None else None
        held = len(intake.messages) if intake is not None else 0
        problem = ""
        if intake is not None and intake.in_trouble:
            problem = "cannot store messages; holding them"
        path = sqlite_path(self.config.db_url)
        if path is not None and not path.exists():
            problem = f"database file missing: {path}"
        return {"ok": not problem, "problem": problem, "held_messages": held}

    async def stop(self) -> None:
        log.info("weizhili stopping")
        await self._stack.aclose()
        log.info("weizhili stopped")
