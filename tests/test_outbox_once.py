"""Exactly once: a send a crash cut off is settled at the next start, never doubled.

A crash between handing a row to the channel and marking it sent leaves the row
``sending``. These tests put rows in that state by hand (as the crash would) and
start an outbox on them; tests/test_crash.py does the same with real SIGKILLs.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sqlalchemy import select, update

from bot.app import App
from bot.config import OutboxConfig
from bot.outbox import SENDING, UNSURE, Outbox
from models.db import Database, upgrade
from models.tables import OutboundMessage
from tests.conftest import database_url_for
from tests.fakes import RecordingChannel, make_message


class UnconfirmingChannel(RecordingChannel):
    """A channel like WeChat: it cannot say afterwards what it delivered."""

    delivered = None  # type: ignore[assignment]


async def _queue(db: Database, outbox: Outbox, texts: list[str], room: str = "grid-01"
                 ) -> list[int]:
    async with db.session() as session:
        rows = [row for text in texts for row in outbox.add(session, room, text)]
    return [row.id for row in rows]


async def _cut_off(db: Database, ids: list[int]) -> None:
    """What a SIGKILL between the channel's send and the "sent" mark leaves behind."""
    async with db.session() as session:
        await session.execute(
            update(OutboundMessage).where(OutboundMessage.id.in_(ids)).values(status=SENDING))


async def _statuses(db: Database) -> dict[int, str]:
    async with db.session() as session:
        rows = await session.execute(select(OutboundMessage.id, OutboundMessage.status))
        return dict(rows.all())


async def _open(tmp_path, clock, config: OutboxConfig | None = None):  # type: ignore[no-untyped-def]
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    config = config or OutboxConfig(room_interval_seconds=0, global_interval_seconds=0)
    return db, Outbox(db, clock, config, staff_room="staff-room")


async def test_a_confirming_channel_settles_rows_in_doubt_without_sending_twice(tmp_path, clock):
    db, outbox = await _open(tmp_path, clock)
    channel = RecordingChannel()
    try:
        arrived, lost = await _queue(db, outbox, ["已登记诉求 #1", "已登记诉求 #2"])
        later = (await _queue(db, outbox, ["已登记诉求 #3"]))[0]
        # the first reached the chat before the crash; the second never left
        channel.sent.append(replace(make_outgoing(arrived), outbox_id=arrived))
        await _cut_off(db, [arrived, lost])

        outbox._channel = channel  # noqa: SLF001 - start() without the worker task
        verdict = await outbox.settle_in_doubt()
        assert verdict == {"sent": [arrived], "pending": [lost]}
        await outbox.send_due()

        assert [m.outbox_id for m in channel.sent] == [arrived, lost, later]
        assert await _statuses(db) == {arrived: "sent", lost: "sent", later: "sent"}
    finally:
        await db.close()


def make_outgoing(outbox_id: int):  # type: ignore[no-untyped-def]
    from bot.channels.base import OutgoingMessage

    return OutgoingMessage(room_id="grid-01", text="已登记诉求 #1", outbox_id=outbox_id)


async def test_without_confirmation_a_row_in_doubt_is_held_for_staff(tmp_path, clock):
    db, outbox = await _open(tmp_path, clock)
    channel = UnconfirmingChannel()
    try:
        (cut,) = await _queue(db, outbox, ["【提醒】明天上午九点打疫苗"])
        await _cut_off(db, [cut])
        outbox._channel = channel  # noqa: SLF001
        assert await outbox.settle_in_doubt() == {UNSURE: [cut]}
        await outbox.send_due()

        statuses = await _statuses(db)
        assert statuses[cut] == UNSURE  # never sent twice
        assert [m.room_id for m in channel.sent] == ["staff-room"]
        note = channel.sent[0].text
        assert f"编号：{cut}" in note and "/补发" in note
        assert await outbox.pending_count() == 0
    finally:
        await db.close()


async def test_resend_policy_sends_a_row_in_doubt_again(tmp_path, clock):
    config = OutboxConfig(room_interval_seconds=0, global_interval_seconds=0,
                          in_doubt="resend")
    db, outbox = await _open(tmp_path, clock, config)
    channel = UnconfirmingChannel()
    try:
        (cut,) = await _queue(db, outbox, ["【提醒】明天上午九点打疫苗"])
        await _cut_off(db, [cut])
        outbox._channel = channel  # noqa: SLF001
        assert await outbox.settle_in_doubt() == {"pending": [cut]}
        await outbox.send_due()
        assert [m.outbox_id for m in channel.sent] == [cut]
        assert (await _statuses(db))[cut] == "sent"
    finally:
        await db.close()


