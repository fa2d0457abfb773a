"""Petitions (诉求), the 接诉即办 way: routing, deadlines and the lifecycle.

    reported ─受理→ accepted ─进展→ in_progress ─办结→ resolved ─回访→ closed
        │                                              └─不满意→ reopened
        └─转派→ transferred          any open state ─撤回/重复→ withdrawn / duplicate

Every change is a :class:`PetitionEvent` row. An impossible change raises
:class:`PetitionStateError`, whose message is the Chinese reply; nothing changes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config, GridConfig
from bot.context import MessageContext
from models.tables import Petition, PetitionEvent

log = logging.getLogger(__name__)

STATUS_NAMES = {
    "reported": "待受理",
    "accepted": "已受理",
    "in_progress": "处理中",
    "transferred": "已转派",
    "resolved": "已办结",
    "closed": "已关闭",
    "reopened": "重新办理",
    "withdrawn": "已撤回",
    "duplicate": "重复诉求",
}
OPEN_STATES = frozenset({"reported", "accepted", "in_progress", "transferred", "reopened"})
DONE_STATES = frozenset({"resolved", "closed", "withdrawn", "duplicate"})

# action -> (states it may start from, state it leads to, name in replies)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "accept": (frozenset({"reported", "transferred", "reopened"}), "accepted", "受理"),
    "progress": (frozenset({"accepted", "in_progress", "reopened", "transferred"}),
                 "in_progress", "进展"),
    "resolve": (OPEN_STATES, "resolved", "办结"),
    "close": (frozenset({"resolved"}), "closed", "关闭"),
    "reopen": (frozenset({"resolved", "closed"}), "reopened", "重新办理"),
    "transfer": (OPEN_STATES, "transferred", "转派"),
    "return": (OPEN_STATES, "reported", "退回"),
    "withdraw": (OPEN_STATES, "withdrawn", "撤回"),
    "duplicate": (OPEN_STATES, "duplicate", "标记重复"),
}
WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PetitionError(Exception):
    """A petition action that cannot be done; the message is the Chinese reply."""


class PetitionNotFoundError(PetitionError):
    pass


class PetitionStateError(PetitionError):
    pass


@dataclass(frozen=True)
class Routing:
    category: str
    party: str
    assignee_id: str


def route(config: Config, category: str | None, grid: GridConfig | None) -> Routing:
    """Who owns a petition of this category in this grid (首接负责: the grid manager by default)."""
    settings = config.category(category) or config.category("其他")
    name = settings.name if settings else "其他"
    party = settings.party if settings else "网格员"
    assignee = ""
    if settings is not None:
        assignee = settings.per_grid.get(grid.id, "") if grid else ""
        assignee = assignee or settings.assignee
    if not assignee or party == "网格员":
        assignee = assignee if party != "网格员" else ""
        assignee = assignee or (grid.manager if grid else "")
    return Routing(name, party, assignee)


# --- deadlines -----------------------------------------------------------------


def in_office(config: Config, moment: datetime) -> bool:
    local = moment.astimezone(config.tz)
    c = config.community
    return (WEEKDAY_KEYS[local.weekday()] in c.office_days
            and c.office_open <= local.time() < c.office_close)


def add_office_minutes(config: Config, start: datetime, minutes: int) -> datetime:
    """``start`` plus ``minutes`` counted only inside office hours."""
    tz = config.tz
    c = config.community
    local = start.astimezone(tz)
    remaining = timedelta(minutes=minutes)
    for _ in range(30):  # at most a month of closed days
        day_open = datetime.combine(local.date(), c.office_open, tz)
        day_close = datetime.combine(local.date(), c.office_close, tz)
        if WEEKDAY_KEYS[local.weekday()] in c.office_days and local < day_close:
            begin = max(local, day_open)
            available = day_close - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        local = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tz)
    return start + timedelta(minutes=minutes)


def deadlines(config: Config, created: datetime, urgent: bool) -> tuple[datetime, datetime]:
    """The response deadline and the same-day (矛盾不过夜) deadline."""
    d = config.deadlines
    if urgent:
        response = created + timedelta(minutes=d.urgent_response_minutes)
    else:
        response = add_office_minutes(config, created, d.response_minutes)
    local = created.astimezone(config.tz)
    same_day = datetime.combine(local.date(), d.same_day, config.tz)
    if local >= same_day - timedelta(hours=1):
        same_day += timedelta(days=1)
    resolve = max(same_day, response)
    return response, resolve


# --- reading -------------------------------------------------------------------


async def get_petition(session: AsyncSession, number: int) -> Petition:
    petition = await session.get(Petition, number)
    if petition is None:
        raise PetitionNotFoundError(f"没有找到 #{number} 号诉求，请核对编号。")
    return petition


def label(petition: Petition) -> str:
    """``#12（物业·维修）``"""
    return f"#{petition.id}（{petition.party}·{petition.category}）"


def summary_line(petition: Petition, config: Config, *, details: bool = True) -> str:
    """One line of a list: number, state, and the matter unless it is private."""
    local = petition.created_at.astimezone(config.tz)
    what = "（内容仅工作人员可见）" if petition.private and not details else _short(petition.text)
    flag = "【紧急】" if petition.urgent else ""
    return (f"#{petition.id} {flag}{STATUS_NAMES.get(petition.status, petition.status)}"
            f" {petition.category} {local:%m-%d %H:%M} {what}")


