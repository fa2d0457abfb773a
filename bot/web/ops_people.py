"""Dashboard and API operations: members, staff roles, the audit log, points, CSV.

Inputs are checked with the parsers of :mod:`bot.web.ops`; a bad one raises
:class:`~bot.web.ops.InputError` (400) with a Chinese message.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, or_, select

from bot.config import Config
from bot.context import Services
from bot.web.auth import ForbiddenError, User, end_sessions
from bot.web.ops import (
    PAGE_SIZE,
    BoardFilter,
    InputError,
    list_petitions,
    local_time,
    names_of,
    not_found,
    text_arg,
)
from handlers.commands import ADMINS, STAFF
from handlers.petitions import STATUS_NAMES
from models.tables import (
    AuditEntry,
    Member,
    PointEntry,
    StaffRole,
)

log = logging.getLogger(__name__)


AUDITORS = frozenset({"居委会", "管理员"})
MANAGERS_OF_POINTS = frozenset({"网格员", "居委会", "管理员"})


# --- members, staff, points ----------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    id: str
    name: str
    grid_id: str | None
    opted_out: bool
    points: int
    role: str
    role_grids: tuple[str, ...]
    active: bool
    has_password: bool


async def list_members(services: Services, user: User, *, q: str = "", grid: str = "",
                       page: int = 1) -> tuple[list[MemberRow], int]:
    """Members with their points and staff roles; a 网格员 sees their grids only."""
    points = (select(PointEntry.member_id, func.sum(PointEntry.delta).label("total"))
              .group_by(PointEntry.member_id).subquery())
    query = (select(Member, func.coalesce(points.c.total, 0))
             .outerjoin(points, points.c.member_id == Member.id))
    if not user.all_grids:
        query = query.where(Member.grid_id.in_(user.grids))
    if grid:
        query = query.where(Member.grid_id == grid)
    if q:
        like = f"%{q.replace('%', '').replace('_', '')}%"
        query = query.where(or_(Member.name.like(like), Member.id.like(like)))
    async with services.db.session() as session:
        total = int(await session.scalar(select(func.count()).select_from(query.subquery()))
                    or 0)
        rows = list((await session.execute(
            query.order_by(Member.grid_id, Member.name).limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE))).all())
        roles = {r.member_id: r for r in await session.scalars(select(StaffRole))}
    members = []
    for member, total_points in rows:
        role = roles.get(member.id)
        members.append(MemberRow(member.id, member.name, member.grid_id, member.opted_out,
                                 int(total_points), role.role if role else "",
                                 tuple(role.grids or ()) if role else (),
                                 bool(role and role.active), bool(role and role.password_hash)))
    return members, total


async def list_staff(services: Services) -> list[StaffRole]:
    async with services.db.session() as session:
        return list(await session.scalars(select(StaffRole).order_by(StaffRole.role,
                                                                     StaffRole.member_id)))


async def set_role(services: Services, user: User, member_id: str,
                   data: Mapping[str, Any], grids: list[str]) -> StaffRole | None:
    """An admin gives, changes or takes away a staff role."""
    if user.role not in ADMINS:
        raise ForbiddenError(text="只有管理员可以修改工作人员角色。")
    if not member_id or len(member_id) > 128:
        raise InputError("成员编号不对。")
    role_name = text_arg(data, "role", limit=16, name="角色")
    name = text_arg(data, "name", limit=64, name="姓名")
    if role_name and role_name not in STAFF:
        raise InputError("角色只能是网格员、居委会、物业或管理员，或留空取消。")
    for grid in grids:
        if not isinstance(grid, str) or services.config.grid(grid) is None:
            raise InputError("没有这个网格。")
    if member_id == user.member_id and role_name != "管理员":
        raise InputError("不能取消自己的管理员角色，请让另一位管理员操作。")
    now = services.now()
    async with services.db.session() as session:
        row = await session.get(StaffRole, member_id)
        if row is None and not role_name:
            raise not_found("这个成员没有工作人员角色。")
        if row is None:
            member = await session.get(Member, member_id)
            if member is None:
                raise not_found("没有这个成员。")
            row = StaffRole(member_id=member_id, name=name or member.name, role=role_name,
                            grids=list(grids), password_hash="", active=True,
                            origin="dashboard")
            session.add(row)
        elif role_name:
            row.role, row.grids, row.active = role_name, list(grids), True
            row.name = name or row.name
            if row.member_id not in {s.id for s in services.config.staff}:
                row.origin = "dashboard"
        else:
            row.active = False
            # cookies signed before this must not come back to life with a new role
            await end_sessions(session, member_id, actor=user.member_id,
                               why="role removed", at=now)
        session.add(AuditEntry(at=now, actor_id=user.member_id, action="staff:role",
                               target=member_id,
                               detail=f"role={role_name or '-'} grids={','.join(grids)}"))
    log.info("staff role changed member=%s role=%s by=%s", member_id, role_name or "-",
             user.member_id)
    return row


# --- audit ---------------------------------------------------------------------------


async def list_audit(services: Services, user: User, *, actor: str = "", action: str = "",
                     refused: bool = False, page: int = 1) -> tuple[list[AuditEntry], int]:
    if user.role not in AUDITORS:
        raise ForbiddenError(text="审计日志只有居委会和管理员可以查看。")
    query = select(AuditEntry)
    if actor:
        query = query.where(AuditEntry.actor_id == actor)
    if action:
        query = query.where(AuditEntry.action.startswith(action, autoescape=True))
    if refused:
        query = query.where(AuditEntry.allowed.is_(False))
    async with services.db.session() as session:
        total = int(await session.scalar(select(func.count()).select_from(query.subquery()))
                    or 0)
        rows = list(await session.scalars(query.order_by(AuditEntry.id.desc())
                                          .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return rows, total


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor_id": entry.actor_id,
            "action": entry.action, "target": entry.target, "allowed": entry.allowed,
            "detail": entry.detail}


# --- honor roll ------------------------------------------------------------------------


def week_start(config: Config, moment: datetime) -> date:
    local = moment.astimezone(config.tz).date()
    return local - timedelta(days=local.weekday())


async def weekly_points(services: Services, user: User, monday: date,
                        top: int = 10) -> list[dict[str, Any]]:
    """Points earned in the week starting ``monday``, best first; opted-out names hidden."""
    tz = services.config.tz
    start = datetime.combine(monday, time(0, 0), tz)
    end = start + timedelta(days=7)
    query = (select(PointEntry.member_id, func.sum(PointEntry.delta).label("total"))
             .where(PointEntry.created_at >= start, PointEntry.created_at < end)
             .group_by(PointEntry.member_id).order_by(func.sum(PointEntry.delta).desc())
             .limit(200))
    async with services.db.session() as session:
        rows = list((await session.execute(query)).all())
        members = {m.id: m for m in await session.scalars(
            select(Member).where(Member.id.in_([r[0] for r in rows])))}
    result = []
    for member_id, total in rows:
        member = members.get(member_id)
        grid = member.grid_id if member else None
        if not user.covers(grid) or int(total) <= 0:
            continue
        hidden = bool(member and member.opted_out)
        result.append({"member_id": member_id, "grid_id": grid, "points": int(total),
                       "name": "（不公开姓名）" if hidden else (member.name if member else ""),
                       "opted_out": hidden})
    return result[:top]


# --- CSV -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):  # no formulas in a spreadsheet
        text = "'" + text
    return text


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 with a BOM, so spreadsheet programs read the Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


async def petitions_csv(services: Services, user: User, flt: BoardFilter) -> bytes:
    config = services.config
    async with services.db.session() as session:
        rows, _ = await list_petitions(session, user, flt, services.now(), limit=None)
    return to_csv(
        ["编号", "网格", "状态", "类别", "责任方", "承办人", "反映人", "内容", "紧急",
         "登记时间", "响应期限", "办结期限", "办结时间", "重办次数"],
        [[p.id, p.grid_id or "", STATUS_NAMES.get(p.status, p.status), p.category, p.party,
          p.assignee_id, p.reporter_name, p.text, "是" if p.urgent else "",
          local_time(config, p.created_at, "%Y-%m-%d %H:%M"),
          local_time(config, p.response_due, "%Y-%m-%d %H:%M"),
          local_time(config, p.resolve_due, "%Y-%m-%d %H:%M"),
          local_time(config, p.resolved_at, "%Y-%m-%d %H:%M"), p.reopen_count]
         for p in rows])


async def points_csv(services: Services, user: User) -> bytes:
    if user.role not in MANAGERS_OF_POINTS:
        raise ForbiddenError(text="积分明细只有网格员、居委会和管理员可以导出。")
    config = services.config
    async with services.db.session() as session:
        query = select(PointEntry).order_by(PointEntry.id)
        if not user.all_grids:
            query = query.where(PointEntry.grid_id.in_(user.grids))
        entries = list(await session.scalars(query))
        names = await names_of(session, {e.member_id for e in entries})
    return to_csv(
        ["序号", "成员", "姓名", "网格", "积分", "类型", "关联", "说明", "时间", "记录人",
         "冲销序号"],
        [[e.id, e.member_id, names.get(e.member_id, ""), e.grid_id or "", e.delta, e.kind,
          e.ref, e.note, local_time(config, e.created_at, "%Y-%m-%d %H:%M"), e.created_by,
          e.reverses or ""] for e in entries])
