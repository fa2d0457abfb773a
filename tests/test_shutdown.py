"""SIGTERM while busy: a clean, bounded stop with the outbox kept (field report B30)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from models.db import Database
from models.tables import InboundMessage, OutboundMessage
from tests.conftest import database_url_for
from tests.procs import READY, BotProcess, write_config

TIMEOUT = 10
BAD_SIGNS = (
    "Task was destroyed but it is pending",
    "Traceback",
    "Exception ignored",
    "was never awaited",
    "shutdown took longer",
)


@pytest.mark.slow
async def test_sigterm_while_busy_stops_cleanly_and_keeps_the_outbox(tmp_path: Path):
    url = database_url_for(tmp_path)
    cfg = write_config(
        tmp_path / "bot.toml",
        tmp_path / "data",
        url,
        outbox="room_interval_seconds = 2.0\nglobal_interval_seconds = 0.5",
    )
    bot = BotProcess.start(
        "bot",
        ["--config", str(cfg), "run", "--shutdown-timeout", str(TIMEOUT)],
        tmp_path,
    )
    try:
        assert bot.wait_for(READY, 60, stream="out"), bot.stderr()
        port = bot.web_port()
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/simulator/ws") as ws,
        ):
            for i in range(40):
                await ws.send_json(
                    {
                        "room": "grid-01",
                        "from": f"wxid_resident_{i:03d}",
                        "name": f"居民{i}",
                        "text": f"{i + 1}号楼楼道灯坏了好几天了",
                    }
                )
            reply = await asyncio.wait_for(_first_bot_message(ws), timeout=30)
            assert reply["room"] == "grid-01"
            bot.proc.terminate()  # SIGTERM while messages are still being handled
            code = await asyncio.to_thread(bot.proc.wait, TIMEOUT + 10)
    finally:
        bot.kill()

    err = bot.stderr()
    assert code == 0, err
    for sign in BAD_SIGNS:
        assert sign not in err, f"{sign!r} in stderr:\n{err[-3000:]}"
    for step in (
        "weizhili stopping",
        "outbox stopped pending=",
        "scheduler stopped",
        "weizhili stopped",
    ):
        assert step in err, step
    assert (
        err.index("outbox stopped")
        < err.index("scheduler stopped")
        < err.index("weizhili stopped")
    )

    left = int(err.split("outbox stopped pending=")[1].split()[0])
    db = Database(url)
    try:
        async with db.session() as session:
            pending = await session.scalar(
                select(func.count())
                .select_from(OutboundMessage)
                .where(OutboundMessage.status == "pending")
            )
            journalled = await session.scalar(
                select(func.count()).select_from(InboundMessage)
            )
    finally:
        await db.close()
    assert (
        left > 0 and pending == left
    )  # paced replies wait in the database for the next start
    assert journalled >= 1


async def _first_bot_message(ws: aiohttp.ClientWebSocketResponse) -> dict[str, object]:
    async for msg in ws:
        event = msg.json()
        if event.get("bot"):
            return event
    raise AssertionError("the socket closed before the bot replied")
