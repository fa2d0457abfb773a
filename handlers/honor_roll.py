"""光荣榜: the week's (or month's) most helpful residents, with reasons, per grid.

What a roll holds, all computed with SQL aggregates over one period:

    top N residents     SUM(points) per member; reversed entries and staff left out
    reasons in words    the notes of those few members' entries (praise, volunteering …)
    staff thanks        confirmed praise of staff, counted per person
    same-day petitions  resolved on the same local date they were reported

Residents who sent ``/不上榜`` are shown as 一位热心居民. Posting (once, across
restarts) lives in :mod:`schedules.honor_roll`; ``weizhili honor-roll --preview``
(:func:`main_preview`) prints a roll and draws its card without posting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Config, GridConfig
from handlers.points import ANONYMOUS
from models.tables import Member, Petition, PointEntry, Praise, StaffRole

log = logging.getLogger(__name__)

WEEKDAY_NAMES = "一二三四五六日"


# --- periods --------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A week (ISO, Monday first) or a calendar month, in the community's zone."""

    kind: str  # week | month
    label: str  # 2026-W49 | 2026-11
    start: datetime
    end: datetime  # exclusive

    @property
    def noun(self) -> str:
        return "本周" if self.kind == "week" else "本月"

    def dates(self) -> str:
        """``11月30日—12月6日``"""
        last = self.end - timedelta(days=1)
        return f"{self.start.month}月{self.start.day}日—{last.month}月{last.day}日"

    def heading(self) -> str:
        if self.kind == "week":
            week = int(self.label.split("-W")[1])
            return f"{self.start.year}年第{week}周（{self.dates()}）"
        return f"{self.start.year}年{self.start.month}月"


