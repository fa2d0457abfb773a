"""Copying a community to another database, backup and restore, the journal purge."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.clock import ManualClock
from bot.config import Config
from models.base import Base
from models.db import Database
from models.maintenance import main_backup, main_copy, main_restore, purge_journal
from models.tables import InboundMessage, OutboundMessage, Petition, Praise, Reminder
from tests.conftest import database_url_for, drain
from tests.fakes import RecordingChannel, make_message

MESSAGES = [
    "3号楼楼道灯坏了好几天了",
    "谢谢王师傅帮忙修水管",
    "今天真冷啊",
    "5栋门口的垃圾好几天没人清理了",
    "大家早上好",
]
REMINDER = "@社区小助手\u2005明天下午三点提醒我去社区医院体检"


async def fill(app: App, clock: ManualClock, prefix: str) -> None:
    """A little of everything: petitions, praise, chit-chat, a reminder, sent replies."""
    assert app.pipeline is not None
    for i, text in enumerate(MESSAGES):
        await app.pipeline.deliver(
            make_message(text, at=clock.now(), message_id=f"{prefix}-{i}")
        )
    await app.pipeline.deliver(
        make_message(
            REMINDER,
            at=clock.now(),
            message_id=f"{prefix}-r",
            mentions=("wxid_weizhili_bot",),
            mention_names=("社区小助手",),
            mentions_bot=True,
        )
    )
    await drain(app)


async def run(command, argv: list[str]) -> int:  # type: ignore[no-untyped-def]
    """A command-line entry point, in a thread: it runs its own event loop."""
    return int(await asyncio.to_thread(command, argv))


async def counts(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        async with db.session() as session:
            return {
                t.name: int(await session.scalar(select(func.count()).select_from(t)))
                for t in Base.metadata.sorted_tables
            }
    finally:
        await db.close()


@pytest.fixture
async def source(
    tmp_path: Path, config: Config, clock: ManualClock
) -> AsyncIterator[str]:
    """A SQLite community with data in it, closed again; yields its URL."""
    url = f"sqlite+aiosqlite:///{tmp_path}/source.db"
    app = App(
        replace(config, database_url=url),
        channel=RecordingChannel(),
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await app.start()
    try:
        await fill(app, clock, "src")
    finally:
        await app.stop()
    yield url


def destination(tmp_path: Path) -> str:
    """The test database: PostgreSQL on the PostgreSQL pass, else another SQLite file."""
    if os.environ.get("WEIZHILI_TEST_DB_URL"):
        return database_url_for(tmp_path)
    return f"sqlite+aiosqlite:///{tmp_path}/destination.db"


async def test_copy_moves_every_row_and_ids_continue(
    source, tmp_path, config, clock, capsys
):
    dst = destination(tmp_path)

    assert await run(main_copy, [source, dst]) == 0

    printed = capsys.readouterr().out
    assert "counts match" in printed and "petitions" in printed
    before, after = await counts(source), await counts(dst)
    assert after == before
    assert (
        before["petitions"] >= 2 and before["praise"] == 1 and before["reminders"] == 1
    )
    db_src, db_dst = Database(source), Database(dst)
    try:
        for model in (Petition, Praise, Reminder, InboundMessage, OutboundMessage):
            async with db_src.session() as a, db_dst.session() as b:
                rows_a = [
                    r.__dict__
                    for r in await a.scalars(select(model).order_by(model.id))
                ]
                rows_b = [
                    r.__dict__
                    for r in await b.scalars(select(model).order_by(model.id))
                ]
            strip = [
                {k: v for k, v in r.items() if not k.startswith("_")} for r in rows_a
            ]
            assert strip == [
                {k: v for k, v in r.items() if not k.startswith("_")} for r in rows_b
            ], model.__tablename__
    finally:
        await db_src.close()
        await db_dst.close()

    # the copied community carries on: new rows get fresh ids (sequences were reset)
    app = App(
        replace(config, database_url=dst),
        channel=RecordingChannel(),
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await app.start()
    try:
        assert app.pipeline is not None
        outcome = await app.pipeline.deliver(
            make_message("7号楼电梯坏了，困了人", at=clock.now())
        )
    finally:
        await app.stop()
    assert outcome.startswith("petition")
    assert (await counts(dst))["petitions"] == before["petitions"] + 1


async def test_copy_refuses_a_destination_with_data_unless_forced(
    source, tmp_path, capsys
):
    dst = destination(tmp_path)
    assert await run(main_copy, [source, dst]) == 0

    assert await run(main_copy, [source, dst]) == 1
    assert "not empty" in capsys.readouterr().err

    assert await run(main_copy, [source, dst, "--force"]) == 0
    assert await counts(dst) == await counts(source)


async def test_backup_while_running_then_restore(tmp_path, config, clock):
    url = config.db_url
    app = App(
        config,
        channel=RecordingChannel(),
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await app.start()
    try:
        await fill(app, clock, "before")
        assert await run(main_backup, [str(tmp_path / "backup.sql"), "--url", url]) == 0
        await fill(app, clock, "after")  # written after the backup: gone after restore
    finally:
        await app.stop()
    assert (tmp_path / "backup.sql").stat().st_mode & 0o077 == 0
    grown = await counts(url)

    assert (
        await run(main_restore, [str(tmp_path / "backup.sql"), "--url", url]) == 1
    )  # holds data
    assert (
        await run(main_restore, [str(tmp_path / "backup.sql"), "--url", url, "--force"])
        == 0
    )

    restored = await counts(url)
    assert 0 < restored["inbound_messages"] < grown["inbound_messages"]
    db = Database(url)
    try:
        async with db.session() as session:
            ids = set(await session.scalars(select(InboundMessage.message_id)))
    finally:
        await db.close()
    assert "before-0" in ids and "after-0" not in ids


async def test_purge_forgets_old_chitchat_words_but_keeps_ids_and_petitions(app, clock):
    assert "journal_purge" in app.services.extras["clock_jobs"]
    await fill(app, clock, "old")
    clock.advance(timedelta(days=app.config.journal_keep_days + 1))
    await app.pipeline.deliver(
        make_message("今天真冷啊", at=clock.now(), message_id="new-chat")
    )

    purged = await purge_journal(app.services)

    async with app.services.db.session() as session:
        rows = {r.message_id: r for r in await session.scalars(select(InboundMessage))}
    assert purged == 2  # the two old greetings
    assert rows["old-2"].text is None and rows["old-4"].text is None
    assert rows["old-0"].text == MESSAGES[0]  # a petition keeps its words
    assert rows["old-1"].text == MESSAGES[1]  # so does praise
    assert rows["new-chat"].text == "今天真冷啊"  # too recent
    again = await app.pipeline.deliver(
        make_message("今天真冷啊", at=clock.now(), message_id="old-2")
    )
    assert again == "duplicate"
