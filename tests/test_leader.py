"""Several bot processes on one database: scheduled posts go out once (field report B09)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.leader import LeaderLock
from models.db import Database, upgrade
from models.tables import OutboundMessage, Reminder
from tests.conftest import database_url_for
from tests.procs import READY, BotProcess, write_config

WON = "leadership won"


async def add_reminder(db: Database, content: str, in_seconds: float) -> int:
    now = datetime.now(UTC)
    async with db.session() as session:
        reminder = Reminder(
            creator_id="wxid_gm_zhao",
            room_ids=["grid-01"],
            content=content,
            due_at=now + timedelta(seconds=in_seconds),
            personal_time=True,
            created_at=now,
        )
        session.add(reminder)
    return reminder.id


async def posts_of(db: Database, reminder_id: int) -> int:
    async with db.session() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.source == f"reminder:{reminder_id}")
            )
            or 0
        )


async def wait_for_post(db: Database, reminder_id: int, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await posts_of(db, reminder_id):
            break
        await _pause(0.2)
    await _pause(3.0)  # several poll periods more: a second scheduler would post again
    return await posts_of(db, reminder_id)


async def _pause(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_second_lock_waits_until_the_first_is_released(tmp_path: Path):
    url = database_url_for(tmp_path)
    first = LeaderLock(url, tmp_path)
    second = LeaderLock(url, tmp_path)
    try:
        assert await first.try_acquire()
        assert not await second.try_acquire()
        await first.close()
        assert await second.try_acquire()
    finally:
        await first.close()
        await second.close()


@pytest.mark.slow
async def test_two_processes_post_a_reminder_once_and_hand_over(tmp_path: Path):
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    bots: list[BotProcess] = []
    try:
        for name in ("a", "b"):
            cfg = write_config(
                tmp_path / f"{name}.toml", tmp_path / f"data-{name}", url
            )
            bot = BotProcess.start(name, ["--config", str(cfg), "run"], tmp_path)
            bots.append(bot)
            assert bot.wait_for(READY, 60), bot.stderr()
        a, b = bots
        leaders = [bot for bot in bots if WON in bot.stderr()]
        assert leaders == [a], "exactly the first process leads"

        first = await add_reminder(db, "第一次测试提醒", 2)
        assert await wait_for_post(db, first) == 1

        a.kill()
        assert b.wait_for(WON, 30), b.stderr()
        second = await add_reminder(db, "第二次测试提醒", 2)
        assert await wait_for_post(db, second) == 1
        assert await posts_of(db, first) == 1

        assert b.terminate() == 0
        assert "ERROR bot.leader" not in b.stderr()
        assert "leadership released" in b.stderr()
    finally:
        for bot in bots:
            bot.kill()
        await db.close()


async def test_two_overlapping_ticks_post_a_due_reminder_once(config, clock):
    """A leader that lost its lock without noticing ticks beside the new leader:
    the due reminder still goes out once, on SQLite and on PostgreSQL."""
    import asyncio

    from bot.app import App
    from schedules.runner import tick
    from tests.fakes import RecordingChannel

    old = App(config, channel=RecordingChannel(), clock=clock, web_enabled=False,
              scheduler_enabled=False)
    new = App(config, channel=RecordingChannel(), clock=clock, web_enabled=False,
              scheduler_enabled=False)
    await old.start()
    await new.start()
    try:
        async with old.services.db.session() as session:
            reminder = Reminder(creator_id="wxid_gm_zhao", room_ids=["grid-01"],
                                content="交取暖费", due_at=clock.now(), personal_time=True,
                                created_at=clock.now())
            session.add(reminder)
        queued, release = asyncio.Event(), asyncio.Event()

        async def hold_the_tick_open(services, session):  # the old leader, mid-tick
            queued.set()
            await release.wait()

        old.services.extras["tick_jobs"] = [hold_the_tick_open]
        new.services.extras["tick_jobs"] = []
        first = asyncio.create_task(tick(old.services))
        await asyncio.wait_for(queued.wait(), 10)  # the reminder is queued, not committed
        second = asyncio.create_task(tick(new.services))
        await asyncio.sleep(0.5)  # the new leader's tick meets the old one's
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 30)
        await tick(new.services)  # and later ticks find nothing left to send
        assert await posts_of(new.services.db, reminder.id) == 1
    finally:
        await new.stop()
        await old.stop()


def test_skipped_ticks_are_quiet_then_warn_once_when_they_last(caplog):
    import logging
    from types import SimpleNamespace

    from schedules import runner

    services = SimpleNamespace(extras={})
    with caplog.at_level(logging.DEBUG, logger="schedules.runner"):
        runner._skipped(services, now=100.0)
        runner._skipped(services, now=130.0)
        assert not [r for r in caplog.records if r.levelno >= logging.INFO]
        runner._skipped(services, now=100.0 + runner.SKIP_WARN_SECONDS)
        runner._skipped(services, now=200.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "tick lock" in warnings[0].getMessage()
