"""Start-up: from launching the process to the bot being ready, and memory after warm-up.

Each launch is a new Python process that builds the 200-grid community, starts the
whole App (database migrated, lexicon and jieba dictionary loaded, time parser
warmed up, scheduler, web server on 127.0.0.1 with a free port, a replay channel)
and prints a line when ready. It then handles a few hundred generated messages and
reports its resident set size (psutil). The first launch of a data folder also
builds jieba's cache; later launches find it, as a restarted bot does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def launch(data_dir: Path, warm_messages: int) -> dict[str, float]:
    """One launch: seconds to ready and RSS in MB after warm-up."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child", str(data_dir),
         str(warm_messages)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert child.stdout is not None
    ready = None
    report: dict[str, float] = {}
    for line in child.stdout:
        if line.startswith("READY") and ready is None:
            ready = time.perf_counter() - started
        elif line.startswith("{"):
            report = json.loads(line)
    code = child.wait(timeout=600)
    if code != 0 or ready is None:
        raise RuntimeError(f"start-up child failed code={code}")
    return {"ready_seconds": ready, **report}


def bench_startup(work: Path, launches: int = 3, warm_messages: int = 500) -> dict[str, Any]:
    """First launch (jieba cache built) and the median of the following ones."""
    data_dir = work / "startup"
    runs = [launch(data_dir, warm_messages) for _ in range(launches)]
    later = sorted(runs[1:] or runs, key=lambda r: r["ready_seconds"])
    middle = later[len(later) // 2]
    return {
        "first_ready_seconds": runs[0]["ready_seconds"],
        "ready_seconds": middle["ready_seconds"],
        "rss_ready_mb": middle["rss_ready_mb"],
        "rss_mb": max(r["rss_mb"] for r in runs),
        "warm_messages": warm_messages,
        "runs": [round(r["ready_seconds"], 2) for r in runs],
    }


async def _child(data_dir: Path, warm_messages: int) -> None:
    import psutil

    sys.path.insert(0, str(ROOT))
    from bench import gen
    from bot.app import App
    from bot.channels.replay import ReplayChannel
    from bot.clock import ManualClock

    community = gen.make_community(data_dir, f"sqlite+aiosqlite:///{data_dir}/bot.db")
    msgs = gen.messages(community, warm_messages, prefix=f"s{time.time_ns()}-",
                        start=gen.START)
    clock = ManualClock(msgs[0].timestamp)
    app = App(community.config, channel=ReplayChannel(), clock=clock)
    await app.start()
    print("READY", flush=True)
    process = psutil.Process()
    rss_ready = process.memory_info().rss / 2**20
    assert app.pipeline is not None
    try:
        for message in msgs:
            if message.timestamp > clock.now():
                clock.set(message.timestamp)
            await app.pipeline.deliver(message)
    finally:
        await app.stop()
    print(json.dumps({"rss_ready_mb": rss_ready,
                      "rss_mb": process.memory_info().rss / 2**20}), flush=True)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--child":
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_child(Path(sys.argv[2]), int(sys.argv[3])))
