"""CI quality gate: the router measured on the devset's test split and on public data.

The test split of ``tests/data/devset.tsv`` is never tuned on. The public sets live
outside the project (``../shared/data``); where they are absent the public checks
skip. Every floor is the figure reached honestly, rounded down to two decimals; the
issue's targets are printed beside them (see docs/quality.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers import evaluation
from handlers.router import Router

DEVSET = Path(__file__).resolve().parent / "data" / "devset.tsv"
PUBLIC = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Issue 7 targets: macro-F1 0.92 and category accuracy 0.85 on the test split. The
# rules reach macro-F1 0.906 there (category 0.949): the gate holds those floors so
# a regression fails CI, and the gap to 0.92 stays visible (TARGET_MACRO_F1).
TARGET_MACRO_F1 = 0.92
TARGET_CATEGORY_ACCURACY = 0.85
MIN_MACRO_F1 = 0.90
MIN_CATEGORY_ACCURACY = 0.94
MAX_TRIGGER_RATE = 0.01
# Petition recall on public titles: target 0.90, reached (gov titles 91.8 %, replay
# 91.5 %); the floors are those figures rounded down, so a regression fails CI.
TARGET_PETITION_RECALL = 0.90
MIN_GOV_RECALL = 0.91
MIN_REPLAY_RECALL = 0.91


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    return Router(cache_dir=tmp_path_factory.mktemp("jieba-cache"))


def test_devset_is_big_and_split_once() -> None:
    rows = evaluation.load_tsv(DEVSET)
    assert len(rows) >= 400
    assert {r.split for r in rows} == {"dev", "test"}
    test_share = sum(r.split == "test" for r in rows) / len(rows)
    assert 0.25 <= test_share <= 0.35
    assert len({r.text for r in rows}) == len(rows)
    assert {r.intent for r in rows} == {"petition", "praise", "reminder", "none"}


def test_quality_on_the_test_split(router: Router) -> None:
    report = evaluation.evaluate(router, evaluation.load_tsv(DEVSET, "test"), "test")
    print()
    print(evaluation.format_report(report, worst=10))
    print(
        f"macro-F1 {report.macro_f1:.3f} (target {TARGET_MACRO_F1}, floor {MIN_MACRO_F1})"
    )
    print(
        f"category accuracy {report.category_accuracy:.3f} "
        f"(target {TARGET_CATEGORY_ACCURACY}, floor {MIN_CATEGORY_ACCURACY})"
    )
    assert report.macro_f1 >= MIN_MACRO_F1
    assert report.category_accuracy is not None
    assert report.category_accuracy >= MIN_CATEGORY_ACCURACY


@pytest.mark.skipif(not PUBLIC.is_dir(), reason=f"public data not found at {PUBLIC}")
def test_public_data_figures(router: Router) -> None:
    fig = evaluation.public_figures(router, PUBLIC)
    print()
    print(evaluation.format_public(fig))
    print(
        f"petition recall: gov {fig.gov_recall_all:.3f} (floor {MIN_GOV_RECALL}), "
        f"replay {fig.replay_petition_recall:.3f} (floor {MIN_REPLAY_RECALL}), "
        f"target {TARGET_PETITION_RECALL}"
    )
    assert fig.chitchat_trigger_rate <= MAX_TRIGGER_RATE
    assert fig.replay_trigger_rate <= MAX_TRIGGER_RATE
    assert fig.gov_recall_all >= MIN_GOV_RECALL
    assert fig.replay_petition_recall >= MIN_REPLAY_RECALL
