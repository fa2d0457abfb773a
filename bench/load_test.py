"""A bounded load test: many groups talking to one bot through the simulator's websocket.

    .venv/bin/python bench/load_test.py --seconds 60 --rate 200 --groups 50

Starts ``weizhili run`` (simulator channel, web on 127.0.0.1, a port of its own) in a
fresh folder, opens one websocket per group and sends ``rate`` messages per second
for ``seconds`` seconds: a mix of petitions, praise and chit-chat. Then it waits for
the bot to journal everything (at most ``--drain`` seconds), stops it with SIGTERM
and prints the figures:

- messages sent and lost (sent but never journalled; must be 0) and the bot's
  messages one page saw go out;
- p50 / p99 time from receipt (the bot reading the message off the socket) to its
  reply being queued in the outbox, from the database;
- the rate the bot sustained, and how long it needed after the last send;
- the bot's memory (RSS) at start, at the end and at its peak.

Everything stays on 127.0.0.1 and the run stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

READY = "微治理已启动"
PETITIONS = [
    "{b}号楼{u}单元楼道灯坏了好几天了",
    "{b}栋电梯又停了，老人上不去楼",
    "{b}号楼门口的垃圾好几天没人清理了",
    "{b}号楼暖气一点都不热",
    "{b}栋楼下有人乱停车，消防通道堵了",
]
PRAISE = [
    "谢谢王师傅帮忙修水管",
    "感谢网格员昨天帮忙跑手续",
    "表扬保洁阿姨，楼道特别干净",
]
CHAT = [
    "大家早上好",
    "今天真冷啊",
    "有人知道快递点几点开门吗",
    "哈哈哈",
    "收到",
    "晚上吃什么",
]


def write_config(folder: Path, groups: int, db_url: str) -> Path:
    """A community of ``groups`` grids, unpaced outbox, web on a free loopback port."""
    lines = [
        f'data_dir = "{(folder / "data").as_posix()}"',
        "stale_minutes = 60",
        "[database]",
        f'url = "{db_url}"',
        "[web]",
        'host = "127.0.0.1"',
        "port = 0",
        "[outbox]",
        "room_interval_seconds = 0.0",
        "global_interval_seconds = 0.0",
    ]
    for g in range(1, groups + 1):
        lines += [
            "[[grids]]",
            f'id = "load-{g:02d}"',
            f'name = "压测{g}网格"',
            f'room_id = "load-{g:02d}"',
            'manager = "wxid_load_gm"',
        ]
    staff = [
        ("wxid_load_gm", "压测网格员", "网格员"),
        ("wxid_load_wy", "压测物业", "物业"),
        ("wxid_load_jwh", "压测居委会", "居委会"),
        ("wxid_load_admin", "管理员", "管理员"),
    ]
    for member_id, name, role in staff:
        lines += [
            "[[staff]]",
            f'id = "{member_id}"',
            f'name = "{name}"',
            f'role = "{role}"',
        ]
    path = folder / "load.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def text_for(rng: random.Random) -> str:
    kind = rng.choices(["petition", "praise", "chat"], weights=[3, 1, 6])[0]
    pool = {"petition": PETITIONS, "praise": PRAISE, "chat": CHAT}[kind]
    return rng.choice(pool).format(b=rng.randint(1, 40), u=rng.randint(1, 6))


async def _read(ws: aiohttp.ClientWebSocketResponse, counts: dict[str, int]) -> None:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and '"bot": true' in msg.data:
            counts["replies_seen"] += 1


async def send_load(
    port: int,
    groups: int,
    rate: float,
    seconds: float,
    seed: int,
    until_done: Callable[[int], Awaitable[float]],
) -> dict[str, Any]:
    """Send ``rate`` messages a second over one websocket per group.

    The sockets stay open until ``until_done`` returns: the simulator reads a
    page's messages one after the other, and a page that closes its socket first
    takes its unread messages with it.
    """
    rng = random.Random(seed)
    total = int(rate * seconds)
    counts = {"replies_seen": 0}
    async with aiohttp.ClientSession() as http:
        sockets = [
            await http.ws_connect(f"http://127.0.0.1:{port}/simulator/ws")
            for _ in range(groups)
        ]
        # every page hears every group; the first one counts the bot's messages
        readers = [
            asyncio.create_task(_read(ws, counts if i == 0 else {"replies_seen": 0}))
            for i, ws in enumerate(sockets)
        ]
        started = time.monotonic()
        behind = 0.0
        for i in range(total):
            due = started + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            else:
                behind = max(behind, -pause)
            group = i % groups
            person = rng.randint(1, 60)
            await sockets[group].send_json(
                {
                    "room": f"load-{group + 1:02d}",
                    "from": f"wxid_load_{group}_{person}",
                    "name": f"居民{person}",
                    "text": text_for(rng),
                }
            )
        send_seconds = time.monotonic() - started
        catch_up = await until_done(total)
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
    return {
        "sent": total,
        "send_seconds": send_seconds,
        "catch_up_seconds": round(catch_up, 1),
        "sender_behind_s": behind,
        "bot_messages_seen": counts["replies_seen"],
    }


async def handled_count(db_url: str) -> int:
    """How many messages the bot has finished with."""
    from sqlalchemy import func, select

    from models.db import Database
    from models.tables import InboundMessage

    db = Database(db_url)
    try:
        async with db.session() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(InboundMessage)
                    .where(InboundMessage.status != "pending")
                )
                or 0
            )
    finally:
        await db.close()


async def journal_figures(db_url: str) -> dict[str, Any]:
    """Counts and latencies, read from the bot's database."""
    from sqlalchemy import func, select

    from models.db import Database
    from models.tables import InboundMessage, OutboundMessage

    db = Database(db_url)
    try:
        async with db.session() as session:
            received = dict(
                (
                    await session.execute(
                        select(InboundMessage.message_id, InboundMessage.sent_at).where(
                            InboundMessage.talker_id.like("wxid_load_%")
                        )
                    )
                ).all()
            )
            handled = await session.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.status != "pending")
            )
            span = (
                await session.execute(
                    select(
                        func.min(InboundMessage.received_at),
                        func.max(InboundMessage.processed_at),
                    )
                )
            ).one()
            queued = (
                await session.execute(
                    select(OutboundMessage.source, OutboundMessage.created_at)
                )
            ).all()
    finally:
        await db.close()
    first_reply: dict[str, Any] = {}
    for source, created in queued:
        message_id = source.split(":", 1)[-1]
        if message_id in received and (
            message_id not in first_reply or created < first_reply[message_id]
        ):
            first_reply[message_id] = created
    latencies = sorted(
        (first_reply[m] - received[m]).total_seconds() * 1000 for m in first_reply
    )
    busy = (span[1] - span[0]).total_seconds() if span[0] and span[1] else 0.0
    return {
        "journalled": len(received),
        "handled": int(handled or 0),
        "replies_queued": len(latencies),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else None,
        "handled_per_second": (int(handled or 0) / busy) if busy else None,
    }


