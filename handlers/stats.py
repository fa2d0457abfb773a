"""The three rates of the 12345 practice and their companions, and the CSV export.

Everything is counted by the database (one grouped query on petitions, one on
follow-ups), never by loading every row: a city holds hundreds of thousands of
petitions. The formulas are written out in ``docs/rates.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import ColumnElement, and_, case, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import MessageContext
from bot.privacy import mask_personal
from handlers.commands import STAFF, CommandError, CommandRouter
from handlers.petitions import OPEN_STATES, STATUS_NAMES
from models.tables import Followup, Petition, PetitionEvent

GROUPS = (None, "grid", "party", "category", "week")
EXCLUDED = ("withdrawn", "duplicate")
ALL = "全部"

router = CommandRouter()


@dataclass(frozen=True)
class RateRow:
    """The counts of one group of petitions, and the rates made from them."""

    key: str
    petitions: int = 0  # created in the period, neither withdrawn nor duplicate
    responded: int = 0  # someone accepted it or noted progress
    response_due: int = 0  # responded, or the response deadline has passed
    responded_on_time: int = 0
    resolved: int = 0  # resolved and not reopened since (closed ones included)
    same_day_due: int = 0  # resolved, or the same-day deadline has passed
    resolved_same_day: int = 0
    reopen_count: int = 0
    response_minutes: float = 0.0  # summed over the responded ones
    resolve_minutes: float = 0.0  # summed over the resolved ones
    followups_answered: int = 0
    followups_unanswered: int = 0
    contacted_yes: int = 0
    contacted_answers: int = 0
    solved_yes: int = 0
    solved_answers: int = 0
    satisfied_yes: int = 0
    satisfied_answers: int = 0

    @property
    def response_rate(self) -> float | None:
        """响应率: follow-up answers saying they were contacted, of those that said."""
        return _ratio(self.contacted_yes, self.contacted_answers)

    @property
    def solve_rate(self) -> float | None:
        """解决率: answers saying it is solved, of those that said."""
        return _ratio(self.solved_yes, self.solved_answers)

    @property
    def satisfaction_rate(self) -> float | None:
        """满意率: answers saying they are satisfied, of those that said."""
        return _ratio(self.satisfied_yes, self.satisfied_answers)

    @property
    def on_time_response_rate(self) -> float | None:
        """按时响应率: responded by the response deadline, of those already due."""
        return _ratio(self.responded_on_time, self.response_due)

    @property
    def same_day_rate(self) -> float | None:
        """当日办结率: resolved by the same-day deadline, of those already due."""
        return _ratio(self.resolved_same_day, self.same_day_due)

    @property
    def avg_response_minutes(self) -> float | None:
        """Average minutes from report to the first response."""
        return self.response_minutes / self.responded if self.responded else None

    @property
    def avg_resolve_minutes(self) -> float | None:
        """Average minutes from report to resolution."""
        return self.resolve_minutes / self.resolved if self.resolved else None

    def as_dict(self) -> dict[str, Any]:
        """Counts and rates, for JSON."""
        data = asdict(self)
        for name in (
            "response_rate",
            "solve_rate",
            "satisfaction_rate",
            "on_time_response_rate",
            "same_day_rate",
            "avg_response_minutes",
            "avg_resolve_minutes",
        ):
            data[name] = getattr(self, name)
        return data


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _count(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _minutes(dialect: str, later: Any, earlier: Any) -> Any:
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 1440.0
    return func.extract("epoch", later - earlier) / 60.0


def week_starts(config: Config, since: datetime, until: datetime) -> list[datetime]:
    """The local Mondays 00:00 of every week that the period touches."""
    tz = config.tz
    first = since.astimezone(tz).date()
    monday = datetime.combine(first - timedelta(days=first.weekday()), time(0, 0), tz)
    starts = []
    while monday < until:
        starts.append(monday)
        monday = datetime.combine(monday.date() + timedelta(days=7), time(0, 0), tz)
    return starts


def _group_key(
    config: Config, group_by: str | None, since: datetime, until: datetime
) -> Any:
    if group_by is None:
        return literal(ALL)
    if group_by == "grid":
        return func.coalesce(Petition.grid_id, "")
    if group_by == "party":
        return Petition.party
    if group_by == "category":
        return Petition.category
    if group_by == "week":
        starts = week_starts(config, since, until)
        whens = [
            (Petition.created_at < nxt, literal(start.date().isoformat()))
            for start, nxt in zip(starts, [*starts[1:], until], strict=True)
        ]
        return case(*whens, else_=literal(starts[-1].date().isoformat()))
    raise ValueError(f"group_by must be one of {GROUPS}, got {group_by!r}")


async def compute_rates(
    session: AsyncSession,
    config: Config,
    *,
    since: datetime,
    until: datetime,
    grid_id: str | None = None,
    group_by: str | None = None,
) -> list[RateRow]:
    """The rates of petitions created in ``[since, until)``, per group, by SQL aggregates."""
    key = _group_key(config, group_by, since, until).label("key")
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    period = [
        Petition.created_at >= since,
        Petition.created_at < until,
        Petition.status.notin_(EXCLUDED),
    ]
    if grid_id is not None:
        period.append(Petition.grid_id == grid_id)

    responded = Petition.accepted_at.isnot(None)
    resolved = Petition.resolved_at.isnot(None)
    petition_rows = await session.execute(
        select(
            key,
            func.count().label("petitions"),
            _count(responded).label("responded"),
            _count(or_(responded, Petition.response_due <= until)).label(
                "response_due"
            ),
            _count(
                and_(responded, Petition.accepted_at <= Petition.response_due)
            ).label("responded_on_time"),
            _count(resolved).label("resolved"),
            _count(or_(resolved, Petition.resolve_due <= until)).label("same_day_due"),
            _count(and_(resolved, Petition.resolved_at <= Petition.resolve_due)).label(
                "resolved_same_day"
            ),
            func.coalesce(func.sum(Petition.reopen_count), 0).label("reopen_count"),
            func.coalesce(
                func.sum(_minutes(dialect, Petition.accepted_at, Petition.created_at)),
                0.0,
            ).label("response_minutes"),
            func.coalesce(
                func.sum(_minutes(dialect, Petition.resolved_at, Petition.created_at)),
                0.0,
            ).label("resolve_minutes"),
        )
        .where(*period)
        .group_by(key)
    )
    answered = Followup.status == "answered"
    followup_rows = await session.execute(
        select(
            key,
            _count(answered).label("followups_answered"),
            _count(Followup.status == "unanswered").label("followups_unanswered"),
            _count(and_(answered, Followup.contacted.is_(True))).label("contacted_yes"),
            _count(and_(answered, Followup.contacted.isnot(None))).label(
                "contacted_answers"
            ),
            _count(and_(answered, Followup.solved.is_(True))).label("solved_yes"),
            _count(and_(answered, Followup.solved.isnot(None))).label("solved_answers"),
            _count(and_(answered, Followup.satisfied.is_(True))).label("satisfied_yes"),
            _count(and_(answered, Followup.satisfied.isnot(None))).label(
                "satisfied_answers"
            ),
        )
        .join(Petition, Petition.id == Followup.petition_id)
        .where(*period)
        .group_by(key)
    )

    merged: dict[str, dict[str, Any]] = {}
    for result in (petition_rows, followup_rows):
        for row in result.mappings():
            values = merged.setdefault(str(row["key"]), {})
            values.update({k: v for k, v in row.items() if k != "key"})
    if group_by is None and not merged:
        merged[ALL] = {}
    names = {f.name for f in fields(RateRow)}
    return [
        RateRow(key=k, **_typed({n: v for n, v in merged[k].items() if n in names}))
        for k in sorted(merged)
    ]


def _typed(values: dict[str, Any]) -> dict[str, Any]:
    return {k: float(v) if k.endswith("minutes") else int(v) for k, v in values.items()}


# --- /统计 -----------------------------------------------------------------------------


def period_bounds(
    config: Config, now: datetime, word: str
) -> tuple[datetime, datetime, str]:
    """``本周`` (since Monday) or ``本月`` (since the 1st), up to now, and its label."""
    today = now.astimezone(config.tz).date()
    if word == "本月":
        start = today.replace(day=1)
    else:
        start = today - timedelta(days=today.weekday())
    since = datetime.combine(start, time(0, 0), config.tz)
    return since, now, f"{word}（{start:%m-%d} 至 {today:%m-%d}）"


def percent(value: float | None) -> str:
    """``66.7%``, or a dash when there is nothing to count."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _minutes_text(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.0f} 分钟"
    return f"{value / 60:.1f} 小时"


