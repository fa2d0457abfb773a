"""Dashboard and API operations: statistics, group reminders and staff notices.

Inputs are checked with the parsers of :mod:`bot.web.ops`; a bad one raises
:class:`~bot.web.ops.InputError` (400) with a Chinese message.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import or_, select

from bot.config import Config
from bot.context import Services
from bot.web.auth import ForbiddenError, User
from bot.web.ops import (
    ConflictError,
    InputError,
    date_arg,
    not_found,
    text_arg,
)
from models.tables import (
    AuditEntry,
    Reminder,
)

log = logging.getLogger(__name__)


NOTICE_MAX = 1000
GROUP_BY = {"grid": "网格", "party": "责任方", "category": "类别", "week": "周"}


# --- statistics --------------------------------------------------------------------


def stats_module() -> Any:
    """``handlers.stats`` when it is installed, else None."""
    try:
        from handlers import stats
    except ImportError:
        return None
    return stats if hasattr(stats, "compute_rates") else None


@dataclass(frozen=True)
class StatsQuery:
    since: date
    until: date
    group_by: str | None
    grid: str | None


def parse_stats_query(config: Config, user: User, query: Mapping[str, str],
                      today: date) -> StatsQuery:
    until = date_arg(query.get("until"), name="结束日期", default=today)
    since = date_arg(query.get("since"), name="开始日期", default=until - timedelta(days=27))
    if since > until:
        raise InputError("开始日期不能晚于结束日期。")
    if (until - since).days > 366:
        raise InputError("统计范围最长一年。")
    group_by = query.get("group_by", "grid") or None
    if group_by == "none":
        group_by = None
    if group_by is not None and group_by not in GROUP_BY:
        raise InputError("分组只能是网格、责任方、类别或周。")
    grid = query.get("grid") or None
    if grid is not None and config.grid(grid) is None:
        raise InputError("没有这个网格。")
    if grid is not None and not user.covers(grid):
        raise ForbiddenError(text="这个网格不在您的负责范围内。")
    if grid is None and not user.all_grids:
        grid = user.grids[0]
    return StatsQuery(since, until, group_by, grid)


def row_dict(row: Any) -> dict[str, Any]:
    """A rate row as a plain dict, its computed rates included."""
    if hasattr(row, "as_dict"):
        data = row.as_dict()
    elif dataclasses.is_dataclass(row) and not isinstance(row, type):
        data = dataclasses.asdict(row)
    elif isinstance(row, Mapping):
        data = dict(row)
    else:
        data = {k: v for k, v in vars(row).items() if not k.startswith("_")}
    return {k: (v.isoformat() if isinstance(v, date | datetime) else v) for k, v in data.items()}


async def compute_stats(services: Services, query: StatsQuery) -> list[dict[str, Any]] | None:
    """Rate rows from ``handlers.stats``, or None while that module is not installed."""
    stats = stats_module()
    if stats is None:
        return None
    tz = services.config.tz
    since = datetime.combine(query.since, time(0, 0), tz)
    # a deadline "has passed" only up to now, so a period ending today stops at now
    until = min(datetime.combine(query.until + timedelta(days=1), time(0, 0), tz),
                services.now())
    if until <= since:
        return []
    async with services.db.session() as session:
        rows = await stats.compute_rates(session, services.config, since=since, until=until,
                                         grid_id=query.grid, group_by=query.group_by)
    return [row_dict(r) for r in rows]


# --- reminders and notices -----------------------------------------------------------


def rooms_of(config: Config, user: User) -> list[tuple[str, str]]:
    """The groups this user may send a notice to: (room id, name)."""
    rooms = [(g.room_id or g.id, g.room_topic or g.name) for g in config.grids
             if user.covers(g.id)]
    if user.all_grids and config.community.community_room:
        rooms.append((config.community.community_room, "社区大群"))
    return rooms


def _room_grid(config: Config, room_id: str) -> str | None:
    grid = config.grid_for_room(room_id)
    return grid.id if grid else None


def _may_touch(config: Config, user: User, reminder: Reminder) -> bool:
    if reminder.creator_id == user.member_id or user.all_grids:
        return True
    rooms = reminder.room_ids or []
    return bool(rooms) and all(user.covers(_room_grid(config, r)) for r in rooms)


async def list_reminders(services: Services, user: User) -> list[Reminder]:
    """Group reminders and notices this user may see, pending first."""
    async with services.db.session() as session:
        rows = list(await session.scalars(
            select(Reminder).where(or_(Reminder.kind == "notice",
                                       Reminder.personal_time.is_(False)))
            .order_by(Reminder.status != "pending", Reminder.due_at.desc()).limit(300)))
    return [r for r in rows if _may_touch(services.config, user, r)]


def reminder_json(reminder: Reminder) -> dict[str, Any]:
    return {"id": reminder.id, "kind": reminder.kind, "content": reminder.content,
            "room_ids": reminder.room_ids, "due_at": reminder.due_at.isoformat(),
            "status": reminder.status, "creator_id": reminder.creator_id,
            "recurring": bool(reminder.recurrence), "sent_count": reminder.sent_count}


async def cancel_reminder(services: Services, user: User, number: int) -> Reminder:
    async with services.db.session() as session:
        reminder = await session.get(Reminder, number)
        if reminder is None:
            raise not_found(f"没有找到 #{number} 号提醒。")
        if not _may_touch(services.config, user, reminder):
            raise ForbiddenError(text="这条提醒不在您负责的范围内。")
        if reminder.status not in ("pending", "approval"):
            raise ConflictError(f"提醒 #{number} 已经不是待发送状态，无法取消。")
        reminder.status = "cancelled"
        session.add(AuditEntry(at=services.now(), actor_id=user.member_id,
                               action="reminder:cancel", target=f"#{number}", detail="web"))
    log.info("reminder cancelled reminder=%s by=%s", number, user.member_id)
    return reminder


def parse_due(config: Config, raw: str, now: datetime) -> datetime:
    """A ``YYYY-MM-DDTHH:MM`` in the community's zone; empty means now."""
    if not raw:
        return now
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InputError("发送时间格式不对，例如 2026-12-05T09:00。") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=config.tz)
    if moment < now - timedelta(minutes=5):
        raise InputError("发送时间已经过去了。")
    if moment > now + timedelta(days=366):
        raise InputError("发送时间最多一年以内。")
    return moment


