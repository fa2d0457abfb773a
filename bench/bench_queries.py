"""Queries staff wait for, on a database of a city district's year.

The database holds ``petitions`` petitions (with answered follow-ups for most of the
resolved ones) and ``points`` point entries over the year before "now", plus every
resident as a member. Each query is the product's own code, timed from a fresh
session (median of several runs):

* the three rates per grid for the last month (``handlers.stats.compute_rates``)
* the weekly honor roll of every grid (``handlers.honor_roll.build_rolls``, all grids at once)
* the overdue list (the board filtered on 超时, as ``bot.web.ops.list_petitions``)
  and the nightly digest of open petitions (``schedules.digests``)
* the board's first page (the petitions page, its open and overdue counts)

A module that has not landed yet shows as "n/a".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import gen
from bench.bench_intake import bulk_insert, dialect_of, fresh_database

log = logging.getLogger(__name__)

NOW = gen.START + timedelta(hours=20)  # a Monday evening


async def build_database(url: str, community: gen.Community, petitions: int,
                         points: int) -> None:
    """Create the schema and bulk-load members, petitions, follow-ups and points."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from models.db import upgrade

    dialect = dialect_of(url)
    await fresh_database(url)
    await upgrade(url)
    await bulk_insert(url, "grids", ("id", "name", "room_id", "room_topic", "manager_id"),
                      [(g.id, g.name, g.room_id, g.room_topic, g.manager)
                       for g in community.config.grids])
    await bulk_insert(url, "members", gen.MEMBER_COLUMNS,
                      gen.member_rows(community, now=NOW, dialect=dialect))
    await bulk_insert(url, "petitions", gen.PETITION_COLUMNS,
                      gen.petition_rows(community, petitions, now=NOW, dialect=dialect),
                      batch=20_000)
    await bulk_insert(url, "point_entries", gen.POINT_COLUMNS,
                      gen.point_rows(community, points, now=NOW, dialect=dialect),
                      batch=20_000)
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            resolved = (await conn.execute(text(
                "SELECT id, reporter_id, room_id, resolved_at FROM petitions "
                "WHERE resolved_at IS NOT NULL"))).all()
    finally:
        await engine.dispose()
    await bulk_insert(url, "followups", gen.FOLLOWUP_COLUMNS,
                      gen.followup_rows([tuple(r) for r in resolved]), batch=20_000)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()


def _optional(module: str, name: str) -> Any:
    """``module.name`` when that module has landed, else None."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def queries(community: gen.Community) -> dict[str, Callable[[Any, Any], Awaitable[Any]]]:
    """The timed queries by name; each takes (services, session)."""
    config = community.config
    found: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {}

    compute_rates = _optional("handlers.stats", "compute_rates")
    if compute_rates is not None:
        async def rates(services: Any, session: Any) -> Any:
            until = NOW.astimezone(gen.TZ).replace(hour=0, minute=0, second=0,
                                                   microsecond=0)
            return await compute_rates(session, config, since=until - timedelta(days=30),
                                       until=until, group_by="grid")
        found["three rates per grid, one month"] = rates

    build_rolls = _optional("handlers.honor_roll", "build_rolls")
    previous_week = _optional("handlers.honor_roll", "previous_week")
    if build_rolls is not None and previous_week is not None:
        async def rolls(services: Any, session: Any) -> Any:
            period = previous_week(NOW, config.tz)
            return await build_rolls(session, config, period)
        found[f"weekly honor roll, all {len(config.grids)} grids"] = rolls

    list_petitions = _optional("bot.web.ops", "list_petitions")
    board_filter = _optional("bot.web.ops", "BoardFilter")
    user_class = _optional("bot.web.auth", "User")
    if list_petitions is not None and board_filter is not None and user_class is not None:
        admin = user_class("wxid_admin", "管理员", "管理员", (), "x")

        async def overdue(services: Any, session: Any) -> Any:
            return await list_petitions(session, admin, board_filter(overdue=True), NOW)
        found["overdue list (board, 超时)"] = overdue

        async def board(services: Any, session: Any) -> Any:
            # what the board's handler asks for: a page, the open and overdue counts
            page = await list_petitions(session, admin, board_filter(), NOW)
            await list_petitions(session, admin, board_filter(status="open"), NOW, limit=0)
            await list_petitions(session, admin, board_filter(overdue=True), NOW, limit=0)
            return page
        found["board, first page"] = board

    nightly = _optional("schedules.digests", "nightly_digest")
    if nightly is not None:
        async def digest(services: Any, session: Any) -> Any:
            from sqlalchemy import delete

            from models.tables import JobRun

            await session.execute(delete(JobRun))  # let it run again
            await session.commit()
            return await nightly(services)
        found["nightly digest of open petitions"] = digest
    return found


async def bench_queries(url: str, work: Path, petitions: int, points: int,
                        repeats: int = 5) -> dict[str, Any]:
    """Build the database, then time every query; seconds, median of ``repeats``."""
    from bot.clock import ManualClock
    from bot.context import Services
    from bot.outbox import Outbox
    from models.db import Database

    community = gen.make_community(work / "data", url)
    started = time.perf_counter()
    await build_database(url, community, petitions, points)
    build_seconds = time.perf_counter() - started
    log.info("query database built seconds=%.1f", build_seconds)

    db = Database(url)
    clock = ManualClock(NOW)
    services = Services(community.config, db, clock, None,  # type: ignore[arg-type]
                        Outbox(db, clock, community.config.outbox))
    results: dict[str, Any] = {}
    try:
        for name, query in queries(community).items():
            times = []
            for _ in range(repeats):
                async with db.sessions() as session:
                    t0 = time.perf_counter()
                    await query(services, session)
                    times.append(time.perf_counter() - t0)
                    await session.rollback()
            times.sort()
            results[name] = times[len(times) // 2]
            log.info("query name=%s median=%.3f", name, results[name])
    finally:
        await db.close()
    return {"petitions": petitions, "points": points, "build_seconds": build_seconds,
            "seconds": results, "expected": _expected()}


def _expected() -> list[str]:
    names = []
    if _optional("handlers.stats", "compute_rates") is None:
        names.append("three rates per grid (handlers.stats not there yet)")
    if _optional("handlers.honor_roll", "build_roll") is None:
        names.append("weekly honor roll (handlers.honor_roll not there yet)")
    if _optional("bot.web.ops", "list_petitions") is None:
        names.append("overdue list and board (bot.web.ops not there yet)")
    return names
