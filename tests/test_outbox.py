"""The outbox: stored first, ordered per room, paced (B28), retried, kept across restarts."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import OutboxConfig
from bot.outbox import Outbox, split_text
from models.db import Database, upgrade
from models.tables import OutboundMessage
from tests.conftest import database_url_for
from tests.fakes import RecordingChannel, make_message


class PacedClock:
    """The loop's clock as seen by the outbox, advanced only by its own sleeps."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def _outbox(tmp_path, clock, config: OutboxConfig, sleep=asyncio.sleep):  # type: ignore[no-untyped-def]
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    return db, Outbox(db, clock, config, sleep=sleep)


def test_long_texts_split_at_line_breaks():
    text = "\n".join(f"第{i}行内容" for i in range(100))
    parts = split_text(text, 60)
    assert all(len(p) <= 60 for p in parts)
    assert "\n".join(parts) == text
    assert split_text("短", 60) == ["短"]
    assert [len(p) for p in split_text("长" * 130, 60)] == [60, 60, 10]


async def test_order_within_rooms_and_minimum_intervals(tmp_path, clock):
    # field report B28: 30 groups at once, at least the interval apart, order kept
    paced = PacedClock()
    config = OutboxConfig(room_interval_seconds=1.5, global_interval_seconds=0.5)
    db, outbox = await _outbox(tmp_path, clock, config, sleep=paced.sleep)
    channel = RecordingChannel()
    try:
        async with db.session() as session:
            for i in range(3):
                for room in ("grid-01", "grid-02"):
                    outbox.add(session, room, f"{room}-{i}")
        outbox._channel = channel  # noqa: SLF001 - drive one pass by hand
        await outbox.send_due()
    finally:
        await db.close()

    assert channel.texts("grid-01") == ["grid-01-0", "grid-01-1", "grid-01-2"]
    assert channel.texts("grid-02") == ["grid-02-0", "grid-02-1", "grid-02-2"]
    # every send after the first waited: no tight loop
    assert len(paced.slept) == 5 and all(s > 0 for s in paced.slept)


async def test_pacing_measured_on_the_real_loop(tmp_path, clock):
    config = OutboxConfig(room_interval_seconds=0.2, global_interval_seconds=0.05)
    db, outbox = await _outbox(tmp_path, clock, config)
    channel = RecordingChannel()
    stamps: list[float] = []
    original = channel.send

    async def stamped(message):  # type: ignore[no-untyped-def]
        stamps.append(asyncio.get_running_loop().time())
        return await original(message)

    channel.send = stamped  # type: ignore[method-assign]
    try:
        async with db.session() as session:
            for i in range(3):
                outbox.add(session, "grid-01", f"m{i}")
        outbox._channel = channel  # noqa: SLF001
        await outbox.send_due()
    finally:
        await db.close()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap >= 0.19 for gap in gaps)


async def test_failed_send_is_retried_with_backoff_then_sent(tmp_path, clock):
    config = OutboxConfig(room_interval_seconds=0, global_interval_seconds=0, max_attempts=3)
    db, outbox = await _outbox(tmp_path, clock, config)
    channel = RecordingChannel()
    channel.fail_next = 1
    try:
        async with db.session() as session:
            outbox.add(session, "grid-01", "第一条")
            outbox.add(session, "grid-01", "第二条")
        outbox._channel = channel  # noqa: SLF001
        await outbox.send_due()
        assert channel.sent == []  # the room waits: order is kept behind the failure
        await outbox.send_due()
        assert channel.sent == []  # still inside the back-off
        clock.advance(timedelta(seconds=3))
        await outbox.send_due()
        assert channel.texts() == ["第一条", "第二条"]
        async with db.session() as session:
            first = await session.get(OutboundMessage, 1)
        assert first.attempts == 2 and first.status == "sent"
    finally:
        await db.close()


async def test_gives_up_after_max_attempts(tmp_path, clock):
    config = OutboxConfig(room_interval_seconds=0, global_interval_seconds=0, max_attempts=2)
    db, outbox = await _outbox(tmp_path, clock, config)
    channel = RecordingChannel()
    channel.fail_next = 5
    try:
        async with db.session() as session:
            outbox.add(session, "grid-01", "发不出去")
        outbox._channel = channel  # noqa: SLF001
        for _ in range(3):
            await outbox.send_due()
            clock.advance(timedelta(minutes=10))
        async with db.session() as session:
            row = await session.get(OutboundMessage, 1)
        assert row.status == "failed" and row.attempts == 2
    finally:
        await db.close()


