"""Classification speed on generated grid-group messages, beside bare ``jieba.lcut``.

The timing itself is the router's own benchmark (``bench/bench_classify.py``, which
uses the project's devset); this runs the same measurement on the generated mix so
that it sits in the one table with the other figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench import gen


def bench_classification(count: int, rounds: int = 5) -> dict[str, Any]:
    """Messages per second for Router.classify and jieba.lcut, and their ratio."""
    import jieba

    from bench.bench_classify import rate
    from bot.normalize import normalize
    from handlers.router import Router

    norms = [normalize(text) for text in gen.texts(count)]
    texts = [n.text for n in norms]
    with tempfile.TemporaryDirectory() as cache:
        router = Router(cache_dir=Path(cache))
        jieba.initialize()
        for norm in norms[:50]:  # warm both up
            router.classify(norm)
            jieba.lcut(norm.text)
        pairs = []
        for _ in range(rounds):  # side by side, so a busy moment hits both
            lcut = rate(lambda: [jieba.lcut(t) for t in texts], len(texts), 1)
            classify = rate(lambda: [router.classify(n) for n in norms], len(texts), 1)
            pairs.append((classify, lcut))
    ratios = sorted(c / w for c, w in pairs)
    classify_rates = sorted(c for c, _ in pairs)
    lcut_rates = sorted(w for _, w in pairs)
    middle = len(pairs) // 2
    return {
        "messages": len(texts),
        "chars": sum(map(len, texts)) / len(texts),
        "classify_rate": classify_rates[middle],
        "lcut_rate": lcut_rates[middle],
        "ratio": ratios[middle],
    }
