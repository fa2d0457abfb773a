"""End to end: ``weizhili run`` as a process against a fake puppet-service gateway.

Both run as separate processes on 127.0.0.1. A resident reports a leak and asks for
a reminder, a staff member accepts the petition by command, and the reminder fires;
the test reads what the gateway received (its ``--sent-file``, which survives a
SIGKILL). The gateway is killed twice in the middle of the conversation and started
again on the same port:

* while the bot's acknowledgement of a second leak is on the wire (the gateway
  holds sends for a while, so the kill loses the send unrecorded);
* across the moment the reminder falls due, so the reminder is queued while the
  gateway is down.

Afterwards every petition is in the database once, every outbox row is marked sent,
and the gateway received each of them exactly once: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from models.db import Database
from models.tables import InboundMessage, OutboundMessage, Petition, Reminder
from tests.conftest import database_url_for
from tests.procs import ROOT, BotProcess

HOST = "127.0.0.1"
TOKEN = "e2e-token-5c1d9a0f7b"
BOT = "wxid_e2e_bot"
BOT_NAME = "社区小助手"
GRID_ROOM = "e2e-grid-1@chatroom"
STAFF_ROOM = "e2e-staff@chatroom"
LI, ZHOU = "wxid_res_li", "wxid_res_zhou"
WANG, ZHAO = "wxid_wy_wang", "wxid_gm_zhao"
SEP = "\u2005"
WAIT = 30.0  # an upper bound for anything to happen; never a speed claim

WORLD = {
    "bot_id": BOT,
    "bot_name": BOT_NAME,
    "contacts": {LI: "李阿姨", ZHOU: "周先生", WANG: "王经理", ZHAO: "赵网格员"},
    "rooms": {
        GRID_ROOM: {
            "topic": "幸福小区1网格居民群",
            "members": [BOT, LI, ZHOU, WANG, ZHAO],
            "aliases": {LI: "3栋李阿姨"},
        },
        STAFF_ROOM: {"topic": "幸福社区工作群", "members": [BOT, WANG, ZHAO]},
    },
}


def write_bot_config(path: Path, data_dir: Path, db_url: str, port: int) -> Path:
    """A config for a WeChat bot whose grid and staff live in the fake world."""
    path.write_text(
        f"""data_dir = "{data_dir.as_posix()}"

[community]
name = "幸福社区"
bot_id = "{BOT}"
bot_name = "{BOT_NAME}"
staff_room = "{STAFF_ROOM}"
staff_room_topic = "幸福社区工作群"

[[grids]]
id = "grid-01"
name = "幸福小区1网格"
room_id = "{GRID_ROOM}"
room_topic = "幸福小区1网格居民群"
manager = "{ZHAO}"

[[staff]]
id = "{ZHAO}"
name = "赵网格员"
role = "网格员"
grids = ["grid-01"]

[[staff]]
id = "{WANG}"
name = "王经理"
role = "物业"

[database]
url = "{db_url}"

[web]
host = "{HOST}"
port = 0

[schedules]
poll_seconds = 1

[outbox]
room_interval_seconds = 0.05
global_interval_seconds = 0.05
max_attempts = 20