def format_rates(row: RateRow, title: str) -> str:
    """The rates as a short message for the staff group."""
    return "\n".join(
        [
            title,
            f"诉求 {row.petitions} 件，已响应 {row.responded} 件，已办结 {row.resolved} 件，"
            f"重新办理 {row.reopen_count} 次",
            f"响应率 {percent(row.response_rate)}（{row.contacted_yes}/{row.contacted_answers}）"
            f"  解决率 {percent(row.solve_rate)}（{row.solved_yes}/{row.solved_answers}）"
            f"  满意率 {percent(row.satisfaction_rate)}"
            f"（{row.satisfied_yes}/{row.satisfied_answers}）",
            f"按时响应率 {percent(row.on_time_response_rate)}"
            f"（{row.responded_on_time}/{row.response_due}）"
            f"  当日办结率 {percent(row.same_day_rate)}"
            f"（{row.resolved_same_day}/{row.same_day_due}）",
            f"平均响应 {_minutes_text(row.avg_response_minutes)}，"
            f"平均办结 {_minutes_text(row.avg_resolve_minutes)}，"
            f"回访未答复 {row.followups_unanswered} 件",
        ]
    )


@router.command("统计", "stats", roles=STAFF, usage="/统计 [本周|本月] [网格]")
async def show_rates(ctx: MessageContext, args: list[str]) -> None:
    """响应率、解决率、满意率等统计"""
    assert ctx.staff is not None
    word, grid_id = "本周", None
    for arg in args:
        if arg in ("本周", "本月"):
            word = arg
        else:
            grid = next(
                (
                    g
                    for g in ctx.config.grids
                    if arg in (g.id, g.name) or (len(arg) >= 2 and arg in g.name)
                ),
                None,
            )
            if grid is None:
                raise CommandError(f"看不懂“{arg[:10]}”，例如：/统计 本月 1网格")
            grid_id = grid.id
    if grid_id is None and ctx.staff.role == "网格员" and len(ctx.staff.grids) == 1:
        grid_id = ctx.staff.grids[0]
    if grid_id is not None and not ctx.staff.covers(grid_id):
        raise CommandError("只能查看您负责网格的统计。")
    if grid_id is None and ctx.staff.role == "网格员" and ctx.staff.grids:
        raise CommandError("请写上网格，例如：/统计 本周 " + ctx.staff.grids[0])

    since, until, title = period_bounds(ctx.config, ctx.now, word)
    rows = await compute_rates(
        ctx.session, ctx.config, since=since, until=until, grid_id=grid_id
    )
    where = (
        ctx.config.grid(grid_id).name
        if grid_id and ctx.config.grid(grid_id)
        else ctx.config.community.name
    )
    ctx.reply(format_rates(rows[0], f"{where} {title}诉求统计："))
    ctx.outcome = "command:统计"


