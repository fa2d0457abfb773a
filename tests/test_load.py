"""The load test in its short form: 50 groups, 100 messages a second for 5 seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_short_load_loses_nothing(tmp_path: Path):
    out = tmp_path / "figures.json"
    args = [
        sys.executable,
        str(ROOT / "bench" / "load_test.py"),
        "--seconds",
        "5",
        "--rate",
        "100",
        "--groups",
        "50",
        "--drain",
        "120",
        "--json",
        str(out),
    ]
    if os.environ.get("WEIZHILI_TEST_DB_URL"):
        args += ["--db", os.environ["WEIZHILI_TEST_DB_URL"]]

    run = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)

    print("\n" + run.stdout)
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert run.returncode == 0, run.stderr[-2000:]
    assert figures["sent"] == 500
    assert figures["lost"] == 0
    assert figures["handled"] >= figures["sent"]
    assert figures["replies_queued"] > 0 and figures["p99_ms"] >= figures["p50_ms"]
    assert figures["exit_code"] == 0
