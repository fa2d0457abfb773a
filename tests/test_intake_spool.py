"""Held messages on disk: the buffer's size is configured, a crash while sick loses none."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import App
from bot.config import Config, ConfigError, load_config
from bot.db_trouble import DB_TROUBLE
from bot.intake_spool import SPOOL_NAME, IntakeSpool, decode, encode, read_spool
from models.db import Database, sqlite_path
from models.tables import InboundMessage, Petition
from tests.conftest import database_url_for
from tests.fakes import RecordingChannel, make_message
from tests.procs import READY, BotProcess, write_config
from tests.test_sick_db import Sickness, count, deliver_petitions, errors

SQLITE_ONLY = pytest.mark.skipif(
    bool(os.environ.get("WEIZHILI_TEST_DB_URL")),
    reason="the faults are simulated with SQLite pragmas",
)


@pytest.fixture
def sick(app) -> Iterator[Sickness]:  # type: ignore[no-untyped-def]
    app.pipeline.intake.delays = (3600.0,)  # the test drives the retries itself
    sickness = Sickness(app)
    yield sickness
    sickness.heal()  # the fixture's app.stop() then closes cleanly


def spool_file(config: Config) -> Path:
    return config.data_dir / SPOOL_NAME


def message_ids(path: Path) -> list[str]:
    return [m.message_id for m in read_spool(path)]


# -- the config key -------------------------------------------------------------------


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "bot.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_buffer_size_is_read_from_the_intake_table(tmp_path):
    config = load_config(write(tmp_path, "[intake]\nbuffer_size = 250\n"))
    assert config.intake.buffer_size == 250
    assert load_config(None).intake.buffer_size == 10_000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "intake.buffer_size: must be a positive whole number"),
        ("-5", "intake.buffer_size: must be a positive whole number"),
        ('"many"', "intake.buffer_size: expected a whole number, got str"),
        ("2.5", "intake.buffer_size: expected a whole number, got float"),
        ("true", "intake.buffer_size: expected a whole number, got a boolean"),
    ],
)
def test_a_bad_buffer_size_is_named(tmp_path, value, reason):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[intake]\nbuffer_size = {value}\n"))
    assert reason in str(info.value)


def test_an_unknown_intake_key_is_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[intake]\nbufer_size = 5\n"))
    assert "intake.bufer_size: unknown key" in str(info.value)


@SQLITE_ONLY
async def test_the_pipeline_holds_as_many_as_the_config_says(config, clock, caplog):
    config = replace(config, intake=replace(config.intake, buffer_size=3))
    bot = App(
        config,
        channel=RecordingChannel(),
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await bot.start()
    try:
        assert bot.pipeline.intake.capacity == 3
        bot.pipeline.intake.delays = (3600.0,)
        sickness = Sickness(bot)
        sickness.read_only()

        outcomes = await deliver_petitions(bot, clock, 5)

        assert outcomes == ["held"] * 3 + ["dropped"] * 2
        assert message_ids(spool_file(config)) == ["sick-0", "sick-1", "sick-2"]
        assert len(errors(caplog, "intake buffer full; message dropped")) == 2
        sickness.heal()
        assert await bot.pipeline.drain_intake()
        assert await count(bot, Petition) == 3
    finally:
        await bot.stop()


# -- the spool file -------------------------------------------------------------------


def test_a_message_survives_the_round_trip_with_its_offset():
    at = datetime(2026, 12, 4, 15, 0, 7, 123456, tzinfo=timezone(timedelta(hours=8)))
    message = make_message(
        '3号楼\n电梯坏了 "急"',
        at=at,
        message_id="m-1",
        room=None,
        topic="群",
        mentions=("wxid_a", "wxid_bot"),
        mention_names=("阿", "助手"),
        mentions_bot=True,
        is_self=False,
        kind="text",
    )

    back = decode(encode(message))

    assert back == message
    assert back.timestamp.utcoffset() == timedelta(hours=8)
    assert encode(message).endswith(b"\n") and encode(message).count(b"\n") == 1


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path, caplog):
    spool = IntakeSpool(tmp_path, capacity=10)
    assert spool.append(
        [make_message("一", message_id="a"), make_message("二", message_id="b")]
    )
    with (tmp_path / SPOOL_NAME).open("ab") as handle:
        handle.write(encode(make_message("三", message_id="c"))[:25])  # the power went

    assert message_ids(tmp_path / SPOOL_NAME) == ["a", "b"]
    assert "intake spool line unreadable" in caplog.text


def test_the_spool_never_holds_more_than_its_capacity(tmp_path):
    spool = IntakeSpool(tmp_path, capacity=3)
    first = [make_message(str(i), message_id=f"m{i}") for i in range(3)]
    assert spool.append(first)

    # m0 and m1 were journalled meanwhile; m2 is still held when m3 arrives
    assert spool.append([make_message("3", message_id="m3")], held=first[2:])

    assert message_ids(tmp_path / SPOOL_NAME) == ["m2", "m3"]
    assert spool.count == 2
    assert spool.append([make_message("4", message_id="m4")], held=first[2:])
    assert message_ids(tmp_path / SPOOL_NAME) == ["m2", "m3", "m4"]


def test_a_failed_write_leaves_no_torn_line(tmp_path, monkeypatch):
    spool = IntakeSpool(tmp_path, capacity=10)
    assert spool.append([make_message("一", message_id="a")])
    real_fsync = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert not spool.append([make_message("二", message_id="b")])
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert spool.append([make_message("三", message_id="c")])

    assert message_ids(tmp_path / SPOOL_NAME) == ["a", "c"]


def test_a_spool_in_use_by_another_process_is_left_alone(tmp_path):
    live = IntakeSpool(tmp_path, capacity=10)
    assert live.append([make_message("一", message_id="live-1")])
    other = IntakeSpool(tmp_path, capacity=10)  # another process on the same folder
    assert other.append([make_message("二", message_id="other-1")])
    assert other.path != live.path  # it writes a file of its own
    other.close()  # ... and dies

    recovered = IntakeSpool(tmp_path, capacity=10).recover()

    assert [m.message_id for m in recovered] == ["other-1"]
    assert message_ids(tmp_path / SPOOL_NAME) == ["live-1"]


# -- the pipeline ---------------------------------------------------------------------


@SQLITE_ONLY
async def test_held_messages_are_on_disk_while_sick_and_gone_after(app, clock, sick):
    sick.read_only()

    assert await deliver_petitions(app, clock, 3) == ["held"] * 3

    path = spool_file(app.config)
    assert message_ids(path) == ["sick-0", "sick-1", "sick-2"]
    assert not await app.pipeline.drain_intake()
    assert path.exists()
    sick.heal()
    assert await app.pipeline.drain_intake()
    assert not path.exists()
    assert await count(app, Petition) == 3


@SQLITE_ONLY
async def test_a_crash_while_sick_loses_nothing(app, clock, sick, tmp_path):
    sick.read_only()
    assert await deliver_petitions(app, clock, 4) == ["held"] * 4

    # What a SIGKILL leaves on disk, now: the database file and the spool.
    after = tmp_path / "after-crash"
    after.mkdir()
    db_path = sqlite_path(app.services.db.url)
    with sqlite3.connect(db_path) as source, sqlite3.connect(after / "test.db") as copy:
        source.backup(copy)
    shutil.copy(spool_file(app.config), after / SPOOL_NAME)
    config = replace(
        app.config, data_dir=after, database_url=f"sqlite+aiosqlite:///{after}/test.db"
    )
    with sqlite3.connect(after / "test.db") as copy:
        table = InboundMessage.__tablename__
        assert copy.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    clock.advance(timedelta(hours=1))  # restarted later: still handled, not stale

    bot = App(
        config,
        channel=RecordingChannel(),
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await bot.start()
    try:
        async with bot.services.db.session() as session:
            rows = list(await session.scalars(select(InboundMessage)))
        assert sorted(r.message_id for r in rows) == [f"sick-{i}" for i in range(4)]
        assert {r.status for r in rows} == {"done"}
        assert await count(bot, Petition) == 4
        assert not (after / SPOOL_NAME).exists()
    finally:
        await bot.stop()


@SQLITE_ONLY
async def test_a_spooled_message_already_journalled_is_not_handled_twice(
    app, clock, caplog
):
    first = make_message("5号楼楼道灯坏了好几天了", at=clock.now(), message_id="dup-1")
    assert await app.pipeline.deliver(first) != "held"
    second = make_message("6号楼电梯又停了", at=clock.now(), message_id="dup-2")
    # The crash came after dup-1 was journalled, before the spool was removed.
    spool = IntakeSpool(app.config.data_dir, capacity=10)
    assert spool.append([first, second])
    spool.close()
    caplog.set_level(logging.INFO)

    await app.pipeline.resume()

    assert await count(app, InboundMessage) == 2
    assert await count(app, Petition) == 2
    assert "intake spool journalled count=1 already_journalled=1" in caplog.text
    assert not spool_file(app.config).exists()


@SQLITE_ONLY
async def test_a_spool_found_while_still_sick_is_held_again(app, clock, sick):
    messages = [
        make_message(f"{i}号楼楼道灯坏了", at=clock.now(), message_id=f"old-{i}")
        for i in range(2)
    ]
    spool = IntakeSpool(app.config.data_dir, capacity=10)
    assert spool.append(messages)
    spool.close()
    sick.read_only()

    # Unfinished journal rows cannot be read either, so resume() still fails (and a
    # start-up with it), but what the spool held is held again, not lost.
    with pytest.raises(DB_TROUBLE):
        await app.pipeline.resume()

    assert [m.message_id for m in app.pipeline.intake.messages] == ["old-0", "old-1"]
    assert message_ids(spool_file(app.config)) == ["old-0", "old-1"]
    assert await deliver_petitions(app, clock, 1) == ["held"]  # queued behind them
    sick.heal()
    assert await app.pipeline.drain_intake()
    async with app.services.db.session() as session:
        ids = list(
            await session.scalars(
                select(InboundMessage.message_id).order_by(InboundMessage.id)
            )
        )
    assert ids == ["old-0", "old-1", "sick-0"]
    assert not spool_file(app.config).exists()


@SQLITE_ONLY
async def test_a_spool_that_cannot_be_written_keeps_the_message_in_memory(
    app, clock, sick, caplog, monkeypatch
):
    def disk_full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(app.pipeline.spool, "_write", disk_full)
    sick.read_only()

    assert await deliver_petitions(app, clock, 2) == ["held", "held"]

    lost = errors(caplog, "intake spool cannot store a held message")
    assert [m.split("message_id=")[1].split()[0] for m in lost] == ["sick-0", "sick-1"]
    assert not any(
        "楼道灯" in r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG
    ), "residents' words only at DEBUG"
    sick.heal()
    assert await app.pipeline.drain_intake()
    assert await count(app, Petition) == 2
    assert not spool_file(app.config).exists()


@SQLITE_ONLY
async def test_stopping_while_sick_leaves_the_spool_for_the_next_start(
    app, clock, sick, caplog
):
    sick.read_only()
    await deliver_petitions(app, clock, 2)

    await app.pipeline.stop()

    assert message_ids(spool_file(app.config)) == ["sick-0", "sick-1"]
    assert "held messages kept on disk for the next start count=2" in caplog.text


# -- a real process, killed ---------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.slow
async def test_a_process_killed_while_sick_handles_its_spool_after_restart(tmp_path):
    url = database_url_for(tmp_path)
    data = tmp_path / "data"
    cfg = write_config(tmp_path / "bot.toml", data, url)
    args = ["--config", str(cfg), "run", "--shutdown-timeout", "10"]
    sent = 5

    bot = BotProcess.start("sick", args, tmp_path)
    blocker = None
    try:
        assert bot.wait_for(READY, 60, stream="out"), bot.stderr()
        blocker = sqlite3.connect(sqlite_path(url), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # a lock that never clears
        port = bot.web_port()
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/simulator/ws") as ws,
        ):
            for i in range(sent):
                await ws.send_json(
                    {
                        "room": "grid-01",
                        "from": f"wxid_resident_{i:03d}",
                        "name": f"居民{i}",
                        "text": f"{i + 1}号楼楼道灯坏了",
                    }
                )
            assert await asyncio.to_thread(
                _wait_until, lambda: len(_spooled(data)) == sent, 60
            ), bot.stderr()[-3000:]
        bot.kill()
    finally:
        bot.kill()
        if blocker is not None:
            blocker.execute("ROLLBACK")
            blocker.close()

    again = BotProcess.start("healed", args, tmp_path)
    try:
        assert again.wait_for(READY, 60, stream="out"), again.stderr()
        assert "intake spool journalled count=5 already_journalled=0" in again.stderr()
        assert not (data / SPOOL_NAME).exists()
    finally:
        code = again.terminate()
    assert code == 0, again.stderr()[-3000:]

    db = Database(url)
    try:
        async with db.session() as session:
            statuses = list(await session.scalars(select(InboundMessage.status)))
            petitions = list(await session.scalars(select(Petition.id)))
    finally:
        await db.close()
    assert statuses == ["done"] * sent
    assert len(petitions) == sent


def _spooled(folder: Path) -> list[str]:
    path = folder / SPOOL_NAME
    return message_ids(path) if path.exists() else []


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
