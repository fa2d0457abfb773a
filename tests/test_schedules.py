"""The scheduler: explicit zones, fixed ids, started inside the loop (B09, B11, B13)."""

from __future__ import annotations

import time as systime

from schedules.runner import Scheduler
from tests.conftest import TZ, local


def _specs(app, day: str) -> None:  # type: ignore[no-untyped-def]
    async def weekly(services):  # type: ignore[no-untyped-def]
        return None

    app.services.extras["clock_jobs"]["weekly_test"] = weekly
    app.services.extras["clock_specs"]["weekly_test"] = {"day_of_week": day, "hour": 9,
                                                         "minute": 0}


async def test_restarts_keep_one_job_per_id_and_follow_config(app):
    # field report B13
    _specs(app, "mon")
    for _ in range(3):
        scheduler = Scheduler(app.services)
        await scheduler.start(catch_up=False)
        ids = [job.id for job in scheduler.scheduler.get_jobs()]
        assert ids.count("clock:weekly_test") == 1 and ids.count("tick") == 1
        await scheduler.stop()

    _specs(app, "tue")
    scheduler = Scheduler(app.services)
    await scheduler.start(catch_up=False)
    try:
        job = scheduler.scheduler.get_job("clock:weekly_test")
        assert "day_of_week='tue'" in str(job.trigger)
    finally:
        await scheduler.stop()


async def test_triggers_use_the_community_zone_even_when_the_machine_is_utc(app, monkeypatch):
    # field report B11
    monkeypatch.setenv("TZ", "UTC")
    systime.tzset()
    try:
        _specs(app, "mon")
        scheduler = Scheduler(app.services)
        trigger = scheduler.clock_triggers()["weekly_test"]
        next_run = trigger.get_next_fire_time(None, local(2025, 6, 4, 12, 0))
        assert next_run == local(2025, 6, 9, 9, 0)
        assert next_run.utcoffset() == TZ.utcoffset(next_run.replace(tzinfo=None))
    finally:
        monkeypatch.undo()
        systime.tzset()


async def test_scheduler_starts_only_inside_the_running_loop(app):
    # field report B09: importing and building start nothing
    scheduler = Scheduler(app.services)
    assert scheduler.scheduler.running is False
    await scheduler.start(catch_up=False)
    assert scheduler.scheduler.running is True
    await scheduler.stop()


async def test_a_failing_tick_job_is_rolled_back_alone(app, clock, channel):
    from datetime import timedelta

    from sqlalchemy import func, select

    from models.tables import OutboundMessage, Reminder
    from schedules.runner import tick

    async def broken(services, session):  # type: ignore[no-untyped-def]
        services.outbox.add(session, "grid-01", "半途失败的任务写下的消息")
        await session.flush()
        raise RuntimeError("a bug in one job")

    services = app.services
    services.extras["tick_jobs"].insert(0, broken)
    now = clock.now()
    async with services.db.session() as session:
        session.add(Reminder(creator_id="wxid_gm_zhao", room_ids=["grid-01"],
                             content="下午两点开居民议事会", due_at=now - timedelta(seconds=5),
                             personal_time=True, created_at=now))
    await tick(services)
    await services.outbox.send_due()

    assert channel.texts("grid-01") == ["【提醒】下午两点开居民议事会"]
    async with services.db.session() as session:
        stored = await session.scalar(select(func.count()).select_from(OutboundMessage))
        status = await session.scalar(select(Reminder.status))
    assert stored == 1 and status == "sent"


async def test_a_tick_stops_at_the_first_database_failure(app, caplog):
    from sqlalchemy.exc import OperationalError

    from schedules.runner import tick

    ran: list[str] = []

    async def gone(services, session):  # type: ignore[no-untyped-def]
        ran.append("gone")
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    async def after(services, session):  # type: ignore[no-untyped-def]
        ran.append("after")

    app.services.extras["tick_jobs"][:0] = [gone, after]
    await tick(app.services)
    assert ran == ["gone"]
    assert "tick skipped: database unavailable" in caplog.text
    assert "tick job failed" not in caplog.text