def week_period(year: int, week: int, tz: ZoneInfo) -> Period:
    """The ISO week ``year-Wweek``."""
    monday = date.fromisocalendar(year, week, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    return Period("week", f"{year}-W{week:02d}", start, start + timedelta(days=7))


def week_of(moment: datetime, tz: ZoneInfo) -> Period:
    """The ISO week that holds ``moment``."""
    iso = moment.astimezone(tz).isocalendar()
    return week_period(iso.year, iso.week, tz)


def previous_week(moment: datetime, tz: ZoneInfo) -> Period:
    """The last complete week before the week that holds ``moment``."""
    return week_of(week_of(moment, tz).start - timedelta(days=1), tz)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    """The calendar month ``year-month``."""
    start = datetime(year, month, 1, tzinfo=tz)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return Period("month", f"{year}-{month:02d}", start, nxt)


def previous_month(moment: datetime, tz: ZoneInfo) -> Period:
    """The calendar month before the one that holds ``moment``."""
    local = moment.astimezone(tz)
    first = local.replace(day=1) - timedelta(days=1)
    return month_period(first.year, first.month, tz)


def parse_week(text: str, tz: ZoneInfo) -> Period:
    """``2026-W49`` → that week; ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-?W(\d{1,2})", text.strip(), re.I)
    if not match:
        raise ValueError(f"not an ISO week like 2026-W49: {text!r}")
    return week_period(int(match.group(1)), int(match.group(2)), tz)


# --- the roll ---------------------------------------------------------------------------


@dataclass
class RollEntry:
    """One resident on the roll."""

    rank: int
    member_id: str
    name: str
    points: int
    reasons: list[str] = field(default_factory=list)

    def reason_text(self, limit: int = 60) -> str:
        text = "；".join(self.reasons) or "热心助人"
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class StaffThanks:
    """A staff member residents praised in the period."""

    name: str
    times: int
    example: str = ""


@dataclass
class Roll:
    """Everything one honor roll says."""

    community: str
    grid_id: str | None  # None: the whole community
    grid_name: str
    period: Period
    entries: list[RollEntry]
    staff: list[StaffThanks]
    same_day_resolved: int
    praise_count: int

    @property
    def empty(self) -> bool:
        return not self.entries and not self.staff and not self.same_day_resolved


def _in_period(
    column: ColumnElement[datetime], period: Period
) -> list[ColumnElement[bool]]:
    return [column >= period.start, column < period.end]


def _counted_entries(period: Period) -> list[ColumnElement[bool]]:
    """Entries of the period that still count: not a reversal and not reversed later."""
    twin = aliased(PointEntry)
    reversed_ids = select(twin.reverses).where(twin.reverses.is_not(None))
    staff_ids = select(StaffRole.member_id).where(StaffRole.active)
    return [
        *_in_period(PointEntry.created_at, period),
        PointEntry.kind != "reversal",
        PointEntry.id.not_in(reversed_ids),
        PointEntry.member_id.not_in(staff_ids),
    ]


def _local_date(
    column: ColumnElement[datetime], dialect: str, config: Config, period: Period
) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.date(func.timezone(config.community.timezone, column))
    # SQLite keeps UTC text; shift it by the zone's offset in that period.
    offset = period.start.utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


async def build_roll(
    session: AsyncSession, config: Config, period: Period, grid: GridConfig | None
) -> Roll:
    """Compute one roll: a grid's, or the whole community's when ``grid`` is None."""
    grid_id = grid.id if grid else None
    grid_of_entry = func.coalesce(PointEntry.grid_id, Member.grid_id)
    total = func.sum(PointEntry.delta)
    top = (
        select(PointEntry.member_id, total.label("points"), func.count().label("n"))
        .select_from(PointEntry)
        .outerjoin(Member, Member.id == PointEntry.member_id)
        .where(*_counted_entries(period))
        .group_by(PointEntry.member_id)
        .having(total > 0)
        .order_by(total.desc(), func.count().desc(), PointEntry.member_id)
        .limit(config.schedules.honor_roll_top)
    )
    if grid_id:
        top = top.where(grid_of_entry == grid_id)
    ranked = (await session.execute(top)).all()
    ids = [row.member_id for row in ranked]
    reasons = await _reasons(session, period, ids, grid_id)
    members = {
        m.id: m for m in await session.scalars(select(Member).where(Member.id.in_(ids)))
    }
    entries = []
    for rank, row in enumerate(ranked, start=1):
        member = members.get(row.member_id)
        name = (
            ANONYMOUS
            if member is None or member.opted_out
            else (member.name or ANONYMOUS)
        )
        entries.append(
            RollEntry(
                rank,
                row.member_id,
                name,
                int(row.points),
                reasons.get(row.member_id, []),
            )
        )

    return Roll(
        community=config.community.name,
        grid_id=grid_id,
        grid_name=grid.name if grid else "全社区",
        period=period,
        entries=entries,
        staff=await _staff_thanks(session, period, grid_id),
        same_day_resolved=await _same_day_resolved(session, config, period, grid_id),
        praise_count=await _praise_count(session, period, grid_id),
    )


async def _reasons(
    session: AsyncSession, period: Period, ids: list[str], grid_id: str | None
) -> dict[str, list[str]]:
    """Reasons in words for the few members on the roll, from their entries' notes."""
    if not ids:
        return {}
    query = (
        select(
            PointEntry.member_id,
            PointEntry.kind,
            PointEntry.note,
            func.sum(PointEntry.delta).label("points"),
            func.count().label("n"),
        )
        .select_from(PointEntry)
        .outerjoin(Member, Member.id == PointEntry.member_id)
        .where(*_counted_entries(period), PointEntry.member_id.in_(ids))
        .group_by(PointEntry.member_id, PointEntry.kind, PointEntry.note)
        .order_by(
            PointEntry.member_id, func.sum(PointEntry.delta).desc(), PointEntry.note
        )
    )
    if grid_id:
        query = query.where(
            func.coalesce(PointEntry.grid_id, Member.grid_id) == grid_id
        )
    praise: dict[str, list[tuple[str, int]]] = {}
    other: dict[str, list[str]] = {}
    for row in (await session.execute(query)).all():
        if row.kind == "praise":
            praise.setdefault(row.member_id, []).append(
                (public_reason(row.note), row.n)
            )
        else:
            other.setdefault(row.member_id, []).append(public_reason(row.note))
    words: dict[str, list[str]] = {}
    for member_id in ids:
        parts = list(dict.fromkeys(other.get(member_id, [])))[:2]
        got = praise.get(member_id, [])
        if got:
            times = sum(n for _, n in got)
            said = "、".join(list(dict.fromkeys(r for r, _ in got if r))[:2])
            parts.insert(0, f"获邻居表扬{times}次" + (f"（{said}）" if said else ""))
        words[member_id] = parts
    return words


def public_reason(note: str) -> str:
    """A praise reason as the public reads it: "帮我拿快递" → "帮邻居拿快递"."""
    text = re.sub(r"\s+", " ", note).strip(" ，。,.!！")
    text = text.replace("我们", "大家").replace("我家", "邻居家").replace("我", "邻居")
    return text[:24]


async def _staff_thanks(
    session: AsyncSession, period: Period, grid_id: str | None
) -> list[StaffThanks]:
    query = (
        select(
            Praise.target_id,
            func.count().label("n"),
            func.max(Praise.reason).label("example"),
            func.max(Praise.target_name).label("written"),
        )
        .where(
            Praise.target_is_staff,
            Praise.status == "confirmed",
            Praise.target_id.is_not(None),
            *_in_period(Praise.created_at, period),
        )
        .group_by(Praise.target_id)
        .order_by(func.count().desc(), Praise.target_id)
    )
    if grid_id:
        query = query.where(Praise.grid_id == grid_id)
    rows = (await session.execute(query)).all()
    names = {
        s.member_id: s.name
        for s in await session.scalars(
            select(StaffRole).where(
                StaffRole.member_id.in_([r.target_id for r in rows])
            )
        )
    }
    return [
        StaffThanks(
            names.get(r.target_id) or r.written,
            int(r.n),
            public_reason(r.example or ""),
        )
        for r in rows
    ]


async def _same_day_resolved(
    session: AsyncSession, config: Config, period: Period, grid_id: str | None
) -> int:
    dialect = session.bind.dialect.name
    query = (
        select(func.count())
        .select_from(Petition)
        .where(
            Petition.resolved_at.is_not(None),
            *_in_period(Petition.resolved_at, period),
            _local_date(Petition.created_at, dialect, config, period)
            == _local_date(Petition.resolved_at, dialect, config, period),
        )
    )
    if grid_id:
        query = query.where(Petition.grid_id == grid_id)
    return int(await session.scalar(query) or 0)


async def _praise_count(
    session: AsyncSession, period: Period, grid_id: str | None
) -> int:
    query = (
        select(func.count())
        .select_from(Praise)
        .where(Praise.status == "confirmed", *_in_period(Praise.created_at, period))
    )
    if grid_id:
        query = query.where(Praise.grid_id == grid_id)
    return int(await session.scalar(query) or 0)


# --- words ------------------------------------------------------------------------------


def format_roll(roll: Roll, *, late_note: str = "") -> str:
    """The roll as the group reads it."""
    title = "光荣榜" if roll.period.kind == "week" else "月度光荣榜"
    lines = []
    if late_note:
        lines.append(late_note)
    lines.append(f"【{title}】{roll.grid_name} · {roll.period.heading()}")
    noun = roll.period.noun
    if roll.entries:
        lines.append(f"{noun}，感谢这些热心的邻居：")
        for entry in roll.entries:
            lines.append(
                f"{entry.rank}. {entry.name}（{entry.points}分）：{entry.reason_text()}"
            )
    else:
        lines.append(f"{noun}还没有人上榜，期待大家互帮互助！")
    if roll.staff:
        thanks = "、".join(
            f"{s.name}（{s.times}次" + (f"，{s.example}" if s.example else "") + "）"
            for s in roll.staff[:5]
        )
        lines.append(f"居民点名表扬的工作人员：{thanks}，辛苦了！")
    facts = []
    if roll.praise_count:
        facts.append(f"共收到表扬{roll.praise_count}次")
    if roll.same_day_resolved:
        facts.append(f"{roll.same_day_resolved}件诉求当天办结")
    if facts:
        lines.append(f"{noun}" + "，".join(facts) + "。")
    lines.append("积分可兑换社区小礼品。不想公开姓名，发送“/不上榜”即可。")
    return "\n".join(lines)


# --- weizhili honor-roll --preview --------------------------------------------------------


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
        for index, grid in enumerate(grids):
            async with db.session() as session:
                roll = await build_roll(session, config, period, grid)
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