def _short(text: str, limit: int = 30) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- changing ------------------------------------------------------------------


def record(session: AsyncSession, petition: Petition, actor_id: str, action: str,
           to_status: str, now: datetime, note: str = "") -> PetitionEvent:
    """Write one history row and move the petition to ``to_status``."""
    event = PetitionEvent(petition_id=petition.id, at=now, actor_id=actor_id, action=action,
                          from_status=petition.status, to_status=to_status, note=note[:500])
    session.add(event)
    petition.status = to_status
    petition.updated_at = now
    return event


def transition(session: AsyncSession, petition: Petition, action: str, actor_id: str,
               now: datetime, note: str = "") -> None:
    """Apply a lifecycle action, or raise :class:`PetitionStateError` and change nothing."""
    allowed_from, to_status, name = TRANSITIONS[action]
    if petition.status not in allowed_from:
        current = STATUS_NAMES.get(petition.status, petition.status)
        raise PetitionStateError(f"#{petition.id} 目前是“{current}”，不能{name}。")
    record(session, petition, actor_id, action, to_status, now, note)
    if action == "accept" and petition.accepted_at is None:
        petition.accepted_at = now
    elif action == "resolve":
        petition.resolved_at = now
        if petition.accepted_at is None:
            petition.accepted_at = now
    elif action in ("close", "withdraw", "duplicate"):
        petition.closed_at = now
    elif action == "reopen":
        petition.reopen_count += 1
        petition.resolved_at = None
        petition.closed_at = None
    log.info("petition changed petition=%s action=%s actor=%s to=%s",
             petition.id, action, actor_id, to_status)


async def create_petition(ctx: MessageContext, *, category: str | None, urgent: bool,
                          location: str | None, keywords: list[str]) -> Petition:
    """Record a new petition from the message in ``ctx``, routed and with deadlines."""
    config = ctx.config
    now = ctx.now
    routing = route(config, category, ctx.grid)
    response_due, resolve_due = deadlines(config, now, urgent)
    petition = Petition(
        grid_id=ctx.grid.id if ctx.grid else None, room_id=ctx.message.room_id,
        reporter_id=ctx.sender_id, reporter_name=ctx.sender_name[:128],
        source_message_id=ctx.message.message_id, text=ctx.message.text,
        category=routing.category, party=routing.party, assignee_id=routing.assignee_id,
        location=(location or "")[:64], keywords=keywords[:20], urgent=urgent,
        private=routing.category == "纠纷", status="reported", created_at=now,
        updated_at=now, response_due=response_due, resolve_due=resolve_due, followers=[],
    )
    ctx.session.add(petition)
    await ctx.session.flush()
    ctx.session.add(PetitionEvent(petition_id=petition.id, at=now, actor_id=ctx.sender_id,
                                  action="report", from_status="", to_status="reported"))
    log.info("petition created petition=%s grid=%s category=%s party=%s urgent=%s",
             petition.id, petition.grid_id, petition.category, petition.party, urgent)
    return petition


async def open_petitions(session: AsyncSession, *, grid_id: str | None = None) -> list[Petition]:
    query = select(Petition).where(Petition.status.in_(OPEN_STATES)).order_by(Petition.id)
    if grid_id:
        query = query.where(Petition.grid_id == grid_id)
    return list(await session.scalars(query))


# --- the intent handler --------------------------------------------------------


def _staff_name(config: Config, member_id: str) -> str:
    return next((s.name for s in config.staff if s.id == member_id), "")


async def handle_report(ctx: MessageContext) -> None:
    """A resident raised a matter: record it, route it, acknowledge it."""
    verdict = ctx.classification
    assert verdict is not None
    petition = await create_petition(
        ctx, category=verdict.category, urgent=verdict.urgent, location=verdict.location,
        keywords=verdict.keywords,
    )
    ctx.outcome = f"petition:{petition.category}"

    who = {"物业": "物业", "居委会": "居委会", "网格员": "网格员"}[petition.party]
    if petition.urgent:
        ctx.reply(f"已登记紧急诉求 {label(petition)}，已通知工作人员马上处理。"
                  "如有危险请先离开现场，必要时拨打119/120。", mention_sender=True)
        notify = [i for i in dict.fromkeys([petition.assignee_id,
                                            ctx.grid.manager if ctx.grid else ""]) if i]
        names = tuple(_staff_name(ctx.config, i) or i for i in notify)
        ctx.tell(ctx.room_id, f"【紧急】{label(petition)} 请尽快响应（30分钟内）。",
                 mention_ids=tuple(notify), mention_names=names, source="urgent")
        ctx.tell(ctx.config.community.staff_room,
                 f"【紧急】{ctx.grid.name if ctx.grid else ''} {label(petition)}：{_short(petition.text, 60)}",
                 source="urgent")
    elif petition.private:
        ctx.reply(f"已登记诉求 {label(petition)}，工作人员会私下联系您，请留意消息。",
                  mention_sender=True)
    else:
        ctx.reply(f"已登记诉求 {label(petition)}，{who}会尽快处理，今天内给您答复。",
                  mention_sender=True)