[wechaty]
endpoint = "{HOST}:{port}"
token = "{TOKEN}"
call_timeout_seconds = 5.0
ding_interval_seconds = 2.0
dong_timeout_seconds = 3.0
backoff_seconds = [0.3, 0.5, 1.0]
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def clean_env() -> dict[str, str]:
    """The environment without settings that would override the config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WECHATY_")}
    env.pop("WEIZHILI_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout:g}s: {what}")


class Gateway:
    """The fake puppet-service gateway as a process (``python -m tests.fake_puppet``)."""

    def __init__(self, folder: Path, world: Path, sent_file: Path) -> None:
        self.folder, self.world, self.sent_file = folder, world, sent_file
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.control = 0
        self.runs = 0

    def start(self) -> None:
        """Start (again) on the same gRPC port; the sent file keeps growing."""
        self.runs += 1
        out = self.folder / f"gateway{self.runs}.out"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.fake_puppet",
                "--port",
                str(self.port),
                "--control-port",
                "0",
                "--world",
                str(self.world),
                "--sent-file",
                str(self.sent_file),
            ],
            cwd=ROOT,
            stdout=out.open("wb"),
            stderr=(self.folder / f"gateway{self.runs}.err").open("wb"),
            env=clean_env(),
        )

        def ready() -> str:
            assert self.proc is not None and self.proc.poll() is None, (
                "gateway exited: " + self.stderr()
            )
            text = out.read_text(encoding="utf-8")
            return next((ln for ln in text.splitlines() if ln.startswith("READY")), "")

        fields = dict(
            f.split("=") for f in wait_until(ready, "gateway READY").split()[1:]
        )
        self.port, self.control = int(fields["grpc"]), int(fields["control"])

    def stderr(self) -> str:
        path = self.folder / f"gateway{self.runs}.err"
        return path.read_text(encoding="utf-8", errors="replace")[-2000:]

    def kill(self) -> None:
        """SIGKILL: no clean end of the stream, no goodbye."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def call(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request to the control interface on 127.0.0.1."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"http://{HOST}:{self.control}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def say(self, talker: str, text: str, mention_ids: list[str] | None = None) -> str:
        """A member writes in the grid group; returns the message id."""
        answer = self.call(
            "/inject",
            {
                "room": GRID_ROOM,
                "talker": talker,
                "text": text,
                "mention_ids": mention_ids or [],
            },
        )
        assert answer["delivered"], "no event stream open"
        return str(answer["message_id"])

    def connected(self) -> bool:
        try:
            return bool(self.call("/state")["stream_open"])
        except OSError:
            return False

    def sent(self) -> list[dict[str, Any]]:
        """Everything every run of the gateway received, in order."""
        if not self.sent_file.exists():
            return []
        lines = self.sent_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def find(
    entries: list[dict[str, Any]], room: str, *fragments: str
) -> list[dict[str, Any]]:
    """The sent entries in ``room`` whose text holds every fragment."""
    return [
        e
        for e in entries
        if e["conversation_id"] == room
        and all(f in e.get("text", "") for f in fragments)
    ]


async def snapshot(url: str) -> dict[str, Any]:
    """What the bot left in its database."""
    db = Database(url)
    try:
        async with db.session() as session:
            journal = list(await session.scalars(select(InboundMessage)))
            petitions = list(await session.scalars(select(Petition)))
            reminders = list(await session.scalars(select(Reminder)))
            outbox = list(
                await session.scalars(
                    select(OutboundMessage).order_by(OutboundMessage.id)
                )
            )
    finally:
        await db.close()
    return {
        "journal": Counter(m.message_id for m in journal),
        "unfinished": [m.message_id for m in journal if m.status == "pending"],
        "petitions": Counter(p.source_message_id for p in petitions),
        "petition_status": {p.id: p.status for p in petitions},
        "reminders": [(r.status, r.sent_count) for r in reminders],
        "outbox": [
            {
                "room": o.room_id,
                "text": o.text,
                "mention_ids": list(o.mention_ids or ()),
                "status": o.status,
                "attempts": o.attempts,
            }
            for o in outbox
        ],
    }


