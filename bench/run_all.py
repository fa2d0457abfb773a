"""Every benchmark, one table: ``.venv/bin/python bench/run_all.py [--quick] [--pg URL]``.

Each figure is the median of several runs; ratios are measured side by side in the
same run, because absolute times vary between machines. Every benchmark generates
its own data from a fixed seed (``bench/gen.py``). ``--pg`` repeats the intake and
query benchmarks on a PostgreSQL database (its ``public`` schema is dropped and
recreated: give it a database of its own, e.g. ``weizhili_bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_classification import bench_classification  # noqa: E402
from bench.bench_growth import bench_growth  # noqa: E402
from bench.bench_intake import bench_intake  # noqa: E402
from bench.bench_queries import bench_queries  # noqa: E402
from bench.bench_startup import bench_startup  # noqa: E402

log = logging.getLogger("bench")


class Sizes:
    """How big each benchmark is: full, quick, or tiny (the smoke test)."""

    def __init__(self, mode: str) -> None:
        full, quick, tiny = mode == "full", mode == "quick", mode == "tiny"
        self.classify = 20_000 if full else 5_000 if quick else 200
        self.rounds = 5 if not tiny else 1
        self.intake = 100_000 if full else 10_000 if quick else 100
        self.intake_repeats = 3 if not tiny else 1  # a median of three
        self.growth = ((10_000, 100_000, 1_000_000) if full else (10_000, 100_000) if quick
                       else (200, 1_000))
        self.growth_batch = 2_000 if full else 1_000 if quick else 50
        self.growth_repeats = 3 if not tiny else 1
        self.petitions = 200_000 if not tiny else 2_000
        self.points = 1_000_000 if not tiny else 10_000
        self.query_repeats = 5 if full else 3 if quick else 1
        self.launches = 3 if not tiny else 1
        self.warm = 500 if not tiny else 20


def machine() -> dict[str, str]:
    """nproc, CPU model, RAM and load: what the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": platform.python_version(),
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


