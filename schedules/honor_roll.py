"""Posting the honor rolls: weekly per grid, community-wide, and monthly; each once.

A roll is keyed by what it covers: ``honor:grid-01:2026-W49``,
``honor:community:2026-W49``, ``honor-month:grid-01:2026-11``. Posting claims the key
by inserting its ``job_runs`` row in the same transaction as the outbox rows, so:

    the scheduler fires at the configured time   → the latest due roll is posted
    the bot was down at that time                → the start-up catch-up posts it,
                                                   late, with a （补发） note
    two instances share the database (B09)       → the second insert fails; that
                                                   instance posts nothing
    it already ran                               → nothing (field reports B08, B13)

Only the latest due roll of each kind is caught up: after a long outage the group
gets one late roll, not a backlog. The rolls of all grids still to post are computed
together (:func:`handlers.honor_roll.build_rolls`, a fixed number of queries however
many grids there are) before any is posted; should that fail, each grid's roll is
built on its own, so one bad grid never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.config import WEEKDAYS, Config, GridConfig
from bot.context import Services
from handlers.honor_roll import (
    Period,
    Roll,
    build_roll,
    build_rolls,
    format_roll,
    previous_month,
    previous_week,
)
from models.tables import JobRun

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=15)
EARLY_FIRE = timedelta(seconds=90)  # a scheduler waking a moment early still counts


@dataclass(frozen=True)
class RollTarget:
    """One roll to post: its key, whose it is, and where it goes."""

    key: str
    grid: GridConfig | None
    room_id: str


def last_weekly_due(now: datetime, config: Config) -> datetime:
    """The latest weekly roll time at or before ``now``, in the community's zone."""
    tz = config.tz
    local = now.astimezone(tz)
    at = config.schedules.honor_roll_time
    back = (local.weekday() - WEEKDAYS.index(config.schedules.honor_roll_day)) % 7
    day = local.date() - timedelta(days=back)
    due = datetime(day.year, day.month, day.day, at.hour, at.minute, tzinfo=tz)
    return due - timedelta(days=7) if due > local else due


