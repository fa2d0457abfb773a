"""The router's command line: ``weizhili eval`` and ``weizhili classify``.

``eval`` measures the router on a labelled file and on the public sets
(:mod:`handlers.evaluation` does the counting); ``classify`` prints what the router
makes of messages given on the command line or on standard input, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import DEFAULT_CATEGORIES, Config, load_config
from bot.normalize import normalize
from handlers.evaluation import (
    TARGET_CATEGORY_ACCURACY,
    TARGET_MACRO_F1,
    evaluate,
    format_public,
    format_report,
    load_tsv,
    public_data_dir,
    public_figures,
)
from handlers.intents import Intent
from handlers.router import Router

# --- command line --------------------------------------------------------------


def _router(config: Config, lexicon: str | None) -> Router:
    categories = [c.name for c in (config.categories or DEFAULT_CATEGORIES)]
    lexicon = lexicon or config.community.lexicon_dir  # --lexicon, else the config's
    return Router(
        Path(lexicon) if lexicon else None,
        cache_dir=config.data_dir / "cache",
        categories=categories,
    )


def _config() -> Config:
    return load_config(os.environ.get("WEIZHILI_CONFIG") or None)


def _own_args(argv: list[str]) -> list[str]:
    """Drop the ``--`` a caller may need to pass options through a parent parser."""
    return argv[1:] if argv[:1] == ["--"] else argv


def main_eval(argv: list[str]) -> int:
    """``weizhili eval FILE [--public] [--split test] [--worst N]``."""
    parser = argparse.ArgumentParser(
        prog="weizhili eval", description="measure the router"
    )
    parser.add_argument(
        "file", nargs="?", help="labelled TSV: id, text, intent[, category]"
    )
    parser.add_argument("--split", help="only rows of this split (dev or test)")
    parser.add_argument(
        "--worst", type=int, default=10, help="misrouted examples to show"
    )
    parser.add_argument(
        "--public", action="store_true", help="also measure ../shared/data"
    )
    parser.add_argument(
        "--data", help="folder of the public data (default ../shared/data)"
    )
    parser.add_argument("--lexicon", help="a community lexicon folder")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed"
    )
    args = parser.parse_args(_own_args(argv))
    if not args.file and not args.public:
        parser.error("give a FILE, --public, or both")

    router = _router(_config(), args.lexicon)
    missed: list[str] = []
    if args.file:
        path = Path(args.file)
        if not path.is_file():
            print(f"找不到文件 / no such file: {path}", file=sys.stderr)
            return 2
        report = evaluate(
            router,
            load_tsv(path, args.split),
            f"{path.name}" + (f" split={args.split}" if args.split else ""),
        )
        print(format_report(report, args.worst))
        if report.macro_f1 < TARGET_MACRO_F1:
            missed.append("macro-F1")
        if (
            report.category_accuracy is not None
            and report.category_accuracy < TARGET_CATEGORY_ACCURACY
        ):
            missed.append("category accuracy")
    if args.public:
        data = Path(args.data) if args.data else public_data_dir()
        if not data.is_dir():
            print(f"public data not found: {data}", file=sys.stderr)
            return 2
        fig = public_figures(router, data)
        if args.worst:
            for rep in fig.reports:
                print()
                print(format_report(rep, args.worst))
        print()
        print(format_public(fig))
        missed += fig.failing
    if missed:
        print("targets missed: " + ", ".join(missed))
    return 1 if args.check and missed else 0


def _parse_time(text: str, now: datetime, tz: ZoneInfo) -> dict[str, Any] | None:
    try:
        from handlers.timeparse import parse_time
    except ImportError:
        return None
    try:
        return parse_time(text, now, tz=tz).as_dict()
    except Exception as exc:
        return {"status": "error", "error": type(exc).__name__}


def _read_messages(args: argparse.Namespace) -> Iterable[str]:
    if args.tsv:
        header: list[str] | None = None
        for line in Path(args.tsv).read_text(encoding="utf-8").splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            cells = line.split("\t")
            if header is None:
                header = cells
                if args.column not in header:
                    raise SystemExit(f"{args.tsv}: no column {args.column!r}")
                continue
            rec = dict(zip(header, cells, strict=False))
            yield rec.get(args.column, "")
    else:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line.strip():
                yield line


def main_classify(argv: list[str]) -> int:
    """``weizhili classify [--explain] [--tsv FILE --column text]``: one JSON per message."""
    parser = argparse.ArgumentParser(
        prog="weizhili classify", description="route messages (one per line on stdin)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="print which rules decided"
    )
    parser.add_argument("--tsv", help="read messages from a TSV file")
    parser.add_argument(
        "--column", default="text", help="the TSV column (default: text)"
    )
    parser.add_argument(
        "--addressed", action="store_true", help="as if sent to the bot"
    )
    parser.add_argument(
        "--now", help="reference time for reminders (ISO; default: now)"
    )
    parser.add_argument("--lexicon", help="a community lexicon folder")
    args = parser.parse_args(_own_args(argv))

    config = _config()
    tz = config.tz
    try:
        now = datetime.fromisoformat(args.now) if args.now else datetime.now(tz)
    except ValueError:
        parser.error(f"--now {args.now!r}: give a time like 2026-12-01T09:00:00+08:00")
    if now.tzinfo is None:
        now = now.replace(tzinfo=tz)
    router = _router(config, args.lexicon)
    parties = {c.name: c.party for c in (config.categories or DEFAULT_CATEGORIES)}

    for text in _read_messages(args):
        mention = "@" + config.community.bot_name
        addressed = args.addressed or mention in text
        norm = normalize(text, [config.community.bot_name] if addressed else [])
        result = router.classify(norm, addressed=addressed)
        acts = result.intent is not Intent.NONE and (addressed or result.confident)
        out: dict[str, Any] = {
            "intent": result.intent.value,
            "acts": acts,
            "confident": result.confident,
            "score": round(result.score, 2),
            "category": result.category,
            "party": parties.get(result.category) if result.category else None,
            "urgent": result.urgent,
            "targets": result.targets,
            "reason": result.reason,
            "location": result.location,
            "keywords": result.keywords,
            "time": _parse_time(norm.text, now, tz)
            if result.intent is Intent.REMINDER
            else None,
            "text": norm.text,
        }
        print(json.dumps(out, ensure_ascii=False))
        if args.explain:
            print(router.explain(norm, addressed=addressed))
            print()
    return 0