def _row(rows: list[list[str]], what: str, figure: str, target: str = "",
         ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    rows.append([what, figure, target, verdict])


async def run(args: argparse.Namespace, sizes: Sizes, work: Path,
              emit: Callable[[str], None]) -> tuple[list[list[str]], dict[str, Any]]:
    """Run what was asked for; the table rows and the raw results."""
    rows: list[list[str]] = []
    raw: dict[str, Any] = {"machine": machine(), "mode": args.mode}
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    sqlite = f"sqlite+aiosqlite:///{work}/bench.db"
    targets: list[tuple[str, str]] = [("SQLite", sqlite)]
    if args.pg:
        targets.append(("PostgreSQL", args.pg))

    if wanted("classify"):
        emit("classification ...")
        c = bench_classification(sizes.classify, sizes.rounds)
        raw["classify"] = c
        _row(rows, f"classify: Router.classify ({c['messages']} msgs)",
             f"{c['classify_rate']:,.0f} msg/s")
        _row(rows, "classify: jieba.lcut, same messages", f"{c['lcut_rate']:,.0f} msg/s")
        _row(rows, "classify: ratio classify / lcut", f"{c['ratio']:.2f}", ">= 0.5",
             c["ratio"] >= 0.5)

    for db_name, url in targets:
        tag = "" if db_name == "SQLite" else f" [{db_name}]"
        if wanted("intake"):
            emit(f"intake{tag} ...")
            profile = Path(args.profile) / f"intake-{db_name.lower()}.txt" \
                if args.profile else None
            i = await bench_intake(url, work, sizes.intake, sizes.intake_repeats, profile)
            raw[f"intake{tag}"] = i
            _row(rows, f"intake end to end{tag} ({i['messages']:,} msgs)",
                 f"{i['e2e_rate']:,.0f} msg/s", ">= 1,000", i["e2e_rate"] >= 1000)
            _row(rows, f"intake, checks every 30 s of message time{tag}",
                 f"{i['replay_ticks_rate']:,.0f} msg/s")
            _row(rows, f"intake: raw batched journal insert{tag}",
                 f"{i['raw_rate']:,.0f} msg/s")
            _row(rows, f"intake: ratio end to end / raw{tag}", f"{i['ratio']:.4f}")
        if wanted("growth") and db_name == "SQLite":
            emit("growth ...")
            g = await bench_growth(url, work, sizes.growth, sizes.growth_batch,
                                   sizes.growth_repeats)
            raw["growth"] = g
            for step in g["steps"]:
                _row(rows, f"growth: {step['history']:,} msgs in the database",
                     f"{step['us_per_message']:,.0f} us/msg")
            _row(rows, "growth: largest / smallest cost per msg", f"{g['spread']:.2f}",
                 "<= 1.20", g["spread"] <= 1.2)
        if wanted("queries"):
            emit(f"queries{tag} (building the database) ...")
            q = await bench_queries(url, work, sizes.petitions, sizes.points,
                                    sizes.query_repeats)
            raw[f"queries{tag}"] = q
            for name, seconds in q["seconds"].items():
                _row(rows, f"query{tag}: {name}", f"{seconds * 1000:,.0f} ms", "< 1 s",
                     seconds < 1.0)
            for name in q["expected"]:
                _row(rows, f"query{tag}: {name}", "n/a")

    if wanted("startup"):
        emit("start-up ...")
        s = bench_startup(work, sizes.launches, sizes.warm)
        raw["startup"] = s
        _row(rows, "start-up: launch to ready (first, jieba cache built)",
             f"{s['first_ready_seconds']:.2f} s")
        _row(rows, "start-up: launch to ready", f"{s['ready_seconds']:.2f} s", "< 3 s",
             s["ready_seconds"] < 3.0)
        _row(rows, f"memory: RSS after {s['warm_messages']} msgs", f"{s['rss_mb']:.0f} MB",
             "< 300 MB", s["rss_mb"] < 300)
    return rows, raw


def table(rows: list[list[str]]) -> str:
    """The rows as a Markdown table (it reads well in a terminal too)."""
    head = ["benchmark", "figure", "target", ""]
    widths = [max(_width(r[i]) for r in [head, *rows]) for i in range(4)]
    lines = []
    for n, row in enumerate([head, *rows]):
        lines.append("| " + " | ".join(_pad(c, w, i == 1) for i, (c, w)
                                        in enumerate(zip(row, widths, strict=True))) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    space = " " * (width - _width(text))
    return space + text if right else text + space


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_const", dest="mode", const="quick",
                        default="full", help="smaller sizes (a few minutes)")
    parser.add_argument("--tiny", action="store_const", dest="mode", const="tiny",
                        help="seconds; for the smoke test")
    parser.add_argument("--pg", default="", help="PostgreSQL URL "
                        "(postgresql+asyncpg://postgres@127.0.0.1:55432/weizhili_bench)")
    parser.add_argument("--only", default="",
                        help="comma-separated: classify,intake,growth,queries,startup")
    parser.add_argument("--profile", default="", help="folder for pyinstrument profiles "
                        "of the intake")
    parser.add_argument("--json", default="", help="also write the raw results here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # With checks every 30 s of wall-clock time the generated day runs past them, so
    # reminders falling due meanwhile are reported as missed (a staff post instead of
    # a group post: the same work); their warnings would drown the table.
    logging.getLogger("schedules.reminders").setLevel(logging.ERROR)

    sizes = Sizes(args.mode)
    started = time.perf_counter()

    def emit(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", file=sys.stderr,
              flush=True)

    with tempfile.TemporaryDirectory(prefix="weizhili-bench-") as scratch:
        rows, raw = asyncio.run(run(args, sizes, Path(scratch), emit))
    raw["seconds"] = time.perf_counter() - started
    m = raw["machine"]
    print(f"machine: {m['nproc']} cores, {m['cpu']}, {m['ram']} RAM, Python {m['python']},"
          f" load at start {m['load']}; mode {args.mode}; {raw['seconds']:.0f} s in all")
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(raw, ensure_ascii=False, indent=1,
                                              default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
