"""Reminders (提醒) asked for in ordinary Chinese.

"提醒我" reminds the sender with an @; "提醒大家" is for staff (a resident's group
reminder waits for staff approval); staff can remind a mentioned member. The
confirmation always echoes the absolute date, weekday and time and how to cancel.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import select

from bot.context import MessageContext
from handlers.commands import CommandError, CommandRouter, record_number
from handlers.timeparse import Recurrence, describe_when, parse_time
from models.tables import Reminder

log = logging.getLogger(__name__)

router = CommandRouter()

_EVERYONE = re.compile(r"提醒(大家|全体|各位|所有人|全体居民|居民们)")
_FILLER = re.compile(r"^(请|麻烦|帮我|你|记得|到时候|到点|一下)+|(提醒我|提醒大家|提醒全体|提醒各位|"
                     r"提醒所有人|叫我|提醒一下|提醒)+|[，,。.!！~～]+$")


def _content(rest: str) -> str:
    text = _FILLER.sub("", rest.strip()).strip(" ，,。:：")
    text = re.sub(r"^(要|去|该)?", lambda m: m.group(0), text)
    return text[:200] or "您设置的事项"


async def handle_request(ctx: MessageContext) -> None:
    """Someone asked to be reminded: parse the time, store the reminder, confirm it."""
    config = ctx.config
    parsed = parse_time(ctx.norm.text, ctx.now, tz=config.tz, dayparts=config.reminders.dayparts)
    if parsed.status != "ok" or parsed.when is None:
        ctx.outcome = f"reminder:{parsed.status}"
        if parsed.status == "none":
            if ctx.addressed:
                ctx.reply("请告诉我具体时间，比如“明天下午三点提醒我去体检”。", mention_sender=True)
            return
        ctx.reply(parsed.question or "这个时间我没看明白，请换个说法。", mention_sender=True)
        return

    everyone = bool(_EVERYONE.search(ctx.norm.text))
    targets: list[str] = []
    names: list[str] = []
    bot_id = config.community.bot_id
    others = [(i, n) for i, n in zip(ctx.message.mention_ids,
                                     list(ctx.message.mention_names)
                                     + [""] * len(ctx.message.mention_ids), strict=False)
              if i != bot_id]
    status = "pending"
    if everyone:
        if ctx.staff is None:
            status = "approval"
    elif others and ctx.staff is not None:
        targets, names = [i for i, _ in others], [n for _, n in others]
    else:
        targets, names = [ctx.sender_id], [ctx.sender_name]

    reminder = Reminder(
        kind="reminder", creator_id=ctx.sender_id, room_ids=[ctx.room_id], target_ids=targets,
        target_names=names, content=_content(parsed.rest), due_at=parsed.when,
        recurrence=parsed.recurrence.to_json() if parsed.recurrence else None,
        personal_time=not everyone, status=status, created_at=ctx.now,
        account=config.account_for_room(ctx.room_id),
    )
    ctx.session.add(reminder)
    await ctx.session.flush()
    ctx.outcome = "reminder:set" if status == "pending" else "reminder:approval"
    log.info("reminder stored reminder=%s due=%s recurring=%s status=%s", reminder.id,
             reminder.due_at.isoformat(), bool(parsed.recurrence), status)

    when = (parsed.recurrence.describe() + "（下次 " + describe_when(parsed.when, config.tz) + "）"
            if parsed.recurrence else describe_when(parsed.when, config.tz))
    whom = "大家" if everyone else ("你" if targets == [ctx.sender_id] else "、".join(names))
    if status == "approval":
        ctx.reply(f"收到，{when} 提醒{whom}：{reminder.content}。群提醒需要工作人员确认后生效"
                  f"（编号 {reminder.id}）。", mention_sender=True)
        ctx.tell(config.community.staff_room,
                 f"居民申请群提醒 #{reminder.id}：{when} {reminder.content}。"
                 f"同意请发“/同意提醒 {reminder.id}”。", source="approval")
        return
    held = ""
    if everyone and config.in_quiet_hours(parsed.when):
        held = (f"（夜间免打扰，将在 {describe_when(config.quiet_end_after(parsed.when), config.tz)}"
                " 发到群里）")
    ctx.reply(f"好的，{when} 提醒{whom}：{reminder.content}。{held}"
              f"回复“取消提醒 {reminder.id}”可取消。", mention_sender=True)


@router.command("取消提醒", "cancel", bare=True, usage="取消提醒 7")
async def cancel(ctx: MessageContext, args: list[str]) -> None:
    """取消一条提醒"""
    number = record_number(args[0]) if args else None
    if number is None:
        raise CommandError("请写上提醒编号，例如：取消提醒 7")
    reminder = await ctx.session.get(Reminder, number)
    if reminder is None or reminder.status not in ("pending", "approval"):
        raise CommandError("没有找到这条待发送的提醒。")
    if reminder.creator_id != ctx.sender_id and ctx.staff is None:
        raise CommandError("只能取消自己设置的提醒。")
    reminder.status = "cancelled"
    ctx.reply(f"好的，提醒 {reminder.id} 已取消。", mention_sender=True)


@router.command("提醒列表", "reminders", bare=True, usage="/提醒列表")
async def list_reminders(ctx: MessageContext, args: list[str]) -> None:
    """查看自己设置的提醒（工作人员：本群的提醒）"""
    query = select(Reminder).where(Reminder.status.in_(("pending", "approval")))
    if ctx.staff is None:
        query = query.where(Reminder.creator_id == ctx.sender_id)
    rows = [r for r in await ctx.session.scalars(query.order_by(Reminder.due_at))
            if ctx.staff is None or ctx.room_id in (r.room_ids or []) or ctx.is_private]
    if not rows:
        ctx.reply("目前没有待发送的提醒。", mention_sender=True)
        return
    lines = ["待发送的提醒："]
    for r in rows[:20]:
        when = (Recurrence.from_json(r.recurrence).describe() if r.recurrence
                else describe_when(r.due_at, ctx.config.tz))
        lines.append(f"{r.id}. {when} {r.content}")
    ctx.reply("\n".join(lines), mention_sender=True)