# --- the CSV export --------------------------------------------------------------------

EXPORT_FIELDS = (
    "service_request_id",
    "category",
    "party",
    "requested_datetime",
    "expected_datetime",
    "updated_datetime",
    "status",
    "status_notes",
    "grid",
)


async def export_rows(
    session: AsyncSession,
    config: Config,
    since: datetime,
    until: datetime | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Open311-like rows of the petitions created since ``since``, streamed."""
    last_note = (
        select(PetitionEvent.petition_id, func.max(PetitionEvent.id).label("eid"))
        .where(PetitionEvent.note != "")
        .group_by(PetitionEvent.petition_id)
        .subquery()
    )
    query = (
        select(Petition, PetitionEvent.note)
        .outerjoin(last_note, last_note.c.petition_id == Petition.id)
        .outerjoin(PetitionEvent, PetitionEvent.id == last_note.c.eid)
        .where(Petition.created_at >= since)
        .order_by(Petition.id)
        .execution_options(yield_per=1000)
    )
    if until is not None:
        query = query.where(Petition.created_at < until)
    tz = config.tz
    result = await session.stream(query)
    async for petition, note in result:
        state = STATUS_NAMES.get(petition.status, petition.status)
        yield {
            "service_request_id": str(petition.id),
            "category": petition.category,
            "party": petition.party,
            "requested_datetime": petition.created_at.astimezone(tz).isoformat(),
            "expected_datetime": petition.resolve_due.astimezone(tz).isoformat(),
            "updated_datetime": petition.updated_at.astimezone(tz).isoformat(),
            "status": "open" if petition.status in OPEN_STATES else "closed",
            "status_notes": mask_personal(f"{state}：{note}" if note else state),
            "grid": petition.grid_id or "",
        }


def _parse_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a date like 2026-12-01: {raw!r}"
        ) from None


def main_export(argv: list[str]) -> int:
    """``weizhili export petitions --since DATE [--until DATE] [--out FILE]``."""
    parser = argparse.ArgumentParser(
        prog="weizhili export", description="Export petitions as CSV (Open311-like)."
    )
    parser.add_argument("what", choices=["petitions"])
    parser.add_argument("--since", type=_parse_date, required=True)
    parser.add_argument("--until", type=_parse_date, default=None)
    parser.add_argument(
        "--out", default="-", help="file to write; '-' for standard output"
    )
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)

    from bot.config import load_config
    from models.db import sqlite_path

    config = load_config(args.config or os.environ.get("WEIZHILI_CONFIG") or None)
    path = sqlite_path(config.db_url)
    if path is not None and not path.exists():
        print(f"weizhili export: no database at {path}", file=sys.stderr)
        return 2
    tz = config.tz
    since = datetime.combine(args.since, time(0, 0), tz)
    until = datetime.combine(args.until, time(0, 0), tz) if args.until else None

    if args.out == "-":
        count = asyncio.run(_export(config, since, until, sys.stdout))
    else:
        with Path(args.out).open("w", encoding="utf-8-sig", newline="") as handle:
            count = asyncio.run(_export(config, since, until, handle))
    print(f"exported {count} petitions to {args.out}", file=sys.stderr)
    return 0


async def _export(
    config: Config, since: datetime, until: datetime | None, handle: TextIO
) -> int:
    from models.db import Database

    db = Database(config.db_url)
    writer = csv.DictWriter(handle, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    count = 0
    try:
        async with db.session() as session:
            async for row in export_rows(session, config, since, until):
                writer.writerow(row)
                count += 1
    finally:
        await db.close()
    return count
