"""Staff notices (通知) to one, several or all grid groups, and the 收到 roll-call.

``/通知 [网格…|全部] [时间] 内容``: the grids may be named by id (grid-01) or name
(幸福小区1网格) or number (1网格); no grid means this group (or, in a private chat,
every grid the sender covers). A time makes it a scheduled notice; without one it
goes out now. A notice whose text asks people to reply 收到 records who did, and
after ``reminders.rollcall_minutes`` @-mentions, once, those who did not.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import GridConfig
from bot.context import MessageContext, Services
from handlers.commands import STAFF, CommandError, CommandRouter, record_number
from handlers.timeparse import describe_when, parse_time
from models.tables import Member, Reminder, RollcallAnswer, StaffRole

log = logging.getLogger(__name__)
router = CommandRouter()

ASKS_ROLLCALL = re.compile(r"(回复|回)\s*[“\"']?收到")
ANSWER = re.compile(r"^(收到|已收到|收到了|收到收到|好的收到|收到谢谢|收到，谢谢)[!！。.~～]*$")


def _grid_by_word(ctx: MessageContext, word: str) -> list[GridConfig] | None:
    grids = ctx.config.grids
    if word in ("全部", "所有", "全体", "all"):
        return list(grids)
    for grid in grids:
        if word in (grid.id, grid.name, grid.room_topic):
            return [grid]
    number = re.fullmatch(r"(\d+)(号)?网格", word)
    if number:
        found = [g for g in grids if re.search(rf"(^|\D){number.group(1)}网格", g.name)]
        return found or None
    return None


@router.command("通知", "notice", roles=STAFF, usage="/通知 [网格…|全部] [时间] 内容")
async def notice(ctx: MessageContext, args: list[str]) -> None:
    """给一个、几个或全部网格群发通知（可定时）"""
    assert ctx.staff is not None
    targets: list[GridConfig] = []
    rest = list(args)
    while rest:
        found = _grid_by_word(ctx, rest[0])
        if found is None:
            break
        targets.extend(g for g in found if g not in targets)
        rest.pop(0)
    if not targets:
        targets = ([ctx.grid] if ctx.grid else
                   [g for g in ctx.config.grids if ctx.staff.covers(g.id)])
    targets = [g for g in targets if ctx.staff.covers(g.id)]
    text = " ".join(rest).strip()
    if not text:
        raise CommandError("请写上通知内容，例如：/通知 全部 明天上午9点 停水检修，请提前储水")
    if not targets:
        raise CommandError("没有您可以发通知的网格群。")

    parsed = parse_time(text, ctx.now, tz=ctx.config.tz, dayparts=ctx.config.reminders.dayparts)
    if parsed.status in ("past", "invalid", "ambiguous"):
        raise CommandError(parsed.question or "通知时间没看明白，请换个说法。")
    scheduled = parsed.status == "ok" and parsed.when is not None
    due = parsed.when if scheduled else ctx.now
    content = (parsed.rest if scheduled else text).strip(" ，,:：") or text
    rollcall = bool(ASKS_ROLLCALL.search(content))
    reminder = Reminder(
        kind="notice", creator_id=ctx.sender_id,
        room_ids=[g.room_id or g.id for g in targets], content=content[:1000], due_at=due,
        recurrence=parsed.recurrence.to_json() if scheduled and parsed.recurrence else None,
        personal_time=False, status="pending", created_at=ctx.now,
        rollcall_at=(due + timedelta(minutes=ctx.config.reminders.rollcall_minutes)
                     if rollcall else None),
    )
    ctx.session.add(reminder)
    await ctx.session.flush()
    names = "、".join(g.name for g in targets)
    when = describe_when(due, ctx.config.tz) if scheduled else "马上"
    if ctx.config.in_quiet_hours(due):  # group posts wait for the morning (fire_due_reminders)
        morning = describe_when(ctx.config.quiet_end_after(due), ctx.config.tz)
        when = f"夜间免打扰，{morning} "
    extra = "，并统计“收到”" if rollcall else ""
    ctx.reply(f"通知 #{reminder.id} 已安排：{when}发到 {names}{extra}。"
              f"取消请发“取消提醒 {reminder.id}”。")
    log.info("notice scheduled reminder=%s grids=%d rollcall=%s", reminder.id, len(targets),
             rollcall)


@router.command("同意提醒", "approve", roles=STAFF, usage="/同意提醒 7")
async def approve(ctx: MessageContext, args: list[str]) -> None:
    """同意居民申请的群提醒"""
    number = record_number(args[0]) if args else None
    if number is None:
        raise CommandError("请写上提醒编号，例如：/同意提醒 7")
    reminder = await ctx.session.get(Reminder, number)
    if reminder is None or reminder.status != "approval":
        raise CommandError("没有找到等待确认的这条提醒。")
    reminder.status = "pending"
    ctx.reply(f"好的，提醒 #{reminder.id} 已生效，{describe_when(reminder.due_at, ctx.config.tz)}"
              f" 发出：{reminder.content}")


async def record_answer(ctx: MessageContext) -> bool:
    """A 收到 in a group with an open roll-call is counted quietly."""
    if ctx.is_private or not ANSWER.match(ctx.norm.text.strip()):
        return False
    now = ctx.now
    open_calls = list(await ctx.session.scalars(
        select(Reminder).where(Reminder.kind == "notice", Reminder.rollcall_at.is_not(None),
                               Reminder.rollcall_done.is_(False), Reminder.sent_count > 0)
    ))
    calls = [r for r in open_calls if ctx.room_id in (r.room_ids or [])
             and r.last_sent_at is not None and r.last_sent_at <= now]
    if not calls:
        return False
    for call in calls:
        exists = await ctx.session.scalar(select(RollcallAnswer.id).where(
            RollcallAnswer.reminder_id == call.id, RollcallAnswer.member_id == ctx.sender_id))
        if exists is None:
            try:
                async with ctx.session.begin_nested():
                    ctx.session.add(RollcallAnswer(reminder_id=call.id,
                                                   member_id=ctx.sender_id, at=now))
            except IntegrityError:
                pass
    ctx.outcome = "rollcall"
    return True


async def chase_rollcalls(services: Services, session: AsyncSession | None = None) -> int:
    """After the roll-call time, @-mention once the members who did not answer 收到."""
    now = services.now()
    config = services.config
    chased = 0
    async with services.transaction(session) as session:
        due = list(await session.scalars(
            select(Reminder).where(Reminder.kind == "notice", Reminder.rollcall_done.is_(False),
                                   Reminder.rollcall_at.is_not(None),
                                   Reminder.rollcall_at <= now, Reminder.sent_count > 0)))
        staff_ids = set(await session.scalars(select(StaffRole.member_id)))
        for call in due:
            answered = set(await session.scalars(select(RollcallAnswer.member_id).where(
                RollcallAnswer.reminder_id == call.id)))
            for room_id in call.room_ids or []:
                grid = config.grid_for_room(room_id)
                if grid is None:
                    continue
                members = list(await session.scalars(
                    select(Member).where(Member.grid_id == grid.id).order_by(Member.id)))
                missing = [m for m in members if m.id not in answered
                           and m.id not in staff_ids and m.id != config.community.bot_id]
                if not missing:
                    continue
                services.outbox.add(
                    session, room_id,
                    f"【收到统计】还没有回复“收到”的邻居，请看一下通知 #{call.id}：{call.content[:60]}",
                    mention_ids=[m.id for m in missing[:50]],
                    mention_names=[m.name for m in missing[:50]],
                    source=f"rollcall:{call.id}")
                chased += 1
            call.rollcall_done = True
    if chased:
        services.outbox.wake()
    return chased
