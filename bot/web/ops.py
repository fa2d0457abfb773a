"""What the dashboard pages and the JSON API both do: read, check, change.

Inputs arrive as strings from forms, query strings or JSON and are validated here;
a bad one raises :class:`InputError` (400) with a Chinese message. Petition changes
go through :func:`handlers.petitions.transition`, so the rules are the commands'.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import IncomingMessage
from bot.config import PARTIES, Config
from bot.context import MessageContext, Services
from bot.normalize import normalize
from bot.web.auth import ForbiddenError, User
from handlers.commands import ADMINS, STAFF
from handlers.followup import cancel_followups
from handlers.petitions import (
    OPEN_STATES,
    STATUS_NAMES,
    PetitionError,
    may_handle,
    transition,
)
from models.tables import (
    AuditEntry,
    Member,
    Petition,
    PetitionEvent,
    PointEntry,
    Reminder,
    StaffRole,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
NOTE_MAX = 500
NOTICE_MAX = 1000
ACTIONS = {"accept": "受理", "transfer": "转派", "progress": "进展", "resolve": "办结",
           "reopen": "重新办理"}
AUDITORS = frozenset({"居委会", "管理员"})
MANAGERS_OF_POINTS = frozenset({"网格员", "居委会", "管理员"})
GROUP_BY = {"grid": "网格", "party": "责任方", "category": "类别", "week": "周"}


class InputError(web.HTTPBadRequest):
    """Bad input: 400 with a Chinese message."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message)


class ConflictError(web.HTTPConflict):
    """A change the petition's state does not allow: 409 with the command's message."""

    def __init__(self, message: str) -> None:
        super().__init__(text=message)


def not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=message)


# --- small parsers -----------------------------------------------------------------


def text_arg(data: Mapping[str, Any], key: str, *, limit: int, required: bool = False,
             name: str = "") -> str:
    """A trimmed string field of at most ``limit`` characters."""
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"“{name or key}”应当是文字。")
    value = value.strip()
    if required and not value:
        raise InputError(f"请填写“{name or key}”。")
    if len(value) > limit:
        raise InputError(f"“{name or key}”太长了（最多 {limit} 字）。")
    return value


