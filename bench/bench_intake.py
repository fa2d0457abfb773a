"""Intake end to end: generated messages through the real pipeline, beside a raw insert.

The bot runs as ``weizhili replay`` runs it (a manual clock following the messages,
a replay channel, no scheduler, no web server, no network). The clock stops when the
outbox has sent every reply. The scheduler's tick runs in one of two ways, both
measured:

- ``live``: every ``schedules.poll_seconds`` of wall-clock time, as the live bot's
  scheduler runs it. This is what a burst arriving at a thousand messages a second
  meets, and the figure the target is about. The generated day runs past the checks
  meanwhile, so reminders falling due in it are reported to staff as missed: a staff
  post instead of a group post, the same work for the bot.
- ``replay``: every ``poll_seconds`` of the messages' own time, as ``weizhili replay``
  runs it so deadlines fall where they did on the day. The generated day is replayed
  hundreds of times faster than it happened, so this runs the checks once per ~20
  messages instead of once per ~30,000: a harsher, artificial load, shown beside. The raw figure is a
batched ``executemany`` of the same rows into the journal table through aiosqlite
(asyncpg on PostgreSQL), on a fresh database of the same schema, in the same run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import gen
from bot.channels.base import IncomingMessage

log = logging.getLogger(__name__)

BATCH = 1000
_ROUTER: Any = None


def use_shared_router(config: Any) -> None:
    """Make every App of this process reuse one router: building jieba's dictionary
    is start-up, measured on its own, not intake."""
    global _ROUTER
    import bot.app

    if _ROUTER is None:
        _ROUTER = bot.app.build_router(config)
        router = _ROUTER
        bot.app.build_router = lambda config: router  # type: ignore[assignment]


@dataclass
class IntakeResult:
    """One end-to-end run: how many messages, how long, what came of them."""

    messages: int
    seconds: float
    outcomes: dict[str, int]
    replies: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def us_per_message(self) -> float:
        return self.seconds / self.messages * 1e6


# --- databases ----------------------------------------------------------------------


async def fresh_database(url: str) -> None:
    """Start from nothing: delete the SQLite file, or empty the PostgreSQL schema."""
    from models.db import sqlite_path

    path = sqlite_path(url)
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


async def bulk_insert(url: str, table: str, columns: tuple[str, ...],
                      rows: Any, batch: int = 5000) -> int:
    """Insert plain tuples fast: one ``executemany`` per batch, one transaction each."""
    from models.db import sqlite_path

    count = 0
    path = sqlite_path(url)
    if path is not None:
        import aiosqlite

        marks = ",".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})"
        async with aiosqlite.connect(path) as db:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            for chunk in _chunks(rows, batch):
                await db.executemany(sql, chunk)
                await db.commit()
                count += len(chunk)
        return count

    import asyncpg

    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        for chunk in _chunks(rows, batch):
            await conn.copy_records_to_table(table, records=chunk, columns=list(columns))
            count += len(chunk)
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
    return count


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _chunks(rows: Any, size: int) -> Any:
    chunk: list[tuple[object, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


# --- the two measurements -------------------------------------------------------------


async def raw_insert(url: str, community: gen.Community,
                     msgs: list[IncomingMessage]) -> float:
    """Seconds to insert the journal rows of ``msgs`` in batches, through the driver."""
    from models.db import upgrade

    await fresh_database(url)
    await upgrade(url)
    rows = gen.journal_rows(community, msgs, dialect_of(url))
    if dialect_of(url) == "postgresql":
        return await _raw_insert_pg(url, rows)
    started = time.perf_counter()
    await bulk_insert(url, "inbound_messages", gen.JOURNAL_COLUMNS, rows, batch=BATCH)
    return time.perf_counter() - started


async def _raw_insert_pg(url: str, rows: list[tuple[object, ...]]) -> float:
    import asyncpg

    cols = gen.JOURNAL_COLUMNS
    sql = (f"INSERT INTO inbound_messages ({','.join(cols)}) VALUES "
           f"({','.join(f'${i}' for i in range(1, len(cols) + 1))})")
    conn = await asyncpg.connect(_pg_dsn(url))
    try:
        started = time.perf_counter()
        for chunk in _chunks(rows, BATCH):
            async with conn.transaction():
                await conn.executemany(sql, chunk)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def end_to_end(community: gen.Community, msgs: list[IncomingMessage], data_dir: Path,
                     *, fresh: bool = True, profile: Path | None = None,
                     live_ticks: bool = True) -> IntakeResult:
    """Replay ``msgs`` through a started App; seconds from the first delivery to the
    last reply sent."""
    from bot.app import App
    from bot.channels.replay import ReplayChannel
    from bot.clock import ManualClock
    from bot.replay import feed

    config = replace(community.config, data_dir=data_dir)
    if fresh:
        await fresh_database(config.db_url)
    use_shared_router(config)
    clock = ManualClock(msgs[0].timestamp)
    channel = ReplayChannel()
    app = App(config, channel=channel, clock=clock, web_enabled=False,
              scheduler_enabled=False)
    await app.start()
    assert app.pipeline is not None and app.services is not None
    services, pipeline = app.services, app.pipeline
    profiler = _start_profiler() if profile else None
    try:
        started = time.perf_counter()
        await feed(app, clock, msgs, live_ticks=live_ticks)  # as `weizhili replay` does
        await _drain(services.outbox)
        seconds = time.perf_counter() - started
    finally:
        if profiler is not None and profile is not None:
            profiler.stop()
            profile.write_text(profiler.output_text(unicode=True, color=False,
                                                    show_all=False), encoding="utf-8")
        await app.stop()
    return IntakeResult(len(msgs), seconds, dict(pipeline.stats), len(channel.sent))


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(async_mode="enabled", interval=0.001)
    profiler.start()
    return profiler


async def _drain(outbox: Any, timeout: float = 600.0) -> None:
    """Wait until the outbox has sent everything it holds."""
    deadline = time.perf_counter() + timeout
    while await outbox.pending_count():
        if time.perf_counter() > deadline:
            raise TimeoutError("outbox did not drain")
        outbox.wake()
        await asyncio.sleep(0.01)


async def bench_intake(url: str, work: Path, count: int, repeats: int = 3,
                       profile: Path | None = None) -> dict[str, Any]:
    """Median end-to-end and raw rates over ``repeats`` runs, measured side by side."""
    community = gen.make_community(work / "data", url)
    msgs = gen.messages(community, count)
    e2e: list[IntakeResult] = []
    replayed: list[IntakeResult] = []
    raw: list[float] = []
    for run in range(repeats):
        raw.append(count / await raw_insert(url, community, msgs))
        result = await end_to_end(community, msgs, work / "data",
                                  profile=profile if run == repeats - 1 else None)
        e2e.append(result)
        replayed.append(await end_to_end(community, msgs, work / "data", live_ticks=False))
        log.info("intake run=%d msgs=%d rate=%.0f replay_ticks=%.0f raw=%.0f", run, count,
                 result.rate, replayed[-1].rate, raw[-1])
    rates = sorted(r.rate for r in e2e)
    raws = sorted(raw)
    ratios = sorted(r.rate / w for r, w in zip(e2e, raw, strict=True))
    return {
        "messages": count,
        "e2e_rate": rates[len(rates) // 2],
        "replay_ticks_rate": sorted(r.rate for r in replayed)[len(replayed) // 2],
        "raw_rate": raws[len(raws) // 2],
        "ratio": ratios[len(ratios) // 2],
        "runs": [round(r, 1) for r in sorted(x.rate for x in e2e)],
        "outcomes": e2e[-1].outcomes,
        "replies": e2e[-1].replies,
    }
