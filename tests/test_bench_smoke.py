"""Every benchmark runs at a tiny size and produces figures (no timing is asserted)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench import gen
from bench.bench_classification import bench_classification
from bench.bench_growth import bench_growth
from bench.bench_intake import bench_intake
from bench.bench_queries import bench_queries
from bench.bench_startup import bench_startup
from bench.run_all import table


def _figure(value: object) -> bool:
    return isinstance(value, float | int) and value > 0 and math.isfinite(value)


def test_generator_is_reproducible_and_mixed(tmp_path: Path) -> None:
    community = gen.make_community(tmp_path, "sqlite+aiosqlite:///unused.db", grids=20)
    first = gen.messages(community, 400)
    again = gen.messages(community, 400)
    assert [m.text for m in first] == [m.text for m in again]
    assert [m.timestamp for m in first] == sorted(m.timestamp for m in first)
    assert len({m.room_id for m in first}) == 20
    assert len({m.message_id for m in first}) == 400
    assert sum("提醒我" in m.text for m in first) > 0
    assert sum(m.mentions_bot for m in first) > 0


def test_classification_gives_rates() -> None:
    result = bench_classification(100, rounds=1)
    assert _figure(result["classify_rate"]) and _figure(result["lcut_rate"])
    assert _figure(result["ratio"])


async def test_intake_gives_rates_and_handles_every_message(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/intake.db"
    result = await bench_intake(url, tmp_path, 60, repeats=1)
    assert _figure(result["e2e_rate"]) and _figure(result["raw_rate"])
    assert sum(result["outcomes"].values()) == 60
    assert "error" not in result["outcomes"]


async def test_growth_gives_a_cost_per_step(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/growth.db"
    result = await bench_growth(url, tmp_path, (100, 300), batch=20, repeats=1)
    assert [s["history"] for s in result["steps"]] == [100, 300]
    assert all(_figure(s["us_per_message"]) for s in result["steps"])
    assert _figure(result["spread"])


async def test_queries_time_every_landed_query(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/queries.db"
    result = await bench_queries(url, tmp_path, petitions=300, points=1_000, repeats=1)
    assert result["seconds"], "no query module has landed"
    assert all(_figure(s) for s in result["seconds"].values())


@pytest.mark.slow
def test_startup_reports_time_and_memory(tmp_path: Path) -> None:
    result = bench_startup(tmp_path, launches=1, warm_messages=10)
    assert _figure(result["ready_seconds"]) and _figure(result["rss_mb"])


def test_table_aligns_chinese_text() -> None:
    lines = table([["query: 超时", "9 ms", "< 1 s", "ok"]]).splitlines()
    assert len(lines) == 3 and lines[2].startswith("| query: 超时")
