"""积分: the points ledger. Entries are only ever added; a mistake gets a negative twin.

    praise       a confirmed praise (``ref`` praise:N)
    volunteer    hours recorded by staff
    hazard       a reported hazard that was fixed (``ref`` hazard:N, petition N)
    suggestion   an adopted suggestion (``ref`` suggestion:N)
    award        a staff award
    reversal     cancels entry ``reverses`` (at most once: a unique index says so)

A balance is ``SUM(delta)``; nothing is stored as a counter.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from models.tables import Member, PointEntry, StaffRole

log = logging.getLogger(__name__)

KIND_NAMES = {
    "praise": "获得表扬",
    "volunteer": "志愿服务",
    "hazard": "隐患排除",
    "suggestion": "建议被采纳",
    "award": "工作人员奖励",
    "reversal": "撤销",
}
ANONYMOUS = "一位热心居民"
MAX_AWARD = 50
MAX_HOURS = 24.0


class PointsError(Exception):
    """A ledger action that cannot be done; the message is the Chinese reply."""


@dataclass(frozen=True)
class Standing:
    """One member's points: all-time total, this week's, and rank among the grid."""

    total: int
    rank: int
    ranked: int  # how many members have points in the same scope


def add_entry(
    session: AsyncSession,
    *,
    member_id: str,
    grid_id: str | None,
    delta: int,
    kind: str,
    note: str,
    by: str,
    now: datetime,
    ref: str = "",
) -> PointEntry:
    """Write one ledger line inside the caller's transaction."""
    entry = PointEntry(
        member_id=member_id,
        grid_id=grid_id,
        delta=delta,
        kind=kind,
        ref=ref[:64],
        note=note[:300],
        created_at=now,
        created_by=by,
    )
    session.add(entry)
    log.info(
        "points entry member=%s kind=%s delta=%d ref=%s by=%s",
        member_id,
        kind,
        delta,
        ref,
        by,
    )
    return entry


async def already_paid(session: AsyncSession, ref: str) -> bool:
    """Whether a positive entry for this cause (``praise:12``, ``hazard:7``) exists."""
    return (
        await session.scalar(
            select(func.count()).select_from(PointEntry).where(PointEntry.ref == ref)
        )
        or 0
    ) > 0


async def reverse(
    session: AsyncSession, entry_id: int, *, by: str, now: datetime, reason: str = ""
) -> PointEntry:
    """Cancel a ledger entry with a new negative one; raise if it cannot be."""
    entry = await session.get(PointEntry, entry_id)
    if entry is None:
        raise PointsError(f"没有编号为 {entry_id} 的积分记录。")
    if entry.kind == "reversal":
        raise PointsError(f"记录 {entry_id} 本身就是一次撤销，不能再撤销。")
    done = await session.scalar(
        select(PointEntry.id).where(PointEntry.reverses == entry_id)
    )
    if done is not None:
        raise PointsError(f"记录 {entry_id} 已经撤销过了（撤销记录 {done}）。")
    twin = add_entry(
        session,
        member_id=entry.member_id,
        grid_id=entry.grid_id,
        delta=-entry.delta,
        kind="reversal",
        note=(reason or f"撤销记录{entry_id}"),
        by=by,
        now=now,
        ref=f"reverse:{entry_id}",
    )
    twin.reverses = entry_id
    await session.flush()
    return twin


async def balance(session: AsyncSession, member_id: str) -> int:
    """A member's points: the sum of the ledger."""
    return int(
        await session.scalar(
            select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
                PointEntry.member_id == member_id
            )
        )
        or 0
    )


async def standing(
    session: AsyncSession, member_id: str, grid_id: str | None
) -> Standing:
    """Total points and rank among members with points (in the grid when known)."""
    totals = select(
        PointEntry.member_id.label("member_id"),
        func.sum(PointEntry.delta).label("total"),
    ).group_by(PointEntry.member_id)
    if grid_id:
        totals = totals.where(PointEntry.grid_id == grid_id)
    totals = totals.where(
        PointEntry.member_id.not_in(select(StaffRole.member_id).where(StaffRole.active))
    )
    sub = totals.subquery()
    mine = await balance(session, member_id)
    scoped = int(
        await session.scalar(
            select(func.coalesce(func.max(sub.c.total), 0)).where(
                sub.c.member_id == member_id
            )
        )
        or 0
    )
    ahead = int(
        await session.scalar(
            select(func.count()).select_from(sub).where(sub.c.total > scoped)
        )
        or 0
    )
    ranked = int(
        await session.scalar(
            select(func.count()).select_from(sub).where(sub.c.total > 0)
        )
        or 0
    )
    return Standing(total=mine, rank=ahead + 1, ranked=ranked)


async def recent_entries(
    session: AsyncSession, member_id: str, limit: int = 5
) -> list[PointEntry]:
    """The member's latest ledger lines, newest first."""
    return list(
        await session.scalars(
            select(PointEntry)
            .where(PointEntry.member_id == member_id)
            .order_by(PointEntry.id.desc())
            .limit(limit)
        )
    )


async def public_name(session: AsyncSession, member_id: str, fallback: str = "") -> str:
    """How a member may be named in public: their name, or 一位热心居民 if they opted out."""
    member = await session.get(Member, member_id)
    if member is not None and member.opted_out:
        return ANONYMOUS
    staff = await session.get(StaffRole, member_id)
    if staff is not None and staff.name:
        return staff.name
    return (member.name if member and member.name else fallback) or ANONYMOUS


_CN_DIGITS = {
    "零": 0,
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_HOURS = re.compile(
    r"^(?P<num>\d+(?:\.\d+)?|[一两二三四五六七八九十]+)?(?P<half>个半|半)?"
    r"(?:个)?(?:小时|钟头|h|H)$"
)


def parse_hours(word: str) -> float | None:
    """``2小时`` → 2.0, ``1.5h`` → 1.5, ``两个半小时`` → 2.5, ``半小时`` → 0.5."""
    match = _HOURS.match(word.strip())
    if not match or not (match.group("num") or match.group("half")):
        return None
    raw = match.group("num") or ""
    if not raw:
        value = 0.0
    elif raw[0].isdigit():
        value = float(raw)
    else:
        value = _cn_number(raw)
    if match.group("half"):
        value += 0.5
    return value if 0 < value <= MAX_HOURS else None


def _cn_number(raw: str) -> float:
    if raw == "十":
        return 10.0
    if raw.startswith("十"):
        return 10.0 + _CN_DIGITS.get(raw[1:], 0)
    if "十" in raw:
        tens, _, ones = raw.partition("十")
        return _CN_DIGITS.get(tens, 0) * 10.0 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    return float(_CN_DIGITS.get(raw, 0))


def format_hours(hours: float) -> str:
    """2.0 → ``2``, 1.5 → ``1.5``."""
    return f"{hours:g}"
