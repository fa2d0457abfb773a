"""Contract tests: the real wechaty SDK against a fake puppet-service on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.channels.base import (
    ChannelSendError,
    IncomingMessage,
    OutgoingMessage,
)
from bot.channels.wechaty import (
    WechatyChannel,
    parse_endpoint,
    timestamp_from_payload,
)
from bot.config import ConfigError, WechatyConfig, WelcomeConfig
from tests.fake_puppet import FakePuppetServer, FakeWorld

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "tok-3f9a1c77-weizhili-test"
BOT = "wxid_bot"
ROOM1 = "room-1@chatroom"
ROOM2 = "room-2@chatroom"
SEP = "\u2005"
WAIT = 15.0  # generous upper bound for anything to happen; never a speed claim


def make_config(endpoint: str, **overrides: Any) -> WechatyConfig:
    values: dict[str, Any] = {
        "endpoint": endpoint,
        "token": TOKEN,
        "call_timeout_seconds": 2.0,
        "ding_interval_seconds": 0.2,
        "dong_timeout_seconds": 0.5,
        "backoff_seconds": (0.05, 0.1, 0.2),
    }
    values.update(overrides)
    return WechatyConfig(**values)


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait until ``predicate()`` holds (polling); fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class Inbox:
    """A deliver callback that records messages and may reply."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.reply: Callable[[IncomingMessage], Awaitable[None]] | None = None

    async def __call__(self, message: IncomingMessage) -> None:
        self.messages.append(message)
        if self.reply is not None:
            await self.reply(message)

    def ids(self) -> list[str]:
        return [m.message_id for m in self.messages]

    def by_id(self, message_id: str) -> IncomingMessage:
        return next(m for m in self.messages if m.message_id == message_id)

    async def wait_for(self, message_id: str) -> IncomingMessage:
        await eventually(lambda: message_id in self.ids())
        return self.by_id(message_id)


@pytest.fixture
async def server() -> AsyncIterator[FakePuppetServer]:
    fake = FakePuppetServer(FakeWorld.default(), echo_self=True)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def make_channel(
    tmp_path: Path,
) -> AsyncIterator[Callable[..., Awaitable[tuple[WechatyChannel, Inbox]]]]:
    channels: list[WechatyChannel] = []

    async def factory(
        endpoint: str, *, connect: bool = True, **kwargs: Any
    ) -> tuple[WechatyChannel, Inbox]:
        config_overrides = kwargs.pop("config", {})
        channel = WechatyChannel(
            make_config(endpoint, **config_overrides),
            bot_id_hint=BOT,
            data_dir=tmp_path / "data",
            **kwargs,
        )
        inbox = Inbox()
        channels.append(channel)
        await channel.start(inbox)
        if connect:
            await eventually(lambda: channel.health().connected)
        return channel, inbox

    yield factory
    for channel in channels:
        await channel.stop()


async def barrier(server: FakePuppetServer, inbox: Inbox, room: str = ROOM1) -> None:
    """Everything announced before this point in ``room`` has been handled."""
    message_id = server.inject_room_text(room, "wxid_carol", "barrier")
    await inbox.wait_for(message_id)


# --- incoming and replies ------------------------------------------------------------


async def test_mention_in_room_gets_one_reply_with_mention_ids(server, make_channel):
    channel, inbox = await make_channel(server.endpoint)

    async def reply(message: IncomingMessage) -> None:
        if message.mentions_bot:
            await channel.send(
                OutgoingMessage(
                    room_id=message.room_id or "",
                    text="收到，已登记报修",
                    mention_ids=(message.talker_id,),
                )
            )

    inbox.reply = reply
    mid = server.inject_room_text(
        ROOM1, "wxid_alice", f"@社区小助手{SEP}楼道灯坏了", mention_ids=[BOT]
    )
    await server.wait_sent(1)
    await barrier(server, inbox)

    assert server.sent == [(ROOM1, f"@Alice{SEP}收到，已登记报修", ("wxid_alice",))]
    message = inbox.by_id(mid)
    assert message.room_id == ROOM1
    assert message.room_topic == "1网格居民群"
    assert message.talker_id == "wxid_alice"
    assert message.talker_name == "Alice"
    assert message.text == f"@社区小助手{SEP}楼道灯坏了"
    assert message.mention_ids == (BOT,)
    assert message.mentions_bot is True
    assert "社区小助手" in message.mention_names
    assert message.is_self is False
    assert len(inbox.ids()) == 2  # the mention and the barrier; no echo of the reply
    assert inbox.ids()[0] == mid


