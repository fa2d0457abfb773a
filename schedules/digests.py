"""The nightly digest (what is still open, and why) and the morning list (what stayed
overnight), each posted once per day to the staff group.

A run is keyed in ``job_runs`` (``digest:2026-12-04``, ``morning:2026-12-05``) and
written in the same transaction as its message, so a restart neither repeats nor
drops it. At start-up :func:`catch_up` posts the latest missed one once, marked
（补发）; after a three-day outage that is one digest, not three (field report B08).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Services
from bot.privacy import mask_personal
from handlers.petitions import (
    AWAITING_RESPONSE,
    OPEN_STATES,
    label,
    short,
    staff_name,
    status_name,
)
from models.tables import JobRun, Petition, PetitionEvent

log = logging.getLogger(__name__)

LIST_LIMIT = 40
MORNING_CATCH_UP_UNTIL = time(12, 0)  # a morning list posted after noon helps nobody


def _local_date(services: Services, moment: datetime) -> date:
    return moment.astimezone(services.config.tz).date()


async def _claim(session: AsyncSession, key: str, now: datetime, note: str) -> bool:
    """Record the run of ``key``; False when it already ran."""
    if await session.get(JobRun, key) is not None:
        return False
    session.add(JobRun(key=key, ran_at=now, note=note))
    await session.flush()
    return True


async def _last_notes(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    latest = (
        select(func.max(PetitionEvent.id))
        .where(PetitionEvent.petition_id.in_(ids), PetitionEvent.note != "")
        .group_by(PetitionEvent.petition_id)
    )
    rows = await session.execute(
        select(PetitionEvent.petition_id, PetitionEvent.note).where(
            PetitionEvent.id.in_(latest)
        )
    )
    return {petition_id: note for petition_id, note in rows}


def _why(services: Services, petition: Petition, note: str, now: datetime) -> str:
    """Why a petition is still open, in a few words."""
    config = services.config
    owner = staff_name(config, petition.assignee_id) or "未分派"
    parts = [status_name(petition), f"负责人{owner}"]
    if petition.status in AWAITING_RESPONSE:
        parts.append("未响应")
    if petition.due_at is not None and petition.due_at <= now:
        hours = (now - petition.due_at).total_seconds() / 3600
        parts.append(f"已超时{hours:.0f}小时" if hours >= 1 else "已超时")
    if petition.reopen_count:
        parts.append(f"重办{petition.reopen_count}次")
    if note:
        parts.append(f"最近说明：{short(note, 24)}")
    return "，".join(parts)


async def _open_lines(
    services: Services, session: AsyncSession, petitions: list[Petition], now: datetime
) -> list[str]:
    notes = await _last_notes(session, [p.id for p in petitions])
    config = services.config
    lines = []
    for petition in petitions[:LIST_LIMIT]:
        grid = config.grid(petition.grid_id) if petition.grid_id else None
        flag = "【紧急】" if petition.urgent else ""
        what = "（纠纷，详情见系统）" if petition.private else short(petition.text, 20)
        lines.append(
            f"{flag}{label(petition)} {grid.name if grid else '未知网格'}：{what}"
            f"——{_why(services, petition, notes.get(petition.id, ''), now)}"
        )
    if len(petitions) > LIST_LIMIT:
        lines.append(f"……还有 {len(petitions) - LIST_LIMIT} 条，请到管理后台查看。")
    return lines


async def nightly_digest(
    services: Services, *, late: bool = False, day: date | None = None
) -> bool:
    """Post tonight's list of open petitions, once; returns whether it was posted."""
    now = services.now()
    day = day or _local_date(services, now)
    async with services.db.session() as session:
        if not await _claim(
            session, f"digest:{day.isoformat()}", now, "late" if late else ""
        ):
            return False
        petitions = list(
            await session.scalars(
                select(Petition)
                .where(Petition.status.in_(OPEN_STATES))
                .order_by(Petition.due_at.is_(None), Petition.due_at, Petition.id)
            )
        )
        mark = "（补发）" if late else ""
        if petitions:
            overdue = sum(
                1 for p in petitions if p.due_at is not None and p.due_at <= now
            )
            head = (
                f"【今日诉求小结】{day:%m月%d日}{mark} 尚未办结 {len(petitions)} 件，"
                f"其中超时 {overdue} 件："
            )
            lines = [head, *await _open_lines(services, session, petitions, now)]
        else:
            lines = [
                f"【今日诉求小结】{day:%m月%d日}{mark} 今天的诉求都已办结，矛盾不过夜。"
            ]
        services.outbox.add(
            session,
            services.config.community.staff_room,
            mask_personal("\n".join(lines)),
            source=f"digest:{day}",
        )
    services.outbox.wake()
    log.info("digest posted day=%s open=%d late=%s", day, len(petitions), late)
    return True


async def morning_list(
    services: Services, *, late: bool = False, day: date | None = None
) -> bool:
    """Post the petitions that stayed open overnight, once; returns whether posted."""
    now = services.now()
    config = services.config
    day = day or _local_date(services, now)
    midnight = datetime.combine(day, time(0, 0), config.tz)
    async with services.db.session() as session:
        if not await _claim(
            session, f"morning:{day.isoformat()}", now, "late" if late else ""
        ):
            return False
        petitions = list(
            await session.scalars(
                select(Petition)
                .where(Petition.status.in_(OPEN_STATES), Petition.created_at < midnight)
                .order_by(Petition.created_at, Petition.id)
            )
        )
        mark = "（补发）" if late else ""
        if petitions:
            lines = [
                f"【早间待办】{day:%m月%d日}{mark} 过夜未办结的诉求 {len(petitions)} 件，"
                "请今天优先处理：",
                *await _open_lines(services, session, petitions, now),
            ]
        else:
            lines = [f"【早间待办】{day:%m月%d日}{mark} 没有过夜的诉求。"]
        services.outbox.add(
            session,
            config.community.staff_room,
            mask_personal("\n".join(lines)),
            source=f"morning:{day}",
        )
    services.outbox.wake()
    log.info("morning list posted day=%s open=%d late=%s", day, len(petitions), late)
    return True


async def _ever_ran(services: Services, name: str) -> bool:
    async with services.db.session() as session:
        found = await session.scalar(
            select(JobRun.key).where(JobRun.key.like(f"{name}:%")).limit(1)
        )
    return found is not None


def _last_slot(services: Services, at: time, now: datetime) -> datetime:
    """The latest scheduled moment at or before ``now`` for a daily job at ``at``."""
    tz = services.config.tz
    local = now.astimezone(tz)
    slot = datetime.combine(local.date(), at, tz)
    return slot if slot <= local else slot - timedelta(days=1)


async def catch_up(services: Services) -> list[str]:
    """At start-up: post the latest missed digest and morning list once, late."""
    now = services.now()
    schedules = services.config.schedules
    posted = []
    jobs: list[tuple[str, time, Callable[..., Awaitable[bool]]]] = [
        ("digest", schedules.digest, nightly_digest),
        ("morning", schedules.morning, morning_list),
    ]
    for name, at, job in jobs:
        if not await _ever_ran(services, name):
            continue  # a first start has missed nothing
        slot = _last_slot(services, at, now)
        if name == "morning" and (
            slot.date() != _local_date(services, now)
            or now.astimezone(services.config.tz).time() >= MORNING_CATCH_UP_UNTIL
        ):
            continue
        try:
            if await job(services, late=True, day=slot.date()):
                posted.append(f"{name}:{slot.date()}")
        except IntegrityError:  # another instance claimed it at the same moment
            log.info("catch-up already done name=%s day=%s", name, slot.date())
    return posted
