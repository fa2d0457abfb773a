"""Outbox faults: no row stuck ``sending`` while the process keeps running.

Only a send the channel has not answered may stay ``sending`` (a crash then leaves it
to ``settle_in_doubt``); a row the channel refused or never saw goes back to pending.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChannelSendError, OutgoingMessage
from bot.config import OutboxConfig
from bot.db_trouble import DB_TROUBLE
from bot.outbox import Outbox
from models.db import Database, upgrade
from models.tables import OutboundMessage
from tests.conftest import database_url_for
from tests.fakes import RecordingChannel


class FlakyDatabase:
    """The test database; its next ``fail_next`` units of work fail as a sick disk's."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.fail_next = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        if self.fail_next:
            self.fail_next -= 1
            raise OperationalError("UPDATE outbound_messages", None,
                                   Exception("disk I/O error"))
        async with self.db.session() as session:
            yield session


class RefusingChannel(RecordingChannel):
    """Refuses its first send while the database fails to record the refusal."""

    def __init__(self, db: FlakyDatabase, *, confirms: bool) -> None:
        super().__init__()
        self.db = db
        self.refuse = True
        if not confirms:
            self.delivered = None  # type: ignore[assignment,method-assign]

    async def send(self, message: OutgoingMessage) -> str | None:
        if self.refuse:
            self.refuse = False
            self.db.fail_next = 1  # the outbox's note of the failure is what fails
            raise ChannelSendError("发送消息过于频繁", retryable=True)
        return await super().send(message)


async def _statuses(db: Database) -> dict[int, str]:
    async with db.session() as session:
        return dict((await session.execute(
            select(OutboundMessage.id, OutboundMessage.status))).all())


@pytest.mark.parametrize("confirms", [False, True], ids=["one-by-one", "chunked"])
async def test_a_refused_send_the_database_could_not_record_is_not_stuck_sending(
        tmp_path, clock, confirms):
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    flaky = FlakyDatabase(db)
    outbox = Outbox(flaky, clock,  # type: ignore[arg-type]
                    OutboxConfig(room_interval_seconds=0, global_interval_seconds=0))
    channel = RefusingChannel(flaky, confirms=confirms)
    outbox._channel = channel  # drive passes by hand
    try:
        async with db.session() as session:
            rows = [outbox.add(session, room, text)[0] for room, text in
                    [("grid-01", "第一条"), ("grid-02", "第二条"), ("grid-01", "第三条")]]
        ids = [row.id for row in rows]

        with contextlib.suppress(*DB_TROUBLE):
            await outbox.send_due()
        assert "sending" not in (await _statuses(db)).values()

        await outbox.send_due()
        assert channel.texts("grid-01") == ["第一条", "第三条"]  # none lost, order kept
        assert channel.texts("grid-02") == ["第二条"]
        assert await _statuses(db) == dict.fromkeys(ids, "sent")
        assert await outbox.pending_count() == 0
    finally:
        await db.close()


async def test_a_row_cancelled_before_the_channel_saw_it_goes_back_to_pending(
        tmp_path, clock):
    # stop() cancels a worker that does not finish in time: the row it was pacing
    # had not reached the channel, so it is not "in doubt" at the next start
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    pacing = asyncio.Event()

    async def sleep(_seconds: float) -> None:
        pacing.set()
        await asyncio.Event().wait()  # a wait stop() gives up on

    config = OutboxConfig(room_interval_seconds=60, global_interval_seconds=0)
    outbox = Outbox(db, clock, config, sleep=sleep)
    channel = RecordingChannel()
    channel.delivered = None  # type: ignore[assignment,method-assign]
    outbox._channel = channel
    try:
        async with db.session() as session:
            first, second = (outbox.add(session, "grid-01", text)[0]
                             for text in ("第一条", "第二条"))
        task = asyncio.create_task(outbox.send_due())
        await pacing.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        assert channel.texts() == ["第一条"]
        assert await _statuses(db) == {first.id: "sent", second.id: "pending"}
    finally:
        await db.close()


