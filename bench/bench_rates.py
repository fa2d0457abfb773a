"""How long the three rates take on a city's worth of petitions (prints figures).

    .venv/bin/python bench/bench_rates.py [--petitions 200000] [--db PATH]

Builds a SQLite file of synthetic petitions and follow-ups spread over a year, then
times ``compute_rates`` for a month and a year, whole and grouped.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.config import demo_config
from handlers.stats import compute_rates
from models.db import Database, upgrade
from models.tables import Followup, Petition

CATEGORIES = [
    ("维修", "物业"),
    ("环境", "物业"),
    ("纠纷", "居委会"),
    ("安全", "网格员"),
]
STATUSES = ["closed"] * 6 + ["resolved"] * 2 + ["reported", "accepted", "withdrawn"]


def petitions(count: int, start: datetime, rng: random.Random) -> list[dict]:
    rows = []
    for number in range(1, count + 1):
        created = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        category, party = rng.choice(CATEGORIES)
        status = rng.choice(STATUSES)
        accepted = created + timedelta(minutes=rng.randrange(5, 300))
        resolved = accepted + timedelta(minutes=rng.randrange(10, 2000))
        done = status in ("closed", "resolved")
        rows.append(
            {
                "id": number,
                "grid_id": f"grid-0{rng.randrange(1, 4)}",
                "room_id": "g",
                "reporter_id": f"wxid_{rng.randrange(5000)}",
                "reporter_name": "",
                "text": "…",
                "category": category,
                "party": party,
                "assignee_id": "",
                "location": "",
                "keywords": [],
                "urgent": False,
                "private": False,
                "status": status,
                "created_at": created,
                "updated_at": created,
                "response_due": created + timedelta(hours=2),
                "resolve_due": created + timedelta(hours=8),
                "accepted_at": accepted if status != "reported" else None,
                "resolved_at": resolved if done else None,
                "closed_at": None,
                "reopen_count": rng.choice([0] * 9 + [1]),
                "escalation": 0,
                "followers": [],
                "due_kind": "",
            }
        )
    return rows


def followups(rows: list[dict], rng: random.Random) -> list[dict]:
    out = []
    for row in rows:
        if row["resolved_at"] is None:
            continue
        answered = rng.random() < 0.7
        out.append(
            {
                "petition_id": row["id"],
                "member_id": row["reporter_id"],
                "room_id": "g",
                "due_at": row["resolved_at"],
                "attempts": 1,
                "answer": "",
                "status": "answered" if answered else "unanswered",
                "contacted": rng.random() < 0.95 if answered else None,
                "solved": rng.random() < 0.85 if answered else None,
                "satisfied": rng.random() < 0.8 if answered else None,
            }
        )
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--petitions", type=int, default=200_000)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    path = Path(args.db or tempfile.mkdtemp()) / "rates-bench.db"
    path.unlink(missing_ok=True)
    url = f"sqlite+aiosqlite:///{path}"
    await upgrade(url)
    db = Database(url)
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    began = time.perf_counter()
    rows = petitions(args.petitions, start, rng)
    answers = followups(rows, rng)
    async with db.session() as session:
        for i in range(0, len(rows), 20_000):
            await session.execute(insert(Petition), rows[i : i + 20_000])
        for i in range(0, len(answers), 20_000):
            await session.execute(insert(Followup), answers[i : i + 20_000])
    print(
        f"built {len(rows)} petitions, {len(answers)} follow-ups "
        f"in {time.perf_counter() - began:.1f}s ({path})"
    )

    config = demo_config()
    periods = {
        "month": (datetime(2026, 6, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)),
        "year": (start, start + timedelta(days=365)),
    }
    for label, (since, until) in periods.items():
        for group_by in (None, "grid", "category", "week"):
            began = time.perf_counter()
            async with db.session() as session:
                result = await compute_rates(
                    session, config, since=since, until=until, group_by=group_by
                )
            ms = (time.perf_counter() - began) * 1000
            total = sum(r.petitions for r in result)
            print(
                f"{label:5} group_by={group_by!s:8} rows={len(result):3} "
                f"petitions={total:6} {ms:8.1f} ms"
            )
    await db.close()


if __name__ == "__main__":
    asyncio.run(main())
