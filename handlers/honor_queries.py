"""The honor roll's SQL: every grid's roll in a fixed number of queries.

:func:`build_rolls` ranks every grid's members in one query
(``row_number() OVER (PARTITION BY grid ORDER BY points DESC, entries DESC,
member_id)``, which SQLite ≥ 3.25 and PostgreSQL both run), then fetches the reasons,
the public names, the staff thanks, the same-day petitions and the praise counts in
one query each, grouped by grid; so the rolls of thousands of grids cost about what
one community-wide roll costs. :func:`build_roll` is the same for one grid, or for
the whole community. An entry's grid is its own ``grid_id``, else its member's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.config import Config, GridConfig
from handlers.honor_model import Period, Roll, RollEntry, StaffThanks, public_reason
from handlers.points import ANONYMOUS
from models.tables import Member, Petition, PointEntry, Praise, StaffRole

GridKey = str | None  # a grid's id; None: the whole community
IN_CHUNK = 2000  # ids per IN list, well under SQLite's and asyncpg's parameter limits


@dataclass
class _Facts:
    """What the queries found, per grid key."""

    entries: dict[GridKey, list[RollEntry]]
    staff: dict[GridKey, list[StaffThanks]]
    same_day: dict[GridKey, int]
    praise: dict[GridKey, int]

    def roll(self, config: Config, period: Period, grid: GridConfig | None) -> Roll:
        key = grid.id if grid else None
        return Roll(
            community=config.community.name,
            grid_id=key,
            grid_name=grid.name if grid else "全社区",
            period=period,
            entries=self.entries.get(key, []),
            staff=self.staff.get(key, []),
            same_day_resolved=self.same_day.get(key, 0),
            praise_count=self.praise.get(key, 0),
        )


async def build_rolls(
    session: AsyncSession,
    config: Config,
    period: Period,
    grids: Sequence[GridConfig] | None = None,
) -> dict[str, Roll]:
    """Every grid's roll (default: all configured grids) by grid id, computed together."""
    chosen = list(config.grids if grids is None else grids)
    if not chosen:
        return {}
    facts = await _gather(session, config, period, [grid.id for grid in chosen])
    return {grid.id: facts.roll(config, period, grid) for grid in chosen}


async def build_roll(
    session: AsyncSession, config: Config, period: Period, grid: GridConfig | None
) -> Roll:
    """Compute one roll: a grid's, or the whole community's when ``grid`` is None."""
    if grid is not None:
        return (await build_rolls(session, config, period, [grid]))[grid.id]
    facts = await _gather(session, config, period, None)
    return facts.roll(config, period, None)


async def _gather(
    session: AsyncSession, config: Config, period: Period, grid_ids: list[str] | None
) -> _Facts:
    """Run the roll's queries, per grid for ``grid_ids``, else for the community."""
    ranked = await _ranked(session, period, config.schedules.honor_roll_top, grid_ids)
    reasons = await _reasons(session, period, ranked, by_grid=grid_ids is not None)
    names = await _public_names(
        session, {member_id for rows in ranked.values() for member_id, _ in rows}
    )
    entries = {
        key: [
            RollEntry(
                rank,
                member_id,
                names.get(member_id, ANONYMOUS),
                points,
                reasons.get((key, member_id), []),
            )
            for rank, (member_id, points) in enumerate(rows, start=1)
        ]
        for key, rows in ranked.items()
    }
    return _Facts(
        entries=entries,
        staff=await _staff_thanks(session, period, grid_ids),
        same_day=await _same_day_resolved(session, config, period, grid_ids),
        praise=await _praise_count(session, period, grid_ids),
    )


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


def _entry_grid() -> ColumnElement[str | None]:
    """An entry's grid: its own, else its member's (needs the join to ``members``)."""
    return func.coalesce(PointEntry.grid_id, Member.grid_id)


def _keys(
    column: ColumnElement[str | None], grid_ids: list[str] | None
) -> list[ColumnElement[str | None]]:
    """The grouping columns: the grid when rolls are per grid, none for the community."""
    return [column] if grid_ids is not None else []


def _per_grid(
    query: Select[Any], column: ColumnElement[str | None], grid_ids: list[str] | None
) -> Select[Any]:
    """``query`` kept to ``grid_ids`` and grouped by grid, or left whole (community)."""
    if grid_ids is None:
        return query
    return query.where(column.in_(grid_ids)).group_by(column)


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(ids)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


async def _ranked(
    session: AsyncSession, period: Period, top: int, grid_ids: list[str] | None
) -> dict[GridKey, list[tuple[str, int]]]:
    """The top members with their points, per grid, ranked in one query."""
    grid = _entry_grid()
    keys = _keys(grid, grid_ids)
    total = func.sum(PointEntry.delta)
    rank = func.row_number().over(
        partition_by=keys or None,
        order_by=[total.desc(), func.count().desc(), PointEntry.member_id],
    )
    inner = (
        select(
            *(key.label("grid") for key in keys),
            PointEntry.member_id,
            total.label("points"),
            rank.label("rank"),
        )
        .select_from(PointEntry)
        .outerjoin(Member, Member.id == PointEntry.member_id)
        .where(*_counted_entries(period))
        .having(total > 0)
    )
    inner = _per_grid(inner, grid, grid_ids).group_by(PointEntry.member_id).subquery()
    order = [inner.c.grid] if keys else []
    query = select(inner).where(inner.c.rank <= top).order_by(*order, inner.c.rank)
    ranked: dict[GridKey, list[tuple[str, int]]] = {}
    for row in (await session.execute(query)).all():
        key = row.grid if keys else None
        ranked.setdefault(key, []).append((row.member_id, int(row.points)))
    return ranked


