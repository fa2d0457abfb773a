"""Growth: the cost per message of the same intake with more history in the database.

One database is filled in steps (bulk inserts of handled journal rows, sent replies
and petitions in the proportions of real traffic); after each step a fresh batch
of generated messages goes through the pipeline end to end. The cost per message
should stay flat: the spread (largest over smallest) within 1.2.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import gen
from bench.bench_intake import bulk_insert, dialect_of, end_to_end, fresh_database

log = logging.getLogger(__name__)

REPLY_SHARE = 0.15
PETITION_SHARE = 0.05


async def bench_growth(url: str, work: Path, sizes: tuple[int, ...], batch: int,
                       repeats: int = 2) -> dict[str, Any]:
    """µs per message (median of ``repeats`` batches) at each history size."""
    from models.db import upgrade

    community = gen.make_community(work / "data", url)
    dialect = dialect_of(url)
    await fresh_database(url)
    await upgrade(url)
    # History ends the day before the measured batches start.
    history_end = gen.START - timedelta(days=1)
    await bulk_insert(url, "members", gen.MEMBER_COLUMNS,
                      gen.member_rows(community, now=history_end, dialect=dialect))
    have = 0
    rows: list[dict[str, Any]] = []
    for step, size in enumerate(sizes):
        await _fill(url, community, have, size, history_end, dialect)
        have = size
        costs = []
        for run in range(repeats):
            start = gen.START + timedelta(days=10 * (step * repeats + run))
            msgs = gen.messages(community, batch, seed=gen.SEED + 100 + step * 10 + run,
                                start=start, prefix=f"g{step}r{run}-")
            result = await end_to_end(community, msgs, work / "data", fresh=False)
            costs.append(result.us_per_message)
            log.info("growth size=%d run=%d us_per_msg=%.0f", size, run, costs[-1])
        costs.sort()
        rows.append({"history": size, "us_per_message": costs[len(costs) // 2],
                     "runs": [round(c) for c in costs]})
    per_message = [r["us_per_message"] for r in rows]
    return {"batch": batch, "steps": rows, "spread": max(per_message) / min(per_message)}


async def _fill(url: str, community: gen.Community, have: int, want: int,
                end: Any, dialect: str) -> None:
    """Add journal rows (and replies and petitions in proportion) up to ``want``."""
    count = want - have
    if count <= 0:
        return
    journal = gen.journal_fill(community, count, end=end - timedelta(days=have / 50_000),
                               prefix=f"h{have}-", seed=gen.SEED + have, dialect=dialect)
    await bulk_insert(url, "inbound_messages", gen.JOURNAL_COLUMNS, journal, batch=20_000)
    await bulk_insert(url, "outbound_messages", gen.OUTBOX_COLUMNS,
                      gen.outbox_fill(community, int(count * REPLY_SHARE), end=end,
                                      seed=gen.SEED + have, dialect=dialect), batch=20_000)
    await bulk_insert(url, "petitions", gen.PETITION_COLUMNS,
                      gen.petition_rows(community, int(count * PETITION_SHARE), now=end,
                                        seed=gen.SEED + have, dialect=dialect,
                                        open_recent=False), batch=20_000)
    await _analyze(url)


async def _analyze(url: str) -> None:
    """Refresh the planner's statistics after a bulk load, as an operator would."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    finally:
        await engine.dispose()
