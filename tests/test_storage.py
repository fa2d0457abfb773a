"""Storage: migrations, aware UTC times (B16), SQLite pragmas, concurrent writers (B14)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select, text

from models.db import Database, current_revision, upgrade
from models.tables import Reminder
from tests.conftest import database_url_for, local


async def test_migrations_create_and_are_idempotent(tmp_path):
    url = database_url_for(tmp_path)
    await upgrade(url)
    await upgrade(url)
    assert await current_revision(url) is not None


async def test_times_come_back_aware_and_equal(tmp_path):
    # field report B16
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    due = local(2025, 6, 5, 15, 0)
    try:
        async with db.session() as session:
            session.add(Reminder(creator_id="wxid_a", room_ids=["grid-01"], content="交物业费",
                                 due_at=due, created_at=due - timedelta(days=1)))
        async with db.session() as session:
            reminder = (await session.scalars(select(Reminder))).one()
            late = list(await session.scalars(select(Reminder).where(
                Reminder.due_at <= local(2025, 6, 5, 15, 30))))
            early = list(await session.scalars(select(Reminder).where(
                Reminder.due_at <= local(2025, 6, 5, 14, 30))))
        assert reminder.due_at.tzinfo is not None
        assert reminder.due_at == due
        assert len(late) == 1 and early == []
    finally:
        await db.close()


async def test_sqlite_runs_in_wal_mode(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/wal.db"
    await upgrade(url)
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
        assert mode == "wal"
    finally:
        await db.close()


async def test_twenty_concurrent_reports_all_land(app, channel, clock):
    # field report B14: 20 residents within one second
    from tests.conftest import drain
    from tests.fakes import make_message

    messages = [make_message(f"{i}号楼电梯坏了", sender=f"wxid_r{i}", at=clock.now())
                for i in range(1, 21)]
    outcomes = await asyncio.gather(*(app.pipeline.deliver(m) for m in messages))
    await drain(app)
    assert all(o.startswith("petition") for o in outcomes)
    assert len(channel.sent) == 20, channel.texts()
