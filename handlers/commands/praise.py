"""Praise and points commands: 确认, 关联, 待确认, 积分, 志愿, 加分, 撤销, 采纳, 隐患, 不上榜, 上榜."""

from __future__ import annotations

import logging

from sqlalchemy import select

from bot.context import MessageContext
from handlers.commands import STAFF, CommandError, CommandRouter, petition_number
from handlers.points import (
    KIND_NAMES,
    MAX_AWARD,
    PointsError,
    add_entry,
    already_paid,
    format_hours,
    parse_hours,
    recent_entries,
    reverse,
    standing,
)
from handlers.praise import PraiseError, confirm, get_praise, link, resolve_name
from models.tables import AuditEntry, Member, Petition, PointEntry, Praise, StaffRole

log = logging.getLogger(__name__)

router = CommandRouter()


def _number(args: list[str], usage: str, what: str) -> int:
    if not args:
        raise CommandError(f"请写上{what}编号，例如：{usage}")
    raw = args[0].lstrip("#")
    if not raw.isdecimal() or len(raw) > 9:
        raise CommandError(f"“{args[0][:10]}”不是{what}编号，例如：{usage}")
    return int(raw)


def _audit(ctx: MessageContext, action: str, target: str, detail: str = "") -> None:
    ctx.session.add(
        AuditEntry(
            at=ctx.now,
            actor_id=ctx.sender_id,
            action=action,
            target=target[:128],
            detail=detail[:500],
        )
    )


def _check_grid(ctx: MessageContext, grid_id: str | None) -> None:
    assert ctx.staff is not None
    if grid_id and not ctx.staff.covers(grid_id):
        raise CommandError("这不在您负责的网格内。")


async def _person(
    ctx: MessageContext, args: list[str], usage: str
) -> tuple[str, str, list[str]]:
    """The member a staff command is about: an @-mention, else a known name in ``args``."""
    bot_id = ctx.config.community.bot_id
    names = list(ctx.message.mention_names) + [""] * len(ctx.message.mention_ids)
    for member_id, name in zip(ctx.message.mention_ids, names, strict=False):
        if member_id != bot_id:
            member = await ctx.session.get(Member, member_id)
            return member_id, name or (member.name if member else "") or member_id, args
    if args:
        grid_id = ctx.grid.id if ctx.grid else None
        target = await resolve_name(ctx.session, ctx.config, args[0], grid_id)
        if target.member_id:
            return target.member_id, target.name, args[1:]
    raise CommandError(f"请 @ 一下是哪位，例如：{usage}")


async def _member_grid(ctx: MessageContext, member_id: str) -> str | None:
    member = await ctx.session.get(Member, member_id)
    if member is not None and member.grid_id:
        return member.grid_id
    return ctx.grid.id if ctx.grid else None


# --- praise ---------------------------------------------------------------------------


@router.command("确认", roles=STAFF, usage="/确认 12")
async def confirm_praise(ctx: MessageContext, args: list[str]) -> None:
    """确认一条居民之间的表扬，记入积分"""
    if ctx.config.points.confirm_by == "plus_one":
        raise CommandError("本社区的表扬由邻居回复“+1”确认，无需工作人员确认。")
    number = _number(args, "/确认 12", "表扬")
    try:
        praise = await get_praise(ctx.session, number)
        _check_grid(ctx, praise.grid_id)
        await confirm(ctx, praise, ctx.sender_id)
    except PraiseError as exc:
        raise CommandError(str(exc)) from None
    _audit(ctx, "praise:confirm", f"#{number}")
    if praise.target_id:
        ctx.reply(f"表扬 #{number} 已确认，{praise.target_name}获得积分。")
    else:
        ctx.reply(
            f"表扬 #{number} 已确认。还不知道“{praise.target_name}”是哪位，"
            f"请用“/关联 {number} @某人”指明，积分随后记入。"
        )


@router.command("关联", roles=STAFF, usage="/关联 12 @某人")
async def link_praise(ctx: MessageContext, args: list[str]) -> None:
    """指明一条表扬说的是哪位居民"""
    number = _number(args, "/关联 12 @某人", "表扬")
    member_id, name, _ = await _person(ctx, args[1:], "/关联 12 @某人")
    try:
        praise = await get_praise(ctx.session, number)
        _check_grid(ctx, praise.grid_id)
        await link(ctx, praise, member_id, name)
    except PraiseError as exc:
        raise CommandError(str(exc)) from None
    _audit(ctx, "praise:link", f"#{number}", member_id)
    if praise.status == "ignored":
        ctx.reply(f"表扬 #{number} 是本人表扬自己，不计积分。")
    elif praise.status == "confirmed":
        ctx.reply(f"表扬 #{number} 已关联到{name}，积分已记入。")
    else:
        ctx.reply(f"表扬 #{number} 已关联到{name}，确认后记入积分。")


# --- points ---------------------------------------------------------------------------


