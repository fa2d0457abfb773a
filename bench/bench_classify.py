"""Speed of the router against bare segmentation on the same messages.

Run: ``.venv/bin/python bench/bench_classify.py [--rounds 5]``. The messages are the
project's devset (``tests/data/devset.tsv``), normalised once beforehand as the
pipeline does. Prints messages per second for ``Router.classify`` and for
``jieba.lcut`` and their ratio (target: classify at least half as fast).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jieba

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.normalize import normalize  # noqa: E402
from handlers.evaluation import load_tsv  # noqa: E402
from handlers.router import Router  # noqa: E402


def rate(func: Callable[[], object], count: int, rounds: int) -> float:
    """Best of ``rounds`` runs, in messages per second."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - started)
    return count / best


def main(argv: list[str] | None = None) -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=10, help="copies of the devset")
    args = parser.parse_args(argv)

    rows = load_tsv(ROOT / "tests" / "data" / "devset.tsv")
    norms = [normalize(r.text, ["社区小助手"]) for r in rows] * args.repeat
    texts = [n.text for n in norms]
    with tempfile.TemporaryDirectory() as cache:
        router = Router(cache_dir=Path(cache))
        jieba.initialize()
        for text in texts[:50]:  # warm both up
            router.classify(normalize(text))
            jieba.lcut(text)

        lcut = rate(lambda: [jieba.lcut(t) for t in texts], len(texts), args.rounds)
        own = rate(lambda: [router.tokens(t) for t in texts], len(texts), args.rounds)
        classify = rate(
            lambda: [router.classify(n) for n in norms], len(texts), args.rounds
        )

    chars = sum(map(len, texts)) / len(texts)
    print(
        f"{len(texts)} messages (devset x{args.repeat}), {chars:.1f} chars on average"
    )
    print(f"{'what':<28}{'msg/s':>10}")
    print(f"{'jieba.lcut (global)':<28}{lcut:>10.0f}")
    print(f"{'Router.tokens':<28}{own:>10.0f}")
    print(f"{'Router.classify':<28}{classify:>10.0f}")
    ratio = classify / lcut
    print(
        f"classify / lcut = {ratio:.2f} (target >= 0.5) {'ok' if ratio >= 0.5 else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