async def test_unsent_messages_survive_a_restart(config, clock, tmp_path):
    from bot.app import App

    down = RecordingChannel()
    down.fail_next = 100
    config = replace(config, outbox=replace(config.outbox, max_attempts=50))
    bot = App(config, channel=down, clock=clock, web_enabled=False, scheduler_enabled=False)
    await bot.start()
    await bot.pipeline.deliver(make_message("3号楼电梯坏了", at=clock.now()))
    await bot.services.outbox.send_due()
    await bot.stop()

    up = RecordingChannel()
    bot = App(config, channel=up, clock=clock, web_enabled=False, scheduler_enabled=False)
    clock.advance(timedelta(minutes=5))
    await bot.start()
    try:
        await bot.services.outbox.send_due()
        assert len(up.sent) == 1 and up.sent[0].text.startswith("已登记诉求 #1")
        async with bot.services.db.session() as session:
            statuses = list(await session.scalars(select(OutboundMessage.status)))
        assert statuses == ["sent"]
    finally:
        await bot.stop()


async def test_an_urgent_alert_and_a_quiet_group_do_not_wait_behind_a_busy_group(
        tmp_path, clock):
    """300 replies queued in one group, then a gas alert for the staff group and one
    reply in another group: both go out among the first sends, not after the 300."""
    config = OutboxConfig(room_interval_seconds=0.01, global_interval_seconds=0.0)
    db, outbox = await _outbox(tmp_path, clock, config)
    channel = RecordingChannel()
    try:
        async with db.session() as session:
            for i in range(300):
                outbox.add(session, "grid-01", f"已登记诉求 #{i + 1}", source="petition")
            outbox.add(session, "grid-02", "已登记诉求 #301", source="petition")
            outbox.add(session, "staff-room", "【紧急】5号楼煤气味", source="urgent")
        outbox._channel = channel  # noqa: SLF001 - drive the passes by hand
        await outbox.send_due()
        first = [m.text for m in channel.sent[:3]]
        while await outbox.send_due():
            pass
    finally:
        await db.close()

    assert first[0] == "【紧急】5号楼煤气味"
    assert "已登记诉求 #301" in first
    busy = channel.texts("grid-01")
    assert busy == [f"已登记诉求 #{i + 1}" for i in range(300)]  # its own order kept
    assert len(channel.sent) == 302


async def test_a_pass_ends_after_its_time_so_new_alerts_are_picked_up(tmp_path, clock):
    from bot import outbox as outbox_module

    config = OutboxConfig(room_interval_seconds=0.05, global_interval_seconds=0.0)
    db, outbox = await _outbox(tmp_path, clock, config)
    channel = RecordingChannel()
    try:
        async with db.session() as session:
            for i in range(40):
                outbox.add(session, "grid-01", f"回复{i}")
        outbox._channel = channel  # noqa: SLF001
        original = outbox_module.PASS_SECONDS
        outbox_module.PASS_SECONDS = 0.2
        try:
            assert await outbox.send_due()
        finally:
            outbox_module.PASS_SECONDS = original
        sent_in_first_pass = len(channel.sent)
        assert 1 <= sent_in_first_pass < 40  # the pass stopped; the rest still pending
        assert await outbox.pending_count() == 40 - sent_in_first_pass
    finally:
        await db.close()


async def test_a_pass_reads_pending_rows_by_index_however_long_the_history(tmp_path, clock):
    """Growth: with statistics on a table of many sent rows, the pass's query still
    reads the pending rows through the (status, account) index, not the whole table
    (a per-room window function once made SQLite scan it, 53 ms a pass)."""
    from datetime import UTC, datetime

    from sqlalchemy import insert, text

    url = database_url_for(tmp_path)
    if not url.startswith("sqlite"):
        pytest.skip("SQLite's planner; PostgreSQL's is measured by the growth benchmark")
    db, outbox = await _outbox(tmp_path, clock, OutboxConfig())
    now = datetime.now(UTC)
    try:
        async with db.session() as session:
            await session.execute(insert(OutboundMessage), [
                {"room_id": f"room-{i % 200}", "text": "已收到", "source": "petition",
                 "status": "sent", "created_at": now, "account": ""} for i in range(5000)])
            await session.execute(text("ANALYZE"))
        async with db.session() as session:
            connection = await session.connection()
            sql = str(outbox._next_rows(200).compile(  # noqa: SLF001
                connection.sync_connection, compile_kwargs={"literal_binds": True}))
            plan = " ".join(str(row) for row in await session.execute(
                text("EXPLAIN QUERY PLAN " + sql)))
    finally:
        await db.close()
    assert "ix_outbound_status_account" in plan and "SCAN outbound_messages" not in plan, plan