async def test_mention_ids_come_from_the_payload_not_from_names(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    # The text names the bot, but the payload mentions nobody: not a mention.
    plain = server.inject_room_text(ROOM1, "wxid_alice", f"@社区小助手{SEP}你好")
    # The payload mentions Bob although the text shows another name.
    other = server.inject_room_text(
        ROOM1, "wxid_alice", f"@王师傅{SEP}谢谢", mention_ids=["wxid_bob"]
    )
    await inbox.wait_for(other)
    assert inbox.by_id(plain).mentions_bot is False
    assert inbox.by_id(plain).mention_ids == ()
    assert inbox.by_id(other).mention_ids == ("wxid_bob",)
    assert inbox.by_id(other).mentions_bot is False
    assert "Bob" in inbox.by_id(other).mention_names


async def test_own_echo_causes_nothing(server, make_channel):
    channel, inbox = await make_channel(server.endpoint)

    async def reply_to_reports(message: IncomingMessage) -> None:
        if "报修" in message.text:
            await channel.send(
                OutgoingMessage(room_id=ROOM1, text="已收到报修：3号楼电梯坏了")
            )

    inbox.reply = reply_to_reports
    first = server.inject_room_text(ROOM1, "wxid_alice", "报修：3号楼电梯坏了")
    await server.wait_sent(1)
    # The echo of the bot's own reply (it contains 报修) arrives as a message event.
    await server.wait_calls("MessagePayload", 2)
    await barrier(server, inbox)

    assert len(server.sent) == 1
    assert inbox.ids()[0] == first
    assert len(inbox.ids()) == 2  # the report and the barrier, no echo
    assert all(m.talker_id != BOT for m in inbox.messages)


async def test_duplicated_event_has_one_effect(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    mid = server.inject_room_text(ROOM1, "wxid_alice", "5栋门禁坏了")
    server.redeliver(mid)
    server.redeliver(mid)
    await barrier(server, inbox)
    server.redeliver(mid)
    await barrier(server, inbox)

    assert inbox.ids().count(mid) == 1


async def test_two_rooms_interleaved_keep_order_within_each_room(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    done: list[tuple[str, str]] = []

    async def slow_handler(message: IncomingMessage) -> None:
        # Early messages are slow: without per-room order, later ones would overtake.
        number = int(message.text.split("-")[1])
        await asyncio.sleep(0.05 if number < 3 else 0)
        done.append((message.room_id or "", message.text))

    inbox.reply = slow_handler
    for number in range(8):
        server.inject_room_text(ROOM1, "wxid_alice", f"a-{number}")
        server.inject_room_text(ROOM2, "wxid_bob", f"b-{number}")
    await eventually(lambda: len(done) == 16)

    assert [t for r, t in done if r == ROOM1] == [f"a-{n}" for n in range(8)]
    assert [t for r, t in done if r == ROOM2] == [f"b-{n}" for n in range(8)]


async def test_message_whose_payload_failed_is_fetched_again(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    server.fail_payloads = 2
    mid = server.inject_room_text(ROOM1, "wxid_alice", "水管爆了")
    await inbox.wait_for(mid)
    await barrier(server, inbox)
    assert inbox.ids().count(mid) == 1
    assert server.calls.count("MessagePayload") >= 3


async def test_message_unknown_to_the_gateway_is_not_retried(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    server.redeliver("msg-that-does-not-exist")
    await barrier(server, inbox)
    await barrier(server, inbox)
    assert server.calls.count("MessagePayload") == 3  # the ghost once, two barriers


async def test_private_message_is_delivered_without_room(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    mid = server.inject_private_text("wxid_bob", "/受理 12")
    message = await inbox.wait_for(mid)
    assert message.room_id is None
    assert message.room_topic == ""
    assert message.talker_id == "wxid_bob"
    assert message.talker_name == "Bob"


async def test_handler_error_does_not_stop_delivery(server, make_channel):
    channel, inbox = await make_channel(server.endpoint)

    async def explode(message: IncomingMessage) -> None:
        if message.text == "boom":
            raise RuntimeError("handler bug")

    inbox.reply = explode
    server.inject_room_text(ROOM1, "wxid_alice", "boom")
    after = server.inject_room_text(ROOM1, "wxid_alice", "after")
    await inbox.wait_for(after)
    assert channel.health().connected


async def test_unknown_message_type_is_skipped(server, make_channel, caplog):
    caplog.set_level(logging.INFO)
    channel, inbox = await make_channel(server.endpoint)
    post = server.inject_room_text(ROOM1, "wxid_alice", "<post/>", msg_type=16)
    image = server.inject_room_text(ROOM1, "wxid_alice", "<img/>", msg_type=6)
    await barrier(server, inbox)

    assert post not in inbox.ids()
    assert image not in inbox.ids()
    assert channel.health().connected
    assert any(
        "unknown type" in r.getMessage() and "type=16" in r.getMessage()
        for r in caplog.records
    )


async def test_timestamps_in_seconds_and_milliseconds(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    when = datetime(2025, 6, 8, 12, 30, tzinfo=UTC)
    seconds = server.inject_room_text(
        ROOM1, "wxid_alice", "s", timestamp=int(when.timestamp())
    )
    millis = server.inject_room_text(
        ROOM1, "wxid_alice", "ms", timestamp=int(when.timestamp() * 1000) + 250
    )
    await inbox.wait_for(millis)

    assert inbox.by_id(seconds).timestamp == when
    assert inbox.by_id(millis).timestamp == when + timedelta(milliseconds=250)


def test_timestamp_parsing_edges():
    fallback = datetime(2025, 6, 8, tzinfo=UTC)
    assert timestamp_from_payload(0, fallback) == fallback
    assert timestamp_from_payload(None, fallback) == fallback
    assert timestamp_from_payload(1749385800, fallback) == datetime(
        2025, 6, 8, 12, 30, tzinfo=UTC
    )
    assert timestamp_from_payload(1749385800_000_000, fallback) == datetime(
        2025, 6, 8, 12, 30, tzinfo=UTC
    )


# --- rooms ---------------------------------------------------------------------------


async def test_topic_change_is_seen_in_the_next_message(server, make_channel):
    _channel, inbox = await make_channel(server.endpoint)
    before = server.inject_room_text(ROOM1, "wxid_alice", "一")
    await inbox.wait_for(before)
    server.change_topic(ROOM1, "幸福小区1网格居民群", changer="wxid_alice")
    after = server.inject_room_text(ROOM1, "wxid_alice", "二")
    await inbox.wait_for(after)

    assert inbox.by_id(before).room_topic == "1网格居民群"
    assert inbox.by_id(after).room_topic == "幸福小区1网格居民群"


async def test_join_calls_the_room_event_callback(server, make_channel):
    events: list[tuple[str, str, list[tuple[str, str]]]] = []

    async def on_room_event(kind: str, room_id: str, members: list) -> None:
        events.append((kind, room_id, members))

    _channel, inbox = await make_channel(server.endpoint, on_room_event=on_room_event)
    server.join(ROOM1, ["wxid_dave"], inviter="wxid_alice", names={"wxid_dave": "Dave"})
    await barrier(server, inbox)

    assert ("join", ROOM1, [("wxid_dave", "Dave")]) in events
    assert server.sent == []


async def test_join_sends_the_welcome_without_callback(server, make_channel):
    welcome = WelcomeConfig(enabled=True, text="欢迎入群！我是{bot}。")
    _channel, _inbox = await make_channel(server.endpoint, welcome=welcome)
    server.join(ROOM2, ["wxid_dave"], names={"wxid_dave": "Dave"})
    await server.wait_sent(1)

    assert server.sent == [
        (ROOM2, f"@Dave{SEP}欢迎入群！我是社区小助手。", ("wxid_dave",))
    ]


async def test_welcome_can_be_switched_off(server, make_channel):
    welcome = WelcomeConfig(enabled=False)
    _channel, inbox = await make_channel(server.endpoint, welcome=welcome)
    server.join(ROOM2, ["wxid_dave"], names={"wxid_dave": "Dave"})
    await barrier(server, inbox, ROOM2)
    assert server.sent == []


# --- sending -------------------------------------------------------------------------


async def test_send_outside_a_message_lands_in_the_right_room(server, make_channel):
    server.world.rooms[ROOM2].aliases["wxid_alice"] = "3栋Alice"
    channel, _inbox = await make_channel(server.endpoint)
    message_id = await channel.send(
        OutgoingMessage(
            room_id=ROOM2, text="明天停水通知", mention_ids=("wxid_alice", "wxid_bob")
        )
    )

    assert server.sent == [
        (ROOM2, f"@3栋Alice{SEP}@Bob{SEP}明天停水通知", ("wxid_alice", "wxid_bob"))
    ]
    assert message_id


async def test_send_uses_given_mention_names(server, make_channel):
    channel, _inbox = await make_channel(server.endpoint)
    await channel.send(
        OutgoingMessage(
            room_id=ROOM1,
            text="请处理",
            mention_ids=("wxid_bob",),
            mention_names=("王师傅",),
        )
    )
    assert server.sent == [(ROOM1, f"@王师傅{SEP}请处理", ("wxid_bob",))]


async def test_picture_is_sent_as_a_file(server, make_channel, tmp_path):
    picture = tmp_path / "honor-roll.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\nnot-really-a-png")
    channel, _inbox = await make_channel(server.endpoint)
    await channel.send(OutgoingMessage(room_id=ROOM1, image_path=picture))

    assert len(server.sent_files) == 1
    room, box = server.sent_files[0]
    assert room == ROOM1
    assert box["name"] == "honor-roll.png"
    assert server.sent == []


async def test_send_when_not_connected_is_retryable(tmp_path):
    channel = WechatyChannel(
        make_config("127.0.0.1:9"), bot_id_hint=BOT, data_dir=tmp_path
    )
    with pytest.raises(ChannelSendError) as caught:
        await channel.send(OutgoingMessage(room_id=ROOM1, text="hi"))
    assert caught.value.retryable is True


async def test_send_timeout_is_retryable(server, make_channel):
    channel, _inbox = await make_channel(
        server.endpoint,
        config={"call_timeout_seconds": 0.2, "ding_interval_seconds": 5},
    )
    server.send_delay = 1.0
    with pytest.raises(ChannelSendError) as caught:
        await channel.send(OutgoingMessage(room_id=ROOM1, text="稍后"))
    assert caught.value.retryable is True


# --- reconnects ----------------------------------------------------------------------


async def test_clean_stream_end_leads_to_reconnect(server, make_channel):
    channel, inbox = await make_channel(server.endpoint)
    server.end_stream()
    await server.wait_streams(2)
    await eventually(lambda: channel.health().connected)

    mid = server.inject_room_text(ROOM1, "wxid_alice", "还在吗")
    await inbox.wait_for(mid)
    assert channel.health().detail["reconnects"] >= 1
    assert server.calls.count("Start") >= 2


async def test_missing_dong_leads_to_reconnect(server, make_channel, caplog):
    caplog.set_level(logging.INFO)
    channel, inbox = await make_channel(server.endpoint)
    server.answer_dongs = False
    await eventually(lambda: any("no dong" in r.getMessage() for r in caplog.records))
    server.answer_dongs = True
    await server.wait_streams(2)
    await eventually(lambda: channel.health().connected)

    mid = server.inject_room_text(ROOM1, "wxid_alice", "恢复了")
    await inbox.wait_for(mid)


async def test_unreachable_endpoint_is_retried_until_it_comes_up(make_channel, caplog):
    caplog.set_level(logging.INFO)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel, inbox = await make_channel(f"127.0.0.1:{port}", connect=False)
    await eventually(
        lambda: sum("connection lost" in r.getMessage() for r in caplog.records) >= 2
    )
    assert not channel.health().connected

    fake = FakePuppetServer(FakeWorld.default())
    await fake.start(port)
    try:
        await eventually(lambda: channel.health().connected)
        mid = fake.inject_room_text(ROOM1, "wxid_alice", "上线了")
        await inbox.wait_for(mid)
    finally:
        await fake.stop()


class FakeProcess:
    """The fake server as a separate process, driven over its HTTP control port."""

    def __init__(self, tmp_path: Path) -> None:
        self.sent_file = tmp_path / "sent.jsonl"
        self.proc: subprocess.Popen[str] | None = None
        self.grpc_port = 0
        self.control_port = 0

    def start(self, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_puppet",
                "--port",
                str(port),
                "--control-port",
                "0",
                "--sent-file",
                str(self.sent_file),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.startswith("READY"), line
        fields = dict(part.split("=") for part in line.split()[1:])
        self.grpc_port, self.control_port = int(fields["grpc"]), int(fields["control"])

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        url = f"http://127.0.0.1:{self.control_port}{path}"
        async with aiohttp.ClientSession() as http:
            async with http.request(method, url, json=body) as response:
                response.raise_for_status()
                return await response.json()

    def sent(self) -> list[dict[str, Any]]:
        if not self.sent_file.exists():
            return []
        return [json.loads(line) for line in self.sent_file.read_text().splitlines()]


async def test_abrupt_kill_of_the_server_leads_to_reconnect(make_channel, tmp_path):
    fake = FakeProcess(tmp_path)
    fake.start()
    try:
        channel, inbox = await make_channel(f"127.0.0.1:{fake.grpc_port}")

        async def reply(message: IncomingMessage) -> None:
            await channel.send(
                OutgoingMessage(room_id=ROOM1, text=f"收到：{message.text}")
            )

        inbox.reply = reply
        first = await fake.call(
            "POST", "/inject", {"room": ROOM1, "talker": "wxid_alice", "text": "一"}
        )
        await inbox.wait_for(first["message_id"])
        await eventually(lambda: len(fake.sent()) == 1)

        fake.kill()
        await eventually(lambda: not channel.health().connected)
        fake.start(fake.grpc_port)
        await eventually(lambda: channel.health().connected)

        second = await fake.call(
            "POST", "/inject", {"room": ROOM1, "talker": "wxid_alice", "text": "二"}
        )
        await inbox.wait_for(second["message_id"])
        await eventually(lambda: len(fake.sent()) == 2)
        assert [s["text"] for s in fake.sent()] == ["收到：一", "收到：二"]
        assert all(s["conversation_id"] == ROOM1 for s in fake.sent())
    finally:
        if fake.proc and fake.proc.poll() is None:
            fake.kill()


# --- configuration and secrets -------------------------------------------------------


def test_missing_endpoint_fails_fast_without_any_connection(tmp_path, monkeypatch):
    attempts: list[Any] = []

    def record(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError("no connection may be attempted")

    async def record_async(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError("no connection may be attempted")

    monkeypatch.setattr(socket, "create_connection", record)
    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setattr(socket.socket, "connect_ex", record)
    monkeypatch.setattr(asyncio, "open_connection", record_async)
    monkeypatch.setattr(
        asyncio.base_events.BaseEventLoop, "create_connection", record_async
    )
    import requests

    monkeypatch.setattr(requests.Session, "request", record)
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", TOKEN)

    for endpoint in ("", "   "):
        with pytest.raises(ConfigError, match=r"wechaty\.endpoint: required"):
            WechatyChannel(
                WechatyConfig(endpoint=endpoint, token=TOKEN),
                bot_id_hint=BOT,
                data_dir=tmp_path,
            )
    assert attempts == []


@pytest.mark.parametrize(
    "endpoint", ["127.0.0.1", "https://127.0.0.1:8788", "127.0.0.1:notaport"]
)
def test_malformed_endpoint_is_a_config_error(endpoint):
    with pytest.raises(ConfigError, match=r"wechaty\.endpoint"):
        parse_endpoint(endpoint)


def test_endpoint_forms_accepted():
    assert parse_endpoint("127.0.0.1:8788") == ("127.0.0.1", 8788)
    assert parse_endpoint("grpc://127.0.0.1:8788") == ("127.0.0.1", 8788)


async def test_token_never_appears_in_logs(
    server, make_channel, caplog, capfd, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    # A second token in the environment makes the SDK log both tokens.
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", TOKEN + "-env")
    channel, inbox = await make_channel(server.endpoint)
    mid = server.inject_room_text(ROOM1, "wxid_alice", "hi", mention_ids=[BOT])
    await inbox.wait_for(mid)
    await channel.send(OutgoingMessage(room_id=ROOM1, text="ok"))
    # Even with the SDK logger opened up, the token is redacted.
    sdk_logger = logging.getLogger("PuppetService")
    level = sdk_logger.level
    sdk_logger.setLevel(logging.DEBUG)
    try:
        server.end_stream()
        await server.wait_streams(2)
        await eventually(lambda: channel.health().connected)
    finally:
        sdk_logger.setLevel(level)

    text = caplog.text + "".join(capfd.readouterr())
    assert "token<***>" in caplog.text  # the SDK did try to log it
    assert TOKEN not in text
    assert len(caplog.records) > 10


async def test_cache_dir_is_inside_the_data_folder(server, make_channel, tmp_path):
    await make_channel(server.endpoint)
    assert os.environ["CACHE_DIR"] == str(
        (tmp_path / "data" / "wechaty-cache").resolve()
    )
    assert (tmp_path / "data" / "wechaty-cache").is_dir()
