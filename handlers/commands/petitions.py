"""Petition commands for staff (受理, 办结 …) and residents (我的, 查询, 撤回)."""

from __future__ import annotations

from sqlalchemy import select

from bot.context import MessageContext
from handlers.commands import STAFF, CommandError, CommandRouter, petition_number
from handlers.petitions import (
    OPEN_STATES,
    STATUS_NAMES,
    PetitionError,
    get_petition,
    label,
    summary_line,
    transition,
)
from models.tables import AuditEntry, Petition

router = CommandRouter()


async def _staff_petition(ctx: MessageContext, args: list[str], usage: str) -> Petition:
    number = petition_number(args, usage)
    try:
        petition = await get_petition(ctx.session, number)
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    assert ctx.staff is not None
    if not ctx.staff.covers(petition.grid_id):
        raise CommandError(f"#{number} 不在您负责的网格内。")
    return petition


async def _change(ctx: MessageContext, args: list[str], action: str, usage: str,
                  done: str) -> None:
    petition = await _staff_petition(ctx, args, usage)
    note = " ".join(args[1:])
    try:
        transition(ctx.session, petition, action, ctx.sender_id, ctx.now, note)
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    ctx.session.add(AuditEntry(at=ctx.now, actor_id=ctx.sender_id, action=f"petition:{action}",
                               target=f"#{petition.id}", detail=note[:500]))
    ctx.reply(f"{label(petition)} {done}。" + (f"说明：{note}" if note else ""))


@router.command("受理", "accept", "slcl", roles=STAFF, usage="/受理 12")
async def accept(ctx: MessageContext, args: list[str]) -> None:
    """受理一条诉求"""
    await _change(ctx, args, "accept", "/受理 12", "已受理")


@router.command("进展", "progress", roles=STAFF, usage="/进展 12 说明")
async def progress(ctx: MessageContext, args: list[str]) -> None:
    """记录处理进展"""
    if len(args) < 2:
        raise CommandError("请写上进展说明，例如：/进展 12 已联系维修师傅，明早上门")
    await _change(ctx, args, "progress", "/进展 12 说明", "已记录进展")


@router.command("办结", "resolve", "done", roles=STAFF, usage="/办结 12 说明")
async def resolve(ctx: MessageContext, args: list[str]) -> None:
    """办结一条诉求（之后会回访反映人）"""
    await _change(ctx, args, "resolve", "/办结 12 说明", "已办结")


@router.command("列表", "list", "ls", roles=STAFF, usage="/列表 [状态]")
async def list_open(ctx: MessageContext, args: list[str]) -> None:
    """列出未办结的诉求"""
    assert ctx.staff is not None
    query = select(Petition).where(Petition.status.in_(OPEN_STATES)).order_by(Petition.id)
    rows = [p for p in await ctx.session.scalars(query) if ctx.staff.covers(p.grid_id)]
    if not rows:
        ctx.reply("目前没有未办结的诉求。")
        return
    lines = [f"未办结诉求 {len(rows)} 条："]
    lines += [summary_line(p, ctx.config, details=True) for p in rows[:30]]
    if len(rows) > 30:
        lines.append(f"……还有 {len(rows) - 30} 条，请到管理后台查看。")
    ctx.reply("\n".join(lines))


@router.command("我的", "mine", bare=True, usage="/我的")
async def mine(ctx: MessageContext, args: list[str]) -> None:
    """查看自己反映过的诉求"""
    query = (select(Petition).where(Petition.reporter_id == ctx.sender_id)
             .order_by(Petition.id.desc()).limit(10))
    rows = list(await ctx.session.scalars(query))
    if not rows:
        ctx.reply("您还没有反映过诉求。", mention_sender=True)
        return
    lines = ["您反映的诉求："] + [summary_line(p, ctx.config) for p in rows]
    ctx.reply("\n".join(lines), mention_sender=True)


@router.command("查询", "status", bare=True, usage="/查询 12")
async def query_status(ctx: MessageContext, args: list[str]) -> None:
    """查询一条诉求的办理情况"""
    number = petition_number(args, "/查询 12")
    petition = await ctx.session.get(Petition, number)
    own = petition is not None and (petition.reporter_id == ctx.sender_id
                                    or ctx.sender_id in (petition.followers or []))
    if petition is None or not (own or ctx.staff is not None):
        raise CommandError(f"没有找到您反映的 #{number} 号诉求。")
    ctx.reply(f"{label(petition)} 目前：{STATUS_NAMES.get(petition.status, petition.status)}。",
              mention_sender=True)


@router.command("撤回", "withdraw", bare=True, usage="撤回 12")
async def withdraw(ctx: MessageContext, args: list[str]) -> None:
    """撤回自己反映的诉求"""
    number = petition_number(args, "撤回 12")
    petition = await ctx.session.get(Petition, number)
    if petition is None or petition.reporter_id != ctx.sender_id:
        raise CommandError(f"只能撤回您自己反映的诉求，没有找到您的 #{number}。")
    try:
        transition(ctx.session, petition, "withdraw", ctx.sender_id, ctx.now, "本人撤回")
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    ctx.reply(f"好的，#{petition.id} 已撤回。", mention_sender=True)
