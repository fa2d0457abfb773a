"""Replay of a small chat file written for the tests, through the real pipeline."""

from __future__ import annotations

import json
from pathlib import Path

from bot.cli import main

SMALL = Path(__file__).with_name("data") / "replay_small.jsonl"


def test_replay_prints_a_summary_and_writes_replies(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WEIZHILI_DATA", str(tmp_path / "data"))
    replies = tmp_path / "replies.jsonl"
    code = main(["replay", str(SMALL), "--replies", str(replies)])
    out = capsys.readouterr()

    assert code == 0
    table = dict(line.rsplit(None, 1) for line in out.out.splitlines()
                 if line and not line.startswith(("-", "replay summary", "replies written")))
    assert table["messages"] == "7"  # the duplicate id is counted once, as a duplicate
    assert table["petitions"] == "1"
    assert table["praise"] == "1"
    assert table["reminders"] == "1"
    assert table["commands"] == "1"
    assert table["errors"] == "1"  # the line that is not JSON
    assert "line 6" in out.err

    sent = [json.loads(line) for line in replies.read_text(encoding="utf-8").splitlines()]
    texts = [s["text"] for s in sent]
    assert any("已登记诉求 #1（物业·供暖）" in t for t in texts)
    assert any("已受理" in t for t in texts)
    # The reminder fell due inside the replayed day and was sent, once.
    assert sum("【提醒】去取药" in t for t in texts) == 1


def test_replay_of_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err