def int_arg(raw: str | None, *, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InputError(f"“{name}”应当是数字。")
    value = int(raw)
    if not low <= value <= high:
        raise InputError(f"“{name}”应在 {low} 到 {high} 之间。")
    return value


def bool_arg(raw: str | None, *, name: str) -> bool:
    if raw in (None, "", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise InputError(f"“{name}”只能是 1 或 0。")


def date_arg(raw: str | None, *, name: str, default: date) -> date:
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InputError(f"“{name}”应当是日期，例如 2026-12-01。") from None


def local_time(config: Config, moment: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    return moment.astimezone(config.tz).strftime(fmt) if moment else ""


# --- petitions ---------------------------------------------------------------------


@dataclass(frozen=True)
class BoardFilter:
    grid: str = ""
    status: str = ""
    category: str = ""
    party: str = ""
    overdue: bool = False
    page: int = 1

    def query_string(self, **changes: Any) -> str:
        from urllib.parse import urlencode

        values = dataclasses.replace(self, **changes)
        pairs = {k: v for k, v in dataclasses.asdict(values).items() if v not in ("", False)}
        if pairs.get("overdue"):
            pairs["overdue"] = 1
        if pairs.get("page") == 1:
            del pairs["page"]
        return urlencode(pairs)


def parse_board_filter(config: Config, user: User, query: Mapping[str, str]) -> BoardFilter:
    """Validate the board's filters; a grid outside the user's is refused."""
    grid = query.get("grid", "")
    if grid and config.grid(grid) is None:
        raise InputError("没有这个网格。")
    if grid and not user.covers(grid):
        raise ForbiddenError(text="这个网格不在您的负责范围内。")
    status = query.get("status", "")
    if status and status not in STATUS_NAMES and status not in ("open", "done"):
        raise InputError("没有这个状态。")
    category = query.get("category", "")
    if category and config.category(category) is None:
        raise InputError("没有这个类别。")
    party = query.get("party", "")
    if party and party not in PARTIES:
        raise InputError("责任方只能是物业、居委会或网格员。")
    return BoardFilter(grid, status, category, party,
                       bool_arg(query.get("overdue"), name="超时"),
                       int_arg(query.get("page"), name="页码", default=1, low=1, high=10_000))


def _visible(query: Select[Any], user: User) -> Select[Any]:
    """What the commands let this member see: their grids; 物业 only its own matters."""
    if not user.all_grids:
        query = query.where(Petition.grid_id.in_(user.grids))
    if user.role == "物业":
        query = query.where(Petition.party == "物业")
    return query


def _filtered(query: Select[Any], flt: BoardFilter, now: datetime) -> Select[Any]:
    if flt.grid:
        query = query.where(Petition.grid_id == flt.grid)
    if flt.status == "open":
        query = query.where(Petition.status.in_(OPEN_STATES))
    elif flt.status == "done":
        query = query.where(Petition.status.not_in(OPEN_STATES))
    elif flt.status:
        query = query.where(Petition.status == flt.status)
    if flt.category:
        query = query.where(Petition.category == flt.category)
    if flt.party:
        query = query.where(Petition.party == flt.party)
    if flt.overdue:
        query = query.where(Petition.status.in_(OPEN_STATES), or_(
            Petition.resolve_due < now,
            (Petition.status == "reported") & (Petition.response_due < now)))
    return query


def is_overdue(petition: Petition, now: datetime) -> bool:
    if petition.status not in OPEN_STATES:
        return False
    return petition.resolve_due < now or (petition.status == "reported"
                                          and petition.response_due < now)


async def list_petitions(session: AsyncSession, user: User, flt: BoardFilter, now: datetime,
                         *, limit: int | None = PAGE_SIZE) -> tuple[list[Petition], int]:
    """One page of the board and the total number of matching petitions."""
    base = _filtered(_visible(select(Petition), user), flt, now)
    total = int(await session.scalar(select(func.count()).select_from(base.subquery())) or 0)
    query = base.order_by(Petition.id.desc())
    if limit is not None:
        query = query.limit(limit).offset((flt.page - 1) * limit)
    return list(await session.scalars(query)), total


async def load_petition(session: AsyncSession, user: User, number: int) -> Petition:
    """A petition the user may see: 404 when there is none, 403 outside their grids."""
    petition = await session.get(Petition, number)
    if petition is None:
        raise not_found(f"没有找到 #{number} 号诉求。")
    if not user.covers(petition.grid_id):
        raise ForbiddenError(text=f"#{number} 不在您负责的网格内。")
    if not may_handle(user.info, petition):
        raise ForbiddenError(text=f"#{number} 由{petition.party}负责，您不能查看。")
    return petition


async def petition_events(session: AsyncSession, number: int) -> list[PetitionEvent]:
    return list(await session.scalars(select(PetitionEvent).where(
        PetitionEvent.petition_id == number).order_by(PetitionEvent.id)))


async def names_of(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    """Display names for WeChat ids: staff names first, then member names."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    names = {m.id: m.name for m in await session.scalars(select(Member).where(Member.id.in_(ids)))}
    for role in await session.scalars(select(StaffRole).where(StaffRole.member_id.in_(ids))):
        if role.name:
            names[role.member_id] = role.name
    return names


def petition_json(petition: Petition, config: Config, now: datetime) -> dict[str, Any]:
    return {
        "id": petition.id, "grid_id": petition.grid_id, "status": petition.status,
        "status_name": STATUS_NAMES.get(petition.status, petition.status),
        "category": petition.category, "party": petition.party,
        "assignee_id": petition.assignee_id, "reporter_id": petition.reporter_id,
        "reporter_name": petition.reporter_name, "text": petition.text,
        "location": petition.location, "urgent": petition.urgent, "private": petition.private,
        "created_at": petition.created_at.isoformat(),
        "response_due": petition.response_due.isoformat(),
        "resolve_due": petition.resolve_due.isoformat(),
        "resolved_at": petition.resolved_at.isoformat() if petition.resolved_at else None,
        "reopen_count": petition.reopen_count, "overdue": is_overdue(petition, now),
    }


def event_json(event: PetitionEvent) -> dict[str, Any]:
    return {"at": event.at.isoformat(), "actor_id": event.actor_id, "action": event.action,
            "from": event.from_status, "to": event.to_status, "note": event.note}


class _Refused(Exception):
    """A command refused the change; raised to roll its transaction back."""


async def apply_action(services: Services, user: User, number: int, action: str,
                       data: Mapping[str, Any]) -> Petition:
    """Accept, transfer, progress, resolve or reopen a petition, by the commands' rules.

    Accept, progress, resolve and transfer run the chat command itself, as if the
    member had sent it privately: the same checks, history, audit row, follow-up and
    messages to the reporter and staff; only the confirmation to the member is dropped.
    """
    if action not in ACTIONS:
        raise InputError("没有这个操作。")
    note = text_arg(data, "note", limit=NOTE_MAX, name="说明",
                    required=action == "progress")
    party = text_arg(data, "party", limit=16, name="转派给")
    if action == "transfer" and party not in PARTIES:
        raise InputError("转派时请选择责任方：物业、居委会或网格员。")

    now = services.now()
    try:
        async with services.db.session() as session:
            petition = await load_petition(session, user, number)
            if action == "reopen":
                _reopen(services, session, user, petition, note, now)
                await cancel_followups(session, petition.id)  # no 回访 for an open matter
            else:
                await _run_command(services, session, user, petition, action, party, note)
    except _Refused as exc:
        await refuse(services, user, f"petition:{action}", f"#{number}", f"web; {exc}")
        raise ConflictError(str(exc)) from None
    services.outbox.wake()
    return petition


async def _run_command(services: Services, session: AsyncSession, user: User,
                       petition: Petition, action: str, party: str, note: str) -> None:
    from handlers.commands import CommandError
    from handlers.commands import petitions as commands

    args = [str(petition.id)] + ([party] if action == "transfer" else []) + note.split()
    text = f"/{ACTIONS[action]} {' '.join(args)}"
    message = IncomingMessage(message_id=f"web-{secrets.token_hex(8)}", room_id=None,
                              talker_id=user.member_id, talker_name=user.name, text=text,
                              timestamp=services.now())
    ctx = MessageContext(services, session, message, normalize(text), None, user.info)
    try:
        await getattr(commands, action)(ctx, args)
    except CommandError as exc:
        raise _Refused(str(exc)) from None
    for reply in ctx.replies:
        if reply.room_id == user.member_id:
            continue  # the confirmation meant for the sender: the page shows it instead
        services.outbox.add(session, reply.room_id, reply.text,
                            mention_ids=reply.mention_ids, mention_names=reply.mention_names,
                            image_path=reply.image_path,
                            source=f"{reply.source}:web-{petition.id}"[:64])


def _reopen(services: Services, session: AsyncSession, user: User, petition: Petition,
            note: str, now: datetime) -> None:
    """There is no reopen command: the lifecycle rule itself, with history and audit."""
    try:
        transition(session, petition, "reopen", user.member_id, now, note,
                   config=services.config)
    except PetitionError as exc:
        raise _Refused(str(exc)) from None
    session.add(AuditEntry(at=now, actor_id=user.member_id, action="petition:reopen",
                           target=f"#{petition.id}", detail=(f"web; {note}")[:500]))


async def refuse(services: Services, user: User, action: str, target: str, why: str) -> None:
    """Record a refused dashboard change in the audit log."""
    async with services.db.session() as session:
        session.add(AuditEntry(at=services.now(), actor_id=user.member_id, action=action,
                               target=target[:128], allowed=False, detail=why[:500]))


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
