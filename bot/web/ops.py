"""What the dashboard pages and the JSON API both do: read, check, change.

This module holds the input checks and the petitions; the statistics, reminders and
notices are in :mod:`bot.web.ops_notices`, the members, staff, audit, points and CSV
exports in :mod:`bot.web.ops_people`.

Inputs arrive as strings from forms, query strings or JSON and are validated here;
a bad one raises :class:`InputError` (400) with a Chinese message. Petition changes
go through :func:`handlers.petitions.transition`, so the rules are the commands'.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import IncomingMessage
from bot.config import PARTIES, Config
from bot.context import MessageContext, Services
from bot.normalize import normalize
from bot.web.auth import ForbiddenError, User, clean_text
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
    StaffRole,
)

log = logging.getLogger(__name__)

PAGE_SIZE = 50
NOTE_MAX = 500
ACTIONS = {"accept": "受理", "transfer": "转派", "progress": "进展", "resolve": "办结",
           "reopen": "重新办理"}


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
    """A trimmed string field of at most ``limit`` characters.

    Lone surrogates become U+FFFD and NUL characters are dropped
    (:func:`bot.web.auth.clean_text`), so the text can be stored on any database.
    """
    value = data.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"“{name or key}”应当是文字。")
    value = clean_text(value).strip()
    if required and not value:
        raise InputError(f"请填写“{name or key}”。")
    if len(value) > limit:
        raise InputError(f"“{name or key}”太长了（最多 {limit} 字）。")
    return value


def int_arg(raw: str | None, *, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdecimal() or len(raw) > 9:
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