async def test_settling_never_undoes_a_row_another_process_marked_sent(tmp_path, clock):
    # one account, two processes: this one restarts while the other is finishing a
    # send of a shared row; its "sent" mark lands while this one asks its channel
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    plain = OutboxConfig(room_interval_seconds=0, global_interval_seconds=0)
    restarting, other = Outbox(db, clock, plain), Outbox(db, clock, plain)
    (row,) = await _queue_one(db, other, "【通知】周六上午停水")
    (claimed,) = await other._claim([row])
    other_channel = RecordingChannel()
    other._channel = other_channel

    class Asking(RecordingChannel):
        async def delivered(self, outbox_ids: list[int]) -> set[int]:
            platform_id, _ = await other._send_one(claimed)
            await other._mark([(claimed, platform_id)], [])
            return await super().delivered(outbox_ids)  # not by this process's channel

    channel = Asking()
    restarting._channel = channel
    try:
        await restarting.settle_in_doubt()
        await restarting.send_due()

        assert other_channel.texts() == ["【通知】周六上午停水"]
        assert channel.texts() == []  # not a second time
        assert await _statuses(db) == {row.id: "sent"}
    finally:
        await db.close()


async def _queue_one(db: Database, outbox: Outbox, text: str) -> list[OutboundMessage]:
    async with db.session() as session:
        return outbox.add(session, "grid-01", text)


async def test_a_sent_mark_the_database_refused_is_written_at_stop(tmp_path, clock):
    # the "sent" mark failed on a passing database fault and the bot is stopped
    # before the worker's next pass: the row must not look cut off at the next start
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    flaky = FlakyDatabase(db)
    retrying = asyncio.Event()

    async def sleep(_seconds: float) -> None:  # the worker's pause after a failed pass
        retrying.set()
        while not outbox._stopping:
            await asyncio.sleep(0.01)

    outbox = Outbox(flaky, clock,  # type: ignore[arg-type]
                    OutboxConfig(room_interval_seconds=0, global_interval_seconds=0),
                    sleep=sleep)
    channel = RecordingChannel()
    channel.delivered = None  # type: ignore[assignment,method-assign]
    send = channel.send

    async def send_then_fail_the_mark(message: OutgoingMessage) -> str | None:
        flaky.fail_next = 1
        return await send(message)

    channel.send = send_then_fail_the_mark  # type: ignore[method-assign]
    try:
        (row,) = await _queue_one(db, outbox, "【通知】周六上午停水")
        await outbox.start(channel)
        await retrying.wait()
        await outbox.stop()

        assert channel.texts() == ["【通知】周六上午停水"]
        assert await _statuses(db) == {row.id: "sent"}
    finally:
        await db.close()


async def test_a_send_cut_off_in_flight_stays_in_doubt_and_the_rest_of_its_chunk_goes_back(
        tmp_path, clock):
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    outbox = Outbox(db, clock, OutboxConfig(room_interval_seconds=0,
                                            global_interval_seconds=0))
    channel = RecordingChannel()  # confirms deliveries: rows are claimed in chunks
    handed = asyncio.Event()

    async def hanging_send(message: OutgoingMessage) -> str | None:
        handed.set()
        await asyncio.Event().wait()  # the channel never answers
        return None

    channel.send = hanging_send  # type: ignore[method-assign]
    outbox._channel = channel
    try:
        async with db.session() as session:
            first, second = (outbox.add(session, room, "【通知】周六上午停水")[0]
                             for room in ("grid-01", "grid-02"))
        task = asyncio.create_task(outbox.send_due())
        await handed.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        # the channel may or may not have it: settle_in_doubt decides at the next start
        assert await _statuses(db) == {first.id: "sending", second.id: "pending"}
    finally:
        await db.close()