async def run(
    seconds: float,
    rate: float,
    groups: int,
    db_url: str | None,
    drain: float,
    seed: int,
) -> dict[str, Any]:
    """The whole run: start the bot, load it, wait, stop it, measure."""
    with tempfile.TemporaryDirectory(prefix="weizhili-load-") as scratch:
        folder = Path(scratch)
        url = db_url or f"sqlite+aiosqlite:///{(folder / 'load.db').as_posix()}"
        config = write_config(folder, groups, url)
        err = (folder / "bot.err").open("wb")
        bot = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "--config",
                str(config),
                "--log-level",
                "WARNING",
                "run",
                "--shutdown-timeout",
                "20",
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            port = await asyncio.to_thread(_wait_ready, bot)
            proc = psutil.Process(bot.pid)
            rss_start = proc.memory_info().rss
            peak = [rss_start]
            sampler = asyncio.create_task(_sample(proc, peak))

            async def until_done(sent: int) -> float:
                finished = time.monotonic()
                while (
                    await handled_count(url) < sent
                    and time.monotonic() - finished < drain
                ):
                    await asyncio.sleep(0.5)
                return time.monotonic() - finished

            load = await send_load(port, groups, rate, seconds, seed, until_done)
            figures = await journal_figures(url)

            rss_end = proc.memory_info().rss
            sampler.cancel()
            bot.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(bot.wait, 60)
        finally:
            if bot.poll() is None:
                bot.kill()
            err.close()
        stderr = (folder / "bot.err").read_text(encoding="utf-8", errors="replace")
    return {
        "groups": groups,
        "rate": rate,
        "seconds": seconds,
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        **load,
        **figures,
        "lost": load["sent"] - figures["journalled"],
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_peak_mb": round(max(peak) / 2**20, 1),
        "exit_code": code,
        "errors_logged": stderr.count(" ERROR "),
    }


def _wait_ready(bot: subprocess.Popen[bytes], timeout: float = 90.0) -> int:
    assert bot.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = bot.stdout.readline().decode("utf-8", errors="replace")
        if READY in line:
            return int(line.split("http://127.0.0.1:")[1].split("/")[0])
        if not line and bot.poll() is not None:
            raise RuntimeError(
                f"the bot exited before it was ready (code {bot.returncode})"
            )
    raise RuntimeError("the bot did not get ready in time")


async def _sample(proc: psutil.Process, peak: list[int]) -> None:
    while True:
        peak.append(proc.memory_info().rss)
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0, help="messages per second")
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument(
        "--db", help="database URL (default: SQLite in a temporary folder)"
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=300.0,
        help="longest wait for the bot to catch up after the last send",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.seconds * args.rate > 200_000:
        parser.error("keep it bounded: 0 < seconds x rate <= 200000")

    figures = asyncio.run(
        run(args.seconds, args.rate, args.groups, args.db, args.drain, args.seed)
    )
    for key, value in figures.items():
        shown = f"{value:.1f}" if isinstance(value, float) else value
        print(f"{key:22} {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if figures["lost"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