async def schedule_notice(services: Services, user: User, data: Mapping[str, Any],
                          rooms: list[str]) -> Reminder:
    """Store a notice (kind ``notice``) for the chosen groups; the scheduler sends it."""
    config = services.config
    content = text_arg(data, "content", limit=NOTICE_MAX, required=True, name="通知内容")
    due = parse_due(config, text_arg(data, "due", limit=40, name="发送时间"), services.now())
    allowed = dict(rooms_of(config, user))
    every_room = {g.room_id or g.id for g in config.grids} | {config.community.community_room}
    if not rooms:
        raise InputError("请至少选择一个群。")
    if len(rooms) > 50 or not all(isinstance(r, str) for r in rooms):
        raise InputError("群的选择不对。")
    for room in rooms:
        if room not in every_room:
            raise InputError("没有这个群。")
        if room not in allowed:
            raise ForbiddenError(text="您只能给自己负责的网格群发通知。")
    now = services.now()
    async with services.db.session() as session:
        reminder = Reminder(kind="notice", creator_id=user.member_id,
                            room_ids=list(dict.fromkeys(rooms)), target_ids=[],
                            target_names=[], content=content, due_at=due, recurrence=None,
                            personal_time=False, status="pending", created_at=now)
        session.add(reminder)
        await session.flush()
        session.add(AuditEntry(at=now, actor_id=user.member_id, action="notice:schedule",
                               target=f"#{reminder.id}",
                               detail=f"rooms={','.join(reminder.room_ids)}"[:500]))
    log.info("notice scheduled reminder=%s rooms=%d by=%s", reminder.id, len(rooms),
             user.member_id)
    return reminder
