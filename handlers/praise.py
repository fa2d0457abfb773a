"""Praise (表扬): who thanked whom for what, and the points it earns.

Staff praise counts at once; praise of a resident waits for a staff ``/确认 N`` or a
neighbour's ``+1`` (``points.confirm_by``). Nobody earns points by praising
themselves, a giver credits a receiver once a day, and a giver has a daily cap.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import MessageContext
from models.tables import Member, PointEntry, Praise, StaffRole

log = logging.getLogger(__name__)


def local_day_bounds(config: Config, moment: datetime) -> tuple[datetime, datetime]:
    local = moment.astimezone(config.tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


async def resolve_target(ctx: MessageContext, written: str | None) -> tuple[str | None, str, bool]:
    """The praised person: a mention id first, else a known name, else the name as written."""
    bot_id = ctx.config.community.bot_id
    for member_id, name in zip(ctx.message.mention_ids, _padded(ctx.message.mention_names,
                                                                  len(ctx.message.mention_ids))):
        if member_id != bot_id:
            staff = await ctx.session.get(StaffRole, member_id)
            member = await ctx.session.get(Member, member_id)
            shown = name or (member.name if member else "") or (staff.name if staff else "")
            return member_id, shown, staff is not None
    if not written:
        return None, "", False
    staff_ids = [s.member_id for s in await ctx.session.scalars(
        select(StaffRole).where(StaffRole.name == written))]
    if len(staff_ids) == 1:
        return staff_ids[0], written, True
    members = list(await ctx.session.scalars(select(Member).where(Member.name == written)))
    if len(members) == 1:
        return members[0].id, written, False
    for staff in ctx.config.staff:  # "王师傅" for 王经理: the surname and a title
        if len(written) >= 2 and staff.name.startswith(written[0]) and written[1:] in (
                "师傅", "经理", "主任", "书记", "网格员", "姐", "哥"):
            return staff.id, staff.name, True
    return None, written, False


def _padded(names: tuple[str, ...], n: int) -> list[str]:
    return list(names) + [""] * (n - len(names))


async def credited_today(session: AsyncSession, config: Config, giver_id: str,
                         now: datetime) -> list[Praise]:
    start, end = local_day_bounds(config, now)
    return list(await session.scalars(
        select(Praise).where(Praise.giver_id == giver_id, Praise.created_at >= start,
                             Praise.created_at < end, Praise.status.in_(("pending", "confirmed")))
    ))


def award(session: AsyncSession, praise: Praise, points: int, by: str, now: datetime) -> None:
    """Confirm a praise and write its ledger line."""
    praise.status = "confirmed"
    praise.confirmed_by = by
    praise.confirmed_at = now
    if praise.target_id:
        session.add(PointEntry(member_id=praise.target_id, grid_id=praise.grid_id, delta=points,
                               kind="praise", ref=f"praise:{praise.id}",
                               note=praise.reason[:200], created_at=now, created_by=by))


async def handle_praise(ctx: MessageContext) -> None:
    """A resident thanked someone: record it and thank them back."""
    verdict = ctx.classification
    assert verdict is not None
    config = ctx.config
    written = verdict.targets[0] if verdict.targets else None
    target_id, target_name, is_staff = await resolve_target(ctx, written)
    if target_id is None and not target_name:
        ctx.outcome = "praise:no-target"
        if ctx.addressed:
            ctx.reply("谢谢您的好意！想表扬谁，可以写上名字，比如“表扬5号楼张阿姨帮忙扫雪”。",
                      mention_sender=True)
        return

    status, note = "pending", ""
    if target_id == ctx.sender_id:
        status, note = "ignored", "self"
    today = await credited_today(ctx.session, config, ctx.sender_id, ctx.now)
    if status == "pending" and target_id and any(p.target_id == target_id for p in today):
        status, note = "ignored", "same-target-today"
    if status == "pending" and any(p.reason == (verdict.reason or ctx.norm.text) for p in today):
        status, note = "ignored", "repeat"
    if status == "pending" and len(today) >= config.points.daily_cap_per_giver:
        status, note = "ignored", "daily-cap"

    praise = Praise(grid_id=ctx.grid.id if ctx.grid else None, room_id=ctx.message.room_id,
                    giver_id=ctx.sender_id, target_id=target_id, target_name=target_name[:128],
                    target_is_staff=is_staff, reason=(verdict.reason or ctx.norm.text)[:300],
                    source_message_id=ctx.message.message_id, status=status, note=note,
                    created_at=ctx.now)
    ctx.session.add(praise)
    await ctx.session.flush()
    if status == "pending" and is_staff:
        award(ctx.session, praise, config.points.praise_staff, "auto", ctx.now)
    ctx.outcome = f"praise:{praise.status}"
    log.info("praise recorded praise=%s target=%s status=%s note=%s", praise.id, target_id,
             praise.status, note)

    if note == "self":
        ctx.reply("自己夸自己不算积分哦，多夸夸身边的好邻居吧！", mention_sender=True)
    elif status == "ignored":
        ctx.reply(f"谢谢您对{target_name}的肯定！", mention_sender=True)
    elif praise.status == "confirmed":
        ctx.reply(f"收到您对{target_name}的表扬（#{praise.id}），已记入光荣榜，谢谢您！",
                  mention_sender=True)
    else:
        ctx.reply(f"收到您对{target_name}的表扬（#{praise.id}），确认后记入光荣榜，谢谢您！",
                  mention_sender=True)


async def points_of(session: AsyncSession, member_id: str) -> int:
    return int(await session.scalar(
        select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
            PointEntry.member_id == member_id)) or 0)
