"""矛盾不过夜: nudging before a deadline and escalating after it, each step once.

Every open petition watches one deadline (``Petition.due_at``). For it,
``Petition.escalation`` climbs, one step per tick at most and never twice:

    0 ─(nudge_before_minutes before)→ 1 nudged: the assignee is reminded
      ─(deadline passed)→ 2 the grid manager is told
      ─(deadlines.escalate_after_minutes later)→ 3 the 居委会 is told

A step missed while the bot was down is taken once at the next tick; a nudge that
would come after the deadline is skipped. Non-urgent escalations wait out the quiet
hours of the night (the morning list covers them); urgent ones go at any hour.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Services
from handlers.petitions import (
    OPEN_STATES,
    committee_ids,
    label,
    staff_name,
    status_name,
)
from models.tables import Petition, PetitionEvent

log = logging.getLogger(__name__)

NUDGED, MANAGER_TOLD, COMMITTEE_TOLD = 1, 2, 3
# How long the grid manager has, after the deadline, before the 居委会 hears of it.
KIND_NAMES = {"response": "响应", "resolve": "办结或报告进展"}


def _when(services: Services, moment: datetime) -> str:
    local = moment.astimezone(services.config.tz)
    today = services.now().astimezone(services.config.tz).date()
    return f"{local:%H:%M}" if local.date() == today else f"{local:%m-%d %H:%M}"


async def check_deadlines(services: Services, session: AsyncSession | None = None) -> int:
    """Take the next escalation step of every petition that needs one; returns steps."""
    now = services.now()
    config = services.config
    nudge = timedelta(minutes=config.deadlines.nudge_before_minutes)
    escalate = timedelta(minutes=config.deadlines.escalate_after_minutes)
    quiet = services.config.in_quiet_hours(now)
    steps = 0
    async with services.transaction(session) as session:
        due = list(
            await session.scalars(
                select(Petition)
                .where(
                    Petition.status.in_(OPEN_STATES),
                    Petition.due_at.isnot(None),
                    or_(
                        and_(
                            Petition.escalation < NUDGED, Petition.due_at <= now + nudge
                        ),
                        and_(
                            Petition.escalation < MANAGER_TOLD, Petition.due_at <= now
                        ),
                        and_(
                            Petition.escalation < COMMITTEE_TOLD,
                            Petition.due_at <= now - escalate,
                        ),
                    ),
                )
                .order_by(Petition.due_at, Petition.id)
            )
        )
        for petition in due:
            if quiet and not petition.urgent:
                continue
            if _step(services, session, petition, now):
                steps += 1
    if steps:
        services.outbox.wake()
    return steps


def _step(
    services: Services, session: AsyncSession, petition: Petition, now: datetime
) -> bool:
    assert petition.due_at is not None
    config = services.config
    room = config.community.staff_room
    grid = config.grid(petition.grid_id) if petition.grid_id else None
    manager = grid.manager if grid else ""
    what = KIND_NAMES.get(petition.due_kind, "办理")
    owner = petition.assignee_id or manager
    owner_name = staff_name(config, owner) or "未分派"
    where = f"{grid.name} " if grid else ""

    if petition.due_at > now:
        if petition.escalation >= NUDGED:
            return False
        petition.escalation = NUDGED
        text = (
            f"【提醒】{where}{label(petition)}（{status_name(petition)}）"
            f"请在 {_when(services, petition.due_at)} 前{what}。"
        )
        targets = [owner]
    elif petition.escalation < MANAGER_TOLD:
        petition.escalation = MANAGER_TOLD
        text = (
            f"【超时】{where}{label(petition)} 应在 {_when(services, petition.due_at)} "
            f"前{what}，已超时。负责人：{owner_name}。请网格员督办。"
        )
        targets = [manager, owner]
    elif now >= petition.due_at + timedelta(minutes=config.deadlines.escalate_after_minutes):
        petition.escalation = COMMITTEE_TOLD
        text = (
            f"【督办】{where}{label(petition)} 超时已超过"
            f"{_duration(config.deadlines.escalate_after_minutes)}仍未{what}，"
            f"负责人：{owner_name}。请居委会协调。"
        )
        targets = [*committee_ids(config), manager]
    else:
        return False

    ids = [i for i in dict.fromkeys(targets) if i]
    services.outbox.add(
        session,
        room,
        text,
        mention_ids=ids,
        mention_names=[staff_name(config, i) or i for i in ids],
        source=f"deadline:{petition.id}:{petition.escalation}",
    )
    if petition.escalation > NUDGED:
        session.add(
            PetitionEvent(
                petition_id=petition.id,
                at=now,
                actor_id=config.community.bot_id,
                action="escalate",
                from_status=petition.status,
                to_status=petition.status,
                note=f"超时督办第{petition.escalation - 1}级",
            )
        )
    log.info(
        "petition deadline step petition=%s kind=%s level=%d",
        petition.id,
        petition.due_kind,
        petition.escalation,
    )
    return True


def _duration(minutes: int) -> str:
    """``60`` → ``1小时``, ``90`` → ``90分钟``."""
    return f"{minutes // 60}小时" if minutes % 60 == 0 else f"{minutes}分钟"
