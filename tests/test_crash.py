"""Crash safety: a replay killed with SIGKILL at random moments loses and doubles nothing.

A reference replay runs once without interruption. The same chat file is then
replayed into another database by a process that is killed at seeded random moments
(during start-up, migrations and message handling alike) and restarted with
``--resume`` each time, until it finishes. Both databases must then agree: every
message journalled once and finished, the same petitions and praise (one per source
message), the same outbox rows per (room, cause), and every reply sent exactly once.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from models.db import Database
from models.tables import (
    Followup,
    InboundMessage,
    OutboundMessage,
    Petition,
    Praise,
    Reminder,
)
from tests.conftest import database_url_for
from tests.procs import ROOT, BotProcess, write_config

SEED = 20261204
MESSAGES = 360
KILLS = 20
RESUMING = "resuming:"

PETITIONS = [
    "{b}号楼{u}单元楼道灯坏了好几天了",
    "{b}栋电梯又停了，老人上不去楼",
    "{b}号楼门口的垃圾好几天没人清理了",
    "{b}号楼暖气一点都不热，家里才十五度",
    "{b}栋楼下有人乱停车，把消防通道堵了",
    "{b}号楼{u}单元下水道堵了，一直往外冒水",
]
PRAISE = [
    "谢谢王师傅帮忙修水管",
    "感谢赵网格员昨天帮我们跑手续",
    "表扬一下保洁刘阿姨，楼道特别干净",
]
CHAT = [
    "大家早上好",
    "今天真冷啊",
    "有人知道快递点几点开门吗",
    "哈哈哈",
    "收到",
    "晚上吃什么",
]


def write_chat(path: Path, rng: random.Random) -> None:
    start = datetime(2026, 12, 1, 8, 40, tzinfo=ZoneInfo("Asia/Shanghai"))
    rooms = [
        ("grid-01", "幸福小区1网格居民群"),
        ("grid-02", "幸福小区2网格居民群"),
        ("grid-03", "和平社区3网格群"),
    ]
    with path.open("w", encoding="utf-8") as handle:
        for i in range(MESSAGES):
            kind = rng.choices(["petition", "praise", "chat"], weights=[3, 1, 4])[0]
            pool = {"petition": PETITIONS, "praise": PRAISE, "chat": CHAT}[kind]
            text = rng.choice(pool).format(b=rng.randint(1, 30), u=rng.randint(1, 6))
            room, topic = rng.choice(rooms)
            person = rng.randint(1, 40)
            handle.write(
                json.dumps(
                    {
                        "id": f"c{i:04d}",
                        "time": (start + timedelta(seconds=45 * i)).isoformat(),
                        "room": room,
                        "room_topic": topic,
                        "sender": f"wxid_res_{person:03d}",
                        "sender_name": f"居民{person}",
                        "text": text,
                        "mentions": [],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )


def replay_args(cfg: Path, chat: Path, url: str, sent_log: Path) -> list[str]:
    return [
        "--config",
        str(cfg),
        "replay",
        str(chat),
        "--db",
        url,
        "--resume",
        "--sent-log",
        str(sent_log),
    ]


def _by_source(outcome: str, petitions: list[Petition]) -> str:
    numbers = {p.id: p.source_message_id for p in petitions}
    return re.sub(r"(?<=follow:)(\d+)", lambda m: str(numbers.get(int(m.group(1)))), outcome)


def _stable_source(source: str, petitions: list[Petition], followups: list[Followup],
                   reminders: list[Reminder]) -> str:
    """An outbox source with database numbers replaced by what they stand for."""
    petition_of = {p.id: p.source_message_id for p in petitions}
    followup_of = {f.id: petition_of.get(f.petition_id) for f in followups}
    reminder_of = {r.id: f"{r.creator_id}/{r.content}/{r.due_at.isoformat()}"
                   for r in reminders}
    kind, _, rest = source.partition(":")
    number, _, tail = rest.partition(":")
    if not number.isdigit():
        return source
    table = {"deadline": petition_of, "followup": followup_of, "reminder": reminder_of,
             "reminder-missed": reminder_of}.get(kind)
    if table is None:
        return source
    return f"{kind}:{table.get(int(number))}:{tail}"


async def snapshot(url: str) -> dict[str, object]:
    """What a finished replay left in its database."""
    db = Database(url)
    try:
        async with db.session() as session:
            journal = list(await session.scalars(select(InboundMessage)))
            petitions = list(await session.scalars(select(Petition)))
            praise = list(await session.scalars(select(Praise)))
            outbox = list(await session.scalars(select(OutboundMessage)))
            followups = list(await session.scalars(select(Followup)))
            reminders = list(await session.scalars(select(Reminder)))
    finally:
        await db.close()
    return {
        "journal": Counter(m.message_id for m in journal),
        "unfinished": [m.message_id for m in journal if m.status == "pending"],
        # PostgreSQL sequences skip the numbers a killed transaction took, so a
        # petition is named by the message that raised it, not by its number.
        "outcomes": {m.message_id: _by_source(m.outcome, petitions) for m in journal},
        "petitions": Counter(p.source_message_id for p in petitions),
        "praise": Counter(p.source_message_id for p in praise),
        "outbox": Counter((o.room_id, _stable_source(o.source, petitions, followups,
                                                     reminders)) for o in outbox),
        "outbox_status": {o.id: o.status for o in outbox},
    }


def sent_ids(log: Path) -> Counter[int]:
    if not log.exists():
        return Counter()
    lines = log.read_text(encoding="utf-8").splitlines()
    return Counter(json.loads(line)["outbox_id"] for line in lines if line.strip())


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path):
    rng = random.Random(SEED)
    chat = tmp_path / "chat.jsonl"
    write_chat(chat, rng)
    reference_url = f"sqlite+aiosqlite:///{tmp_path}/reference.db"
    url = database_url_for(tmp_path)
    cfg = write_config(tmp_path / "bot.toml", tmp_path / "data", url)

    reference = BotProcess.start(
        "reference",
        replay_args(cfg, chat, reference_url, tmp_path / "reference.sent"),
        tmp_path,
    )
    assert reference.proc.wait(timeout=180) == 0, reference.stderr()

    sent_log = tmp_path / "crashed.sent"
    kills = attempts = 0
    while kills < KILLS and attempts < KILLS * 3:
        attempts += 1
        bot = BotProcess.start(
            f"run{attempts}", replay_args(cfg, chat, url, sent_log), tmp_path
        )
        if attempts % 4 == 1:  # now and then during start-up and migrations
            time.sleep(rng.uniform(0.0, 1.5))
        elif bot.wait_for(RESUMING, 60, stream="out"):
            time.sleep(rng.uniform(0.0, 0.6))
        if bot.proc.poll() is None:
            bot.proc.send_signal(signal.SIGKILL)
            bot.proc.wait(timeout=10)
            kills += 1
        elif bot.proc.returncode == 0:
            pytest.fail(f"the replay finished after only {kills} kills; make it longer")
        else:
            pytest.fail(f"replay failed on its own:\n{bot.stderr()}")
    assert kills >= KILLS

    final = BotProcess.start("final", replay_args(cfg, chat, url, sent_log), tmp_path)
    assert final.proc.wait(timeout=180) == 0, final.stderr()
    settled = Counter()
    for run in tmp_path.glob("*.err"):
        for found in re.finditer(r"in doubt after a restart confirmed=True sent=(\d+) "
                                 r"resend=(\d+)", run.read_text(errors="replace")):
            settled["already sent"] += int(found.group(1))
            settled["sent again"] += int(found.group(2))
    print(f"\ncrash test: rows a kill caught mid-send, settled at restart: {dict(settled)}")
    print(
        f"\ncrash test: {kills} kills in {attempts} starts; "
        f"{final.stdout().splitlines()[0] if final.stdout() else ''}"
    )

    want, got = await snapshot(reference_url), await snapshot(url)
    assert set(got["journal"]) == {f"c{i:04d}" for i in range(MESSAGES)}
    assert max(got["journal"].values()) == 1
    assert got["unfinished"] == []
    assert got["outcomes"] == want["outcomes"]
    assert sum(want["petitions"].values()) > MESSAGES // 10, (
        "the file must raise petitions"
    )
    assert got["petitions"] == want["petitions"]  # no petition lost, none doubled
    assert max(got["petitions"].values()) == 1
    assert got["praise"] == want["praise"]
    assert got["outbox"] == want["outbox"]  # each reply stored once per cause

    sends = sent_ids(sent_log)
    statuses = got["outbox_status"]
    assert all(status in ("sent", "pending") for status in statuses.values())
    unsent = [i for i, status in statuses.items() if status == "sent" and not sends[i]]
    assert unsent == [], "a row marked sent never reached the channel"
    pending_but_sent = [i for i, status in statuses.items() if status == "pending" and sends[i]]
    assert pending_but_sent == [], "a row that reached the channel is still pending"
    # the sent log is the receiving end: at each restart the outbox asks it about the
    # rows a kill caught mid-send, so none goes out twice
    again = {i: n for i, n in sends.items() if n > 1}
    assert again == {}, f"rows sent more than once: {again}"
    assert set(sends) <= set(statuses), "the channel got a row the database never had"
    print(f"crash test: {len(statuses)} outbox rows, each sent once")
    assert os.path.getsize(sent_log) > 0


KILL_MID_MIGRATION = """
import os, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from models.db import upgrade_sync

created = []

@event.listens_for(Engine, "after_cursor_execute")
def _die(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("CREATE TABLE"):
        created.append(statement)
        if len(created) == 3:
            os._exit(9)  # as abrupt as SIGKILL: no rollback, no commit

upgrade_sync(sys.argv[1])
"""


def test_a_crash_half_way_through_a_migration_leaves_nothing_half_done(tmp_path: Path):
    from sqlalchemy import create_engine, inspect

    from models.db import upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path}/fresh.db"
    died = subprocess.run([sys.executable, "-c", KILL_MID_MIGRATION, url], cwd=ROOT)
    assert died.returncode == 9

    upgrade_sync(url)  # a half-created schema would fail here: "table already exists"

    engine = create_engine(f"sqlite:///{tmp_path}/fresh.db")
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {
        "inbound_messages",
        "petitions",
        "outbound_messages",
        "alembic_version",
    } <= tables