async def test_two_outboxes_on_one_database_never_send_the_same_row(tmp_path, clock):
    db, first = await _open(tmp_path, clock)
    second = Outbox(db, clock, first.config)
    channels = RecordingChannel(), RecordingChannel()
    try:
        ids = await _queue(db, first, [f"消息{i}" for i in range(120)])
        first._channel, second._channel = channels  # noqa: SLF001
        while any(await asyncio.gather(first.send_due(), second.send_due())):
            pass  # pass after pass, both at once, until neither finds a row
        sent = [m.outbox_id for channel in channels for m in channel.sent]
        assert sorted(sent) == ids  # each once, between them
        assert set((await _statuses(db)).values()) == {"sent"}
    finally:
        await db.close()


async def test_staff_resend_a_held_row_with_a_command(config, clock, tmp_path):
    channel = UnconfirmingChannel()
    bot = App(config, channel=channel, clock=clock, web_enabled=False,
              scheduler_enabled=False)
    await bot.start()
    try:
        services = bot.services
        (cut,) = await _queue(services.db, services.outbox, ["【通知】周六上午停水"])
        await _cut_off(services.db, [cut])
        await services.outbox.settle_in_doubt()

        resident = make_message(f"/补发 {cut}", at=clock.now(), sender="wxid_resident_001")
        assert await bot.pipeline.deliver(resident) == "command:refused"
        staff = make_message(f"/补发 {cut} 99999", at=clock.now(), sender="wxid_gm_zhao",
                             name="赵网格员")
        assert await bot.pipeline.deliver(staff) == "command:补发"
        await services.outbox.send_due()

        texts = channel.texts()
        assert texts.count("【通知】周六上午停水") == 1
        assert any("已安排补发 1 条" in t and "99999" in t for t in texts)
        assert (await _statuses(services.db))[cut] == "sent"
    finally:
        await bot.stop()


async def test_each_account_sends_the_rows_of_its_own_groups(tmp_path, clock, config):
    # two bot accounts (one process each) on one database: the leader queues a post
    # for every grid; each grid's group is posted to by the account that is in it
    from bot.config import GridConfig

    grids = (GridConfig("grid-01", "1网格", "room-01", account="wxid_bot_a"),
             GridConfig("grid-02", "2网格", "room-02", account="wxid_bot_b"))
    config_a = replace(config, grids=grids,
                       community=replace(config.community, bot_id="wxid_bot_a"))
    config_b = replace(config_a, community=replace(config.community, bot_id="wxid_bot_b"))
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    plain = OutboxConfig(room_interval_seconds=0, global_interval_seconds=0)
    outbox_a = Outbox(db, clock, plain, account="wxid_bot_a", route=config_a.account_for_room)
    outbox_b = Outbox(db, clock, plain, account="wxid_bot_b", route=config_b.account_for_room)
    channel_a, channel_b = RecordingChannel(), RecordingChannel()
    outbox_a._channel, outbox_b._channel = channel_a, channel_b  # noqa: SLF001
    try:
        async with db.session() as session:  # queued by the leader, process a
            for room in ("room-01", "room-02", "staff-room", "wxid_resident_009"):
                outbox_a.add(session, room, f"【光荣榜】{room}")
        await asyncio.gather(outbox_b.send_due(), outbox_a.send_due())
        assert sorted(m.room_id for m in channel_a.sent) == [
            "room-01", "staff-room", "wxid_resident_009"]
        assert [m.room_id for m in channel_b.sent] == ["room-02"]
        assert await outbox_a.pending_count() == 0 and await outbox_b.pending_count() == 0
        assert config.account_for_room("grid-01") == ""  # one account: any process sends
    finally:
        await db.close()


async def test_a_private_reminder_goes_back_through_the_account_it_was_asked_of(
        tmp_path, clock, config):
    from datetime import timedelta

    from bot.config import GridConfig
    from schedules.reminders import fire_due_reminders

    grids = (GridConfig("grid-01", "1网格", "room-01", account="wxid_bot_a"),
             GridConfig("grid-02", "2网格", "room-02", account="wxid_bot_b"))
    leader_config = replace(config, grids=grids,
                            community=replace(config.community, bot_id="wxid_bot_a"))
    asked_config = replace(leader_config,
                           community=replace(config.community, bot_id="wxid_bot_b"))
    asked = App(asked_config, channel=RecordingChannel(), clock=clock, web_enabled=False,
                scheduler_enabled=False)
    await asked.start()
    try:  # a resident asks account b, in a private chat
        ask = make_message("半小时后提醒我关火", room=None, at=clock.now(),
                           sender="wxid_resident_007", name="周阿姨")
        assert await asked.pipeline.deliver(ask) == "reminder:set"
    finally:
        await asked.stop()

    leader = App(leader_config, channel=RecordingChannel(), clock=clock, web_enabled=False,
                 scheduler_enabled=False)
    await leader.start()
    try:  # the leader (account a) runs the scheduled jobs
        clock.advance(timedelta(minutes=31))
        assert await fire_due_reminders(leader.services) == 1
        async with leader.services.db.session() as session:
            row = await session.scalar(select(OutboundMessage).where(
                OutboundMessage.source.like("reminder:%")))
        assert row.room_id == "wxid_resident_007" and row.account == "wxid_bot_b"
    finally:
        await leader.stop()
