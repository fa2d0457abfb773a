"""``weizhili honor-roll --preview``: print a roll and draw its card, posting nothing.

The command line of :mod:`handlers.honor_roll`, which keeps ``main_preview`` as the
entry point ``bot.cli`` names.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config, GridConfig
from handlers.honor_model import Period, Roll, month_period, parse_week, previous_week
from handlers.honor_queries import build_roll, build_rolls
from handlers.honor_roll import format_roll


def _preview_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weizhili honor-roll",
        description="预览光荣榜：打印文字并画出图片，不发送任何消息。",
    )
    parser.add_argument(
        "--preview",
        action="store_true",
        help="show the roll without posting (the only mode)",
    )
    parser.add_argument(
        "--grid", help="grid id (default: every grid); 'all' = whole community"
    )
    parser.add_argument(
        "--week", help="ISO week like 2026-W49 (default: last complete week)"
    )
    parser.add_argument("--month", help="a month like 2026-11 instead of a week")
    parser.add_argument(
        "--png", help="write the picture here (default: next to the database)"
    )
    parser.add_argument("--db", help="database URL (default: from the config)")
    parser.add_argument(
        "--seed-demo",
        action="store_true",
        help="fill a fresh database with a plausible week first",
    )
    parser.add_argument("--now", help="reference time, ISO 8601 (default: now)")
    return parser


def main_preview(argv: list[str]) -> int:
    """``weizhili honor-roll --preview``: print the roll and write the picture; post nothing."""
    from bot.config import load_config

    args = _preview_parser().parse_args(argv)
    if not args.preview:
        print("只支持预览：请加上 --preview（正式发送由定时任务完成）", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    config = load_config(os.environ.get("WEIZHILI_CONFIG") or None)
    tz = config.tz
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(tz)
    now = now if now.tzinfo else now.replace(tzinfo=tz)
    try:
        if args.month:
            year, month = (int(x) for x in args.month.split("-"))
            period = month_period(year, month, tz)
        else:
            period = parse_week(args.week, tz) if args.week else previous_week(now, tz)
    except ValueError as exc:
        print(f"时间范围有误：{exc}", file=sys.stderr)
        return 2

    url = args.db or ""
    workdir = (
        Path(tempfile.mkdtemp(prefix="weizhili-honor-")) if args.seed_demo else None
    )
    if not url:
        url = (
            f"sqlite+aiosqlite:///{(workdir / 'demo.db').as_posix()}"
            if workdir
            else config.db_url
        )
    grids: list[GridConfig | None]
    if args.grid == "all":
        grids = [None]
    elif args.grid:
        found = config.grid(args.grid)
        if found is None:
            known = ", ".join(g.id for g in config.grids)
            print(f"没有网格 {args.grid!r}；可选：{known}, all", file=sys.stderr)
            return 2
        grids = [found]
    else:
        grids = list(config.grids)
    png_dir = workdir or config.data_dir
    return asyncio.run(
        _preview(config, url, period, grids, args.png, png_dir, args.seed_demo)
    )


async def _preview(
    config: Config,
    url: str,
    period: Period,
    grids: list[GridConfig | None],
    png: str | None,
    png_dir: Path,
    seed: bool,
) -> int:
    from handlers.honor_card import render_card
    from models.db import Database, upgrade

    await upgrade(url)
    db = Database(url)
    try:
        if seed:
            from handlers.honor_demo import seed_demo

            if not await seed_demo(db, config, period):
                print(
                    "数据库里已有数据，--seed-demo 只用于全新的数据库。",
                    file=sys.stderr,
                )
                return 2
            print(f"已生成演示数据：{url}\n")
        async with db.session() as session:
            rolls = await _rolls(session, config, period, grids)
        for index, roll in enumerate(rolls):
            print(format_roll(roll))
            target = (
                Path(png)
                if png
                else png_dir / f"honor-{roll.grid_id or 'all'}-{period.label}.png"
            )
            if png and len(grids) > 1:
                target = target.with_name(
                    f"{target.stem}-{roll.grid_id}{target.suffix}"
                )
            card = render_card(roll, target)
            print(
                f"\n图片：{card.path}（{card.size[0]}×{card.size[1]}）"
                if card
                else "\n（没有找到中文字体，未生成图片；可安装 fonts-wqy-microhei）"
            )
            if index < len(grids) - 1:
                print("\n" + "-" * 40 + "\n")
    finally:
        await db.close()
    return 0


async def _rolls(
    session: AsyncSession,
    config: Config,
    period: Period,
    grids: list[GridConfig | None],
) -> list[Roll]:
    """The community's roll (``None``), or every grid's computed together."""
    if grids == [None]:
        return [await build_roll(session, config, period, None)]
    chosen = [grid for grid in grids if grid is not None]
    rolls = await build_rolls(session, config, period, chosen)
    return [rolls[grid.id] for grid in chosen]