def last_monthly_due(now: datetime, config: Config) -> datetime:
    """The latest monthly roll time at or before ``now``."""
    tz = config.tz
    local = now.astimezone(tz)
    at = config.schedules.honor_roll_time
    day = config.schedules.monthly_roll_day
    due = datetime(local.year, local.month, day, at.hour, at.minute, tzinfo=tz)
    if due > local:
        year, month = (
            (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
        )
        due = datetime(year, month, day, at.hour, at.minute, tzinfo=tz)
    return due


def targets(config: Config, kind: str, period: Period) -> list[RollTarget]:
    """Every roll of this kind and period: one per grid, one for the community group."""
    prefix = "honor" if kind == "week" else "honor-month"
    found = []
    for grid in config.grids:
        if not grid.room_id:
            log.warning("grid has no room id; honor roll skipped grid=%s", grid.id)
            continue
        found.append(
            RollTarget(f"{prefix}:{grid.id}:{period.label}", grid, grid.room_id)
        )
    if config.community.community_room:
        found.append(
            RollTarget(
                f"{prefix}:community:{period.label}",
                None,
                config.community.community_room,
            )
        )
    return found


def late_note(due: datetime, config: Config) -> str:
    local = due.astimezone(config.tz)
    weekday = "一二三四五六日"[local.weekday()]
    return (
        f"（补发）这份光荣榜原定{local.month}月{local.day}日（周{weekday}）"
        f"{local:%H:%M}发出，因系统维护晚了一些，抱歉。"
    )


def image_path(config: Config, key: str) -> Path:
    return config.data_dir / "honor" / f"{key.replace(':', '_')}.png"


async def build_pending(
    services: Services, period: Period, found: list[RollTarget]
) -> dict[str, Roll]:
    """The grid rolls of ``found`` not yet posted, by key, computed in one go."""
    keys = [target.key for target in found]
    try:
        async with services.db.session() as session:
            done = set(
                await session.scalars(select(JobRun.key).where(JobRun.key.in_(keys)))
            )
            pending = [t for t in found if t.grid is not None and t.key not in done]
            if not pending:
                return {}
            rolls = await build_rolls(
                session, services.config, period, [t.grid for t in pending if t.grid]
            )
    except Exception:  # each roll is then built on its own, as post_roll does
        log.exception("honor rolls together failed period=%s", period.label)
        return {}
    return {t.key: rolls[t.grid.id] for t in pending if t.grid}


async def post_roll(
    services: Services,
    period: Period,
    target: RollTarget,
    *,
    due: datetime,
    roll: Roll | None = None,
) -> str:
    """Post one roll unless its key was claimed: posted | empty | done | lost."""
    from handlers.honor_card import render_card

    config = services.config
    async with services.db.session() as session:
        if await session.get(JobRun, target.key) is not None:
            return "done"
        if roll is None:
            roll = await build_roll(session, config, period, target.grid)

    now = services.now()
    late = now - due > LATE_AFTER
    text = format_roll(roll, late_note=late_note(due, config) if late else "")
    card = None
    if not roll.empty:
        try:
            card = await asyncio.to_thread(
                render_card,
                roll,
                image_path(config, target.key),
                data_dir=config.data_dir,
            )
        except Exception:  # the text roll goes out even without its picture
            log.exception("honor card failed key=%s", target.key)
    outcome = "empty" if roll.empty else "posted"
    try:
        async with services.db.session() as session:
            session.add(
                JobRun(
                    key=target.key,
                    ran_at=now,
                    note=f"{outcome}{' late' if late else ''}",
                )
            )
            await session.flush()  # claim first: the instance whose insert fails loses
            if not roll.empty:
                source = f"honor:{target.key}"[:64]
                services.outbox.add(session, target.room_id, text, source=source)
                if card is not None:
                    services.outbox.add(
                        session, target.room_id, image_path=card.path, source=source
                    )
    except IntegrityError:
        log.info("honor roll claimed elsewhere key=%s", target.key)
        return "lost"
    services.outbox.wake()
    log.info(
        "honor roll %s key=%s late=%s entries=%d image=%s",
        outcome,
        target.key,
        late,
        len(roll.entries),
        bool(card),
    )
    return outcome


async def post_due(
    services: Services, kind: str, *, early: timedelta = timedelta(0)
) -> dict[str, str]:
    """Post the latest due roll of ``kind`` (week | month) wherever not yet posted."""
    config = services.config
    moment = services.now() + early
    if kind == "week":
        due = last_weekly_due(moment, config)
        period = previous_week(due, config.tz)
    else:
        due = last_monthly_due(moment, config)
        period = previous_month(due, config.tz)
    found = targets(config, kind, period)
    built = await build_pending(services, period, found)
    results = {}
    for target in found:
        try:
            results[target.key] = await post_roll(
                services, period, target, due=due, roll=built.get(target.key)
            )
        except Exception:  # one grid's failure must not stop the others
            log.exception("honor roll failed key=%s", target.key)
            results[target.key] = "error"
    return results


async def run_weekly(services: Services) -> dict[str, str]:
    """The scheduled weekly roll."""
    return await post_due(services, "week", early=EARLY_FIRE)


async def run_monthly(services: Services) -> dict[str, str]:
    """The scheduled monthly roll."""
    return await post_due(services, "month", early=EARLY_FIRE)


async def catch_up(services: Services) -> dict[str, str]:
    """At start-up: post the latest weekly and monthly rolls if they were missed."""
    results = await post_due(services, "week")
    results.update(await post_due(services, "month"))
    return results


def install(services: Services) -> None:
    """Register the roll jobs and their times (community zone) on the services."""
    schedules = services.config.schedules
    at = schedules.honor_roll_time
    services.extras["clock_jobs"]["honor_roll"] = run_weekly
    services.extras["clock_specs"]["honor_roll"] = dict(
        day_of_week=schedules.honor_roll_day, hour=at.hour, minute=at.minute
    )
    services.extras["clock_jobs"]["honor_roll_monthly"] = run_monthly
    services.extras["clock_specs"]["honor_roll_monthly"] = dict(
        day=schedules.monthly_roll_day, hour=at.hour, minute=at.minute
    )
    services.extras["catch_up_jobs"]["honor_roll"] = catch_up