async def _reasons(
    session: AsyncSession,
    period: Period,
    ranked: dict[GridKey, list[tuple[str, int]]],
    *,
    by_grid: bool,
) -> dict[tuple[GridKey, str], list[str]]:
    """Reasons in words for the members on the rolls, from their entries' notes."""
    wanted = [(key, member_id) for key, rows in ranked.items() for member_id, _ in rows]
    if not wanted:
        return {}
    grid = _entry_grid()
    keys = [grid] if by_grid else []
    total = func.sum(PointEntry.delta)
    praise: dict[tuple[GridKey, str], list[tuple[str, int]]] = {}
    other: dict[tuple[GridKey, str], list[str]] = {}
    on_roll = set(wanted)
    for ids in _chunks({member_id for _, member_id in wanted}):
        query = (
            select(
                *(key.label("grid") for key in keys),
                PointEntry.member_id,
                PointEntry.kind,
                PointEntry.note,
                func.count().label("n"),
            )
            .select_from(PointEntry)
            .outerjoin(Member, Member.id == PointEntry.member_id)
            .where(*_counted_entries(period), PointEntry.member_id.in_(ids))
            .group_by(*keys, PointEntry.member_id, PointEntry.kind, PointEntry.note)
            .order_by(*keys, PointEntry.member_id, total.desc(), PointEntry.note)
        )
        for row in (await session.execute(query)).all():
            pair = (row.grid if by_grid else None, row.member_id)
            if pair not in on_roll:  # the member's entries in another grid
                continue
            if row.kind == "praise":
                praise.setdefault(pair, []).append((public_reason(row.note), row.n))
            else:
                other.setdefault(pair, []).append(public_reason(row.note))
    words: dict[tuple[GridKey, str], list[str]] = {}
    for pair in wanted:
        parts = list(dict.fromkeys(other.get(pair, [])))[:2]
        got = praise.get(pair, [])
        if got:
            times = sum(n for _, n in got)
            said = "、".join(list(dict.fromkeys(r for r, _ in got if r))[:2])
            parts.insert(0, f"获邻居表扬{times}次" + (f"（{said}）" if said else ""))
        words[pair] = parts
    return words


async def _public_names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    """The names a roll may show: 一位热心居民 for opted-out or unnamed members."""
    names: dict[str, str] = {}
    for chunk in _chunks(ids):
        query = select(Member.id, Member.name, Member.opted_out).where(
            Member.id.in_(chunk)
        )
        for row in (await session.execute(query)).all():
            names[row.id] = ANONYMOUS if row.opted_out else (row.name or ANONYMOUS)
    return names


async def _staff_thanks(
    session: AsyncSession, period: Period, grid_ids: list[str] | None
) -> dict[GridKey, list[StaffThanks]]:
    """Confirmed praise of staff, counted per grid and person, most praised first."""
    keys = _keys(Praise.grid_id, grid_ids)
    times = func.count()
    query = select(
        *(key.label("grid") for key in keys),
        Praise.target_id,
        times.label("n"),
        func.max(Praise.reason).label("example"),
        func.max(Praise.target_name).label("written"),
    ).where(
        Praise.target_is_staff,
        Praise.status == "confirmed",
        Praise.target_id.is_not(None),
        *_in_period(Praise.created_at, period),
    )
    query = _per_grid(query, Praise.grid_id, grid_ids).group_by(Praise.target_id)
    query = query.order_by(*keys, times.desc(), Praise.target_id)
    rows = (await session.execute(query)).all()

    names: dict[str, str] = {}
    for chunk in _chunks({r.target_id for r in rows}):
        query = select(StaffRole.member_id, StaffRole.name).where(
            StaffRole.member_id.in_(chunk)
        )
        names.update((r.member_id, r.name) for r in (await session.execute(query)))
    thanks: dict[GridKey, list[StaffThanks]] = {}
    for r in rows:
        thanks.setdefault(r.grid if keys else None, []).append(
            StaffThanks(
                names.get(r.target_id) or r.written,
                int(r.n),
                public_reason(r.example or ""),
            )
        )
    return thanks


def _local_date(
    column: ColumnElement[datetime], dialect: str, config: Config, period: Period
) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.date(func.timezone(config.community.timezone, column))
    # SQLite keeps UTC text; shift it by the zone's offset in that period.
    offset = period.start.utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


async def _same_day_resolved(
    session: AsyncSession, config: Config, period: Period, grid_ids: list[str] | None
) -> dict[GridKey, int]:
    """Petitions resolved in the period on the local date they were reported."""
    dialect = session.bind.dialect.name
    keys = _keys(Petition.grid_id, grid_ids)
    query = (
        select(*(key.label("grid") for key in keys), func.count().label("n"))
        .select_from(Petition)
        .where(
            Petition.resolved_at.is_not(None),
            *_in_period(Petition.resolved_at, period),
            _local_date(Petition.created_at, dialect, config, period)
            == _local_date(Petition.resolved_at, dialect, config, period),
        )
    )
    query = _per_grid(query, Petition.grid_id, grid_ids)
    rows = (await session.execute(query)).all()
    return {(r.grid if keys else None): int(r.n or 0) for r in rows}


async def _praise_count(
    session: AsyncSession, period: Period, grid_ids: list[str] | None
) -> dict[GridKey, int]:
    """Confirmed praise in the period."""
    keys = _keys(Praise.grid_id, grid_ids)
    query = (
        select(*(key.label("grid") for key in keys), func.count().label("n"))
        .select_from(Praise)
        .where(Praise.status == "confirmed", *_in_period(Praise.created_at, period))
    )
    query = _per_grid(query, Praise.grid_id, grid_ids)
    rows = (await session.execute(query)).all()
    return {(r.grid if keys else None): int(r.n or 0) for r in rows}