@pytest.mark.slow
def test_weizhili_run_against_a_gateway_killed_twice(tmp_path: Path) -> None:
    world = tmp_path / "world.json"
    world.write_text(json.dumps(WORLD, ensure_ascii=False), encoding="utf-8")
    gateway = Gateway(tmp_path, world, tmp_path / "sent.jsonl")
    url = database_url_for(tmp_path)
    bot: BotProcess | None = None
    try:
        gateway.start()
        cfg = write_bot_config(
            tmp_path / "bot.toml", tmp_path / "data", url, gateway.port
        )
        bot = BotProcess.start(
            "bot", ["--config", str(cfg), "run"], tmp_path, clean_env()
        )
        assert bot.wait_for("weizhili ready", WAIT), bot.stderr()[-3000:]
        wait_until(gateway.connected, "the bot opened its event stream")

        # A resident asks for a reminder first: it falls due one minute later.
        asked_at = time.monotonic()
        gateway.say(LI, f"@{BOT_NAME}{SEP}1分钟后提醒我关水阀", [BOT])
        [confirm] = wait_until(
            lambda: find(gateway.sent(), GRID_ROOM, "关水阀", "取消提醒"),
            "the reminder is confirmed",
        )
        assert confirm["mention_ids"] == [LI]
        assert confirm["text"].startswith(f"@李阿姨{SEP}")

        # A leak, the bot mentioned: one acknowledgement, mentioning the reporter.
        leak1 = gateway.say(
            LI, f"@{BOT_NAME}{SEP}3号楼2单元楼道水管漏水了，地上全是水", [BOT]
        )
        [ack1] = wait_until(
            lambda: find(gateway.sent(), GRID_ROOM, "登记", "#1"),
            "the first leak is acknowledged",
        )
        assert ack1["mention_ids"] == [LI]
        assert ack1["text"].startswith(f"@李阿姨{SEP}")

        # The property manager accepts it by command: the group and the reporter
        # are told.
        gateway.say(WANG, "/受理 1")
        accepted = wait_until(
            lambda: (
                len(found := find(gateway.sent(), GRID_ROOM, "#1", "已受理")) == 2
                and found
            ),
            "the acceptance is announced and the reporter told",
        )
        assert sorted(e["mention_ids"] for e in accepted) == [[], [LI]]

        # Kill 1: the gateway dies while the bot's acknowledgement of a second leak
        # (the bot not mentioned) is on the wire.
        gateway.call("/send-delay", {"seconds": 60})
        before = gateway.sent()
        leak2 = gateway.say(ZHOU, "5号楼地下室漏水了，麻烦物业来看看")
        wait_until(
            lambda: gateway.call("/state")["sending"] == 1,
            "the reply to the second leak is on the wire",
        )
        gateway.kill()
        assert gateway.sent() == before  # the send was lost, unrecorded
        gateway.start()
        [ack2] = wait_until(
            lambda: find(gateway.sent(), GRID_ROOM, "登记", "#2"),
            "the second leak's acknowledgement arrives after the restart",
        )
        assert ack2["mention_ids"] == [ZHOU]
        assert ack2["text"].startswith(f"@周先生{SEP}")

        # Kill 2: the gateway is down when the reminder falls due (at least 59 s
        # after it was asked for), so the reminder waits in the outbox.
        time.sleep(max(0.0, asked_at + 56 - time.monotonic()))
        assert not find(gateway.sent(), GRID_ROOM, "【提醒】")
        gateway.kill()
        queued = "reminder sent reminder=1"
        assert bot.wait_for(queued, WAIT), bot.stderr()[-3000:]
        wait_until(
            lambda: "wechaty not connected" in bot.stderr().split(queued, 1)[1],
            "the outbox tried the reminder while the gateway was down",
        )
        down = len(gateway.sent())
        gateway.start()
        [reminder] = wait_until(
            lambda: find(gateway.sent()[down:], GRID_ROOM, "【提醒】关水阀"),
            "the reminder reaches the gateway after the restart",
        )
        assert reminder["mention_ids"] == [LI]
        assert reminder["text"].startswith(f"@李阿姨{SEP}")

        assert bot.terminate() == 0, bot.stderr()[-3000:]
    finally:
        if bot is not None:
            bot.kill()
        gateway.kill()

    state = asyncio.run(snapshot(url))
    sent = gateway.sent()
    print(f"\ne2e: {len(sent)} messages reached the gateway over {gateway.runs} runs")

    # No petition lost or doubled; every message journalled once and finished.
    assert state["petitions"] == Counter({leak1: 1, leak2: 1})
    assert state["petition_status"][1] == "accepted"
    assert max(state["journal"].values()) == 1
    assert state["unfinished"] == []
    assert state["reminders"] == [("sent", 1)]

    # Every outbox row was sent, and the gateway received each exactly once.
    assert [row for row in state["outbox"] if row["status"] != "sent"] == []
    keys = [(e["conversation_id"], e["text"], tuple(e["mention_ids"])) for e in sent]
    assert [key for key, n in Counter(keys).items() if n > 1] == []
    assert len(sent) == len(state["outbox"])
    for row in state["outbox"]:
        matches = [
            key
            for key in keys
            if key[0] == row["room"]
            and key[1].endswith(row["text"])
            and list(key[2]) == row["mention_ids"]
        ]
        assert len(matches) == 1, row
    # The two replies that met a dead gateway were each tried more than once.
    retried = [row["text"] for row in state["outbox"] if row["attempts"] > 1]
    assert any("#2" in text for text in retried), state["outbox"]
    assert any("【提醒】" in text for text in retried), state["outbox"]