@router.command("积分", "我的积分", bare=True, usage="/积分")
async def show_points(ctx: MessageContext, args: list[str]) -> None:
    """查看自己的积分和排名（工作人员可 /积分 @某人）"""
    mentioned = [i for i in ctx.message.mention_ids if i != ctx.config.community.bot_id]
    if mentioned or args:
        if ctx.staff is None:
            raise CommandError("只能查看自己的积分哦，发送“/积分”即可。")
        member_id, name, _ = await _person(ctx, args, "/积分 @某人")
        await _show_for_staff(ctx, member_id, name)
        return
    grid_id = await _member_grid(ctx, ctx.sender_id)
    mine = await standing(ctx.session, ctx.sender_id, grid_id)
    if mine.total == 0:
        ctx.reply(
            "您目前还没有积分。帮邻居一个忙、参加志愿服务，都能获得积分哦！",
            mention_sender=True,
        )
        return
    where = "本网格" if grid_id else "社区"
    ctx.reply(
        f"您共有 {mine.total} 分，在{where}排第 {mine.rank} 名（共 {mine.ranked} 人"
        "有积分）。谢谢您为邻里出力！",
        mention_sender=True,
    )


async def _show_for_staff(ctx: MessageContext, member_id: str, name: str) -> None:
    grid_id = await _member_grid(ctx, member_id)
    mine = await standing(ctx.session, member_id, grid_id)
    lines = [f"{name}：共 {mine.total} 分，排第 {mine.rank} 名。最近的记录："]
    for entry in await recent_entries(ctx.session, member_id):
        sign = f"+{entry.delta}" if entry.delta > 0 else str(entry.delta)
        local = entry.created_at.astimezone(ctx.config.tz)
        lines.append(
            f"[{entry.id}] {local:%m-%d} {sign} {KIND_NAMES.get(entry.kind, entry.kind)}"
            f" {entry.note[:30]}"
        )
    if len(lines) == 1:
        lines.append("（暂无）")
    lines.append("撤销某条记录：/撤销 编号")
    ctx.reply("\n".join(lines))


@router.command("志愿", "志愿服务", roles=STAFF, usage="/志愿 @某人 2小时 陪老人就医")
async def record_volunteering(ctx: MessageContext, args: list[str]) -> None:
    """记录志愿服务时长，按小时记积分"""
    usage = "/志愿 @某人 2小时 陪老人就医"
    member_id, name, rest = await _person(ctx, args, usage)
    hours = parse_hours(rest[0]) if rest else None
    if hours is None:
        raise CommandError(f"请写上时长（不超过24小时），例如：{usage}")
    what = " ".join(rest[1:]).strip()
    if not what:
        raise CommandError(f"请写上做了什么，例如：{usage}")
    grid_id = await _member_grid(ctx, member_id)
    _check_grid(ctx, grid_id)

    points = max(1, round(hours * ctx.config.points.volunteer_per_hour))
    entry = add_entry(
        ctx.session,
        member_id=member_id,
        grid_id=grid_id,
        delta=points,
        kind="volunteer",
        note=f"志愿服务{format_hours(hours)}小时：{what}",
        by=ctx.sender_id,
        now=ctx.now,
        ref=f"msg:{ctx.message.message_id}",
    )
    await ctx.session.flush()
    _audit(ctx, "points:volunteer", member_id, entry.note)
    ctx.reply(
        f"已记录{name}志愿服务 {format_hours(hours)} 小时，积 {points} 分"
        f"（记录 {entry.id}）。谢谢您的付出！"
    )


@router.command("加分", roles=STAFF, usage="/加分 @某人 5 原因")
async def award_points(ctx: MessageContext, args: list[str]) -> None:
    """给居民加分，写明原因"""
    usage = "/加分 @某人 5 原因"
    member_id, name, rest = await _person(ctx, args, usage)
    if not rest or not rest[0].lstrip("+").isdecimal():
        raise CommandError(f"请写上分数，例如：{usage}")
    points = int(rest[0].lstrip("+"))
    if not 1 <= points <= MAX_AWARD:
        raise CommandError(f"每次加分请在 1 到 {MAX_AWARD} 分之间。")
    why = " ".join(rest[1:]).strip()
    if not why:
        raise CommandError(f"请写上加分的原因，例如：{usage}")
    grid_id = await _member_grid(ctx, member_id)
    _check_grid(ctx, grid_id)

    entry = add_entry(
        ctx.session,
        member_id=member_id,
        grid_id=grid_id,
        delta=points,
        kind="award",
        note=why,
        by=ctx.sender_id,
        now=ctx.now,
        ref=f"msg:{ctx.message.message_id}",
    )
    await ctx.session.flush()
    _audit(ctx, "points:award", member_id, f"{points} {why}")
    ctx.reply(f"已给{name}加 {points} 分：{why}（记录 {entry.id}）。")


