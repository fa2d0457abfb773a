"""The simulator over real HTTP and a real websocket, with the bot behind it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest

from bot.app import App
from bot.channels.simulator import SimulatorChannel


@pytest.fixture
async def running(config, clock):  # type: ignore[no-untyped-def]
    # The simulator stamps messages with the real time, so the bot's clock is real too.
    bot = App(replace(config, web=replace(config.web, port=0)), scheduler_enabled=False)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def _say(ws, room: str, sender: str, name: str, text: str, mentions=()):  # type: ignore[no-untyped-def]
    await ws.send_json({"room": room, "from": sender, "name": name, "text": text,
                        "mentions": list(mentions)})


async def _bot_replies(ws, count: int, timeout: float = 10.0) -> list[dict]:  # type: ignore[no-untyped-def]
    replies: list[dict] = []
    async with asyncio.timeout(timeout):
        while len(replies) < count:
            msg = await ws.receive()
            event = json.loads(msg.data)
            if event.get("bot"):
                replies.append(event)
    return replies


async def test_default_channel_is_the_simulator(running):
    assert isinstance(running.channel, SimulatorChannel)
    assert running.config.web.host == "127.0.0.1"


async def test_page_setup_and_health(running):
    base = f"http://127.0.0.1:{running.web_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(base + "/") as page:
            assert page.status == 200
            assert "群聊模拟器" in await page.text()
        async with http.get(base + "/simulator/setup") as setup:
            data = await setup.json()
        async with http.get(base + "/health") as health:
            assert health.status == 200
            assert (await health.json())["connected"] is True
    assert [g["id"] for g in data["groups"]][:3] == ["grid-01", "grid-02", "grid-03"]
    assert any(p["role"] == "物业" for p in data["people"])


async def test_resident_conversation_over_websocket(running):
    url = f"http://127.0.0.1:{running.web_port}/simulator/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await _say(ws, "grid-01", "wxid_resident_001", "张阿姨", "3号楼楼道灯坏了好几天了")
        petition = (await _bot_replies(ws, 1))[0]
        assert "已登记诉求 #1（物业·维修）" in petition["text"]
        assert petition["text"].startswith("@张阿姨")

        await _say(ws, "grid-01", "wxid_resident_002", "李大爷", "谢谢王师傅帮忙修水管")
        praise = (await _bot_replies(ws, 1))[0]
        assert "表扬" in praise["text"]

        await _say(ws, "grid-01", "wxid_resident_002", "李大爷", "今天真冷啊")
        await _say(ws, "grid-01", "wxid_resident_003", "王姐",
                   "@社区小助手 明天下午三点提醒我去社区医院体检",
                   mentions=[running.config.community.bot_id])
        reminder = (await _bot_replies(ws, 1))[0]
        # The chit-chat in between got no reply: the next bot message is the reminder.
        assert "提醒你：去社区医院体检" in reminder["text"]
        assert "月" in reminder["text"] and "周" in reminder["text"]


async def test_malformed_websocket_input_gets_a_clear_message(running):
    url = f"http://127.0.0.1:{running.web_port}/simulator/ws"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str("not json at all")
        event = json.loads((await ws.receive()).data)
        assert event == {"type": "error", "text": "消息格式不对"}
        await _say(ws, "grid-01", "wxid_resident_001", "张阿姨", "2号楼下水道堵了")
        assert "已登记诉求" in (await _bot_replies(ws, 1))[0]["text"]


async def test_reminder_set_in_the_simulator_fires_there(config, clock):
    # The simulator stamps messages with the bot's clock, so a manual clock can be
    # moved past the reminder's time and the scheduler's tick run by hand.
    from schedules.runner import tick

    bot = App(replace(config, web=replace(config.web, port=0)), clock=clock,
              scheduler_enabled=False)
    await bot.start()
    try:
        url = f"http://127.0.0.1:{bot.web_port}/simulator/ws"
        async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
            await _say(ws, "grid-02", "wxid_resident_004", "刘叔",
                       "@社区小助手 今天下午四点提醒我去社区领药",
                       mentions=[bot.config.community.bot_id])
            confirmation = (await _bot_replies(ws, 1))[0]
            assert "12月4日（周五）16:00 提醒你：去社区领药" in confirmation["text"]

            clock.advance(timedelta(hours=1, seconds=5))
            await tick(bot.services)
            fired = (await _bot_replies(ws, 1))[0]
        assert fired["room"] == "grid-02"
        assert fired["text"] == "@刘叔\u2005【提醒】去社区领药"
        assert fired["mentions"] == ["wxid_resident_004"]
    finally:
        await bot.stop()