@router.command("撤销", roles=STAFF, usage="/撤销 记录编号")
async def revoke(ctx: MessageContext, args: list[str]) -> None:
    """撤销一条记错的积分记录（新增一条负分记录）"""
    number = _number(args, "/撤销 34", "积分记录")
    entry = await ctx.session.get(PointEntry, number)
    if entry is None:
        raise CommandError(f"没有编号为 {number} 的积分记录。")
    _check_grid(ctx, entry.grid_id)
    why = " ".join(args[1:]).strip()
    try:
        twin = await reverse(
            ctx.session,
            number,
            by=ctx.sender_id,
            now=ctx.now,
            reason=f"撤销记录{number}" + (f"：{why}" if why else ""),
        )
    except PointsError as exc:
        raise CommandError(str(exc)) from None
    if entry.ref.startswith("praise:"):
        praise = await ctx.session.get(Praise, int(entry.ref.split(":", 1)[1]))
        if praise is not None:
            praise.status, praise.note = "ignored", "revoked"
    _audit(ctx, "points:reverse", str(number), why)
    ctx.reply(f"已撤销记录 {number}（{entry.delta:+d} 分），新增记录 {twin.id}。")


async def _petition_award(
    ctx: MessageContext, args: list[str], kind: str, usage: str
) -> None:
    number = petition_number(args, usage)
    petition = await ctx.session.get(Petition, number)
    if petition is None:
        raise CommandError(f"没有编号为 #{number} 的诉求。")
    _check_grid(ctx, petition.grid_id)
    if kind == "hazard" and petition.status not in ("resolved", "closed"):
        raise CommandError(f"#{number} 还没有办结，隐患排除后再加分。")
    ref = f"{kind}:{number}"
    if await already_paid(ctx.session, ref):
        raise CommandError(f"#{number} 已经加过分了。")
    staff = await ctx.session.get(StaffRole, petition.reporter_id)
    if staff is not None and staff.active:
        raise CommandError(f"#{number} 是工作人员反映的，不计居民积分。")
    points = (
        ctx.config.points.hazard_fixed
        if kind == "hazard"
        else ctx.config.points.suggestion_adopted
    )
    what = "反映的隐患已排除" if kind == "hazard" else "提的建议被采纳"
    note = f"{what}：{petition.text[:40]}"
    entry = add_entry(
        ctx.session,
        member_id=petition.reporter_id,
        grid_id=petition.grid_id,
        delta=points,
        kind=kind,
        note=note,
        by=ctx.sender_id,
        now=ctx.now,
        ref=ref,
    )
    await ctx.session.flush()
    _audit(ctx, f"points:{kind}", f"#{number}", petition.reporter_id)
    ctx.reply(f"#{number} {what}，给反映人加 {points} 分（记录 {entry.id}）。谢谢！")


@router.command("隐患", "隐患排除", roles=STAFF, usage="/隐患 12")
async def hazard_fixed(ctx: MessageContext, args: list[str]) -> None:
    """反映的隐患已排除，给反映人加分"""
    await _petition_award(ctx, args, "hazard", "/隐患 12")


@router.command("采纳", roles=STAFF, usage="/采纳 12")
async def suggestion_adopted(ctx: MessageContext, args: list[str]) -> None:
    """建议被采纳，给提建议的居民加分"""
    await _petition_award(ctx, args, "suggestion", "/采纳 12")


# --- consent to public naming ---------------------------------------------------------


async def _set_opt_out(ctx: MessageContext, opted_out: bool) -> None:
    member = await ctx.session.get(Member, ctx.sender_id)
    assert member is not None  # the pipeline creates the sender's row
    member.opted_out = opted_out
    _audit(ctx, "member:opt-out" if opted_out else "member:opt-in", ctx.sender_id)
    log.info("public naming changed member=%s opted_out=%s", ctx.sender_id, opted_out)


@router.command("不上榜", bare=True, usage="/不上榜")
async def opt_out(ctx: MessageContext, args: list[str]) -> None:
    """光荣榜上不公开您的名字"""
    await _set_opt_out(ctx, True)
    ctx.reply(
        "好的，以后光荣榜上会写“一位热心居民”，不公开您的名字；积分照常累计。"
        "想恢复请发“/上榜”。",
        mention_sender=True,
    )


@router.command("上榜", bare=True, usage="/上榜")
async def opt_in(ctx: MessageContext, args: list[str]) -> None:
    """光荣榜上公开您的名字"""
    await _set_opt_out(ctx, False)
    ctx.reply("好的，以后光荣榜上会写您的名字。谢谢您！", mention_sender=True)


@router.command("待确认", roles=STAFF, usage="/待确认")
async def list_pending(ctx: MessageContext, args: list[str]) -> None:
    """列出等待确认的表扬"""
    rows = list(
        await ctx.session.scalars(
            select(Praise)
            .where(Praise.status == "pending")
            .order_by(Praise.id)
            .limit(50)
        )
    )
    rows = [p for p in rows if ctx.staff is not None and ctx.staff.covers(p.grid_id)][
        :10
    ]
    if not rows:
        ctx.reply("目前没有等待确认的表扬。")
        return
    lines = ["等待确认的表扬："]
    for praise in rows:
        who = praise.target_name + ("" if praise.target_id else "（未关联）")
        lines.append(f"#{praise.id} {who}：{praise.reason[:30] or '（无说明）'}")
    lines.append("确认：/确认 编号；指明是谁：/关联 编号 @某人")
    ctx.reply("\n".join(lines))
