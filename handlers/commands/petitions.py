"""Petition commands for staff (受理, 转派, 办结 …) and residents (我的, 查询, 撤回).

Staff rights come from the role and the grids of the sender's id (B27): 物业 acts only
on 物业 petitions, a 网格员 only in their grids, 居委会 and 管理员 everywhere. A refusal
is a short reply and an audit row; it changes nothing.
"""

from __future__ import annotations

import re

from sqlalchemy import String, cast, or_, select

from bot.context import MessageContext
from handlers.commands import (
    MANAGERS,
    STAFF,
    CommandError,
    CommandRouter,
    petition_number,
)
from handlers.followup import cancel_followups, create_followup
from handlers.petitions import (
    ACTION_NAMES,
    OPEN_STATES,
    PARTY_ROLES,
    STATUS_BY_NAME,
    STATUS_NAMES,
    PetitionError,
    get_petition,
    label,
    mark_duplicate,
    may_handle,
    party_assignee,
    short,
    staff_name,
    status_name,
    summary_line,
    transition,
)
from models.tables import AuditEntry, Petition, PetitionEvent

router = CommandRouter()
LIST_LIMIT = 30


# --- helpers -------------------------------------------------------------------------


def _audit(
    ctx: MessageContext,
    action: str,
    petition: Petition,
    detail: str = "",
    allowed: bool = True,
) -> None:
    ctx.session.add(
        AuditEntry(
            at=ctx.now,
            actor_id=ctx.sender_id,
            action=action,
            target=f"#{petition.id}",
            allowed=allowed,
            detail=detail[:500],
        )
    )


async def _staff_petition(
    ctx: MessageContext, args: list[str], usage: str, action: str
) -> Petition:
    number = petition_number(args, usage)
    try:
        petition = await get_petition(ctx.session, number)
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    assert ctx.staff is not None
    if not may_handle(ctx.staff, petition):
        _audit(
            ctx,
            f"petition:{action}",
            petition,
            "refused: outside role or grid",
            allowed=False,
        )
        if not ctx.staff.covers(petition.grid_id):
            raise CommandError(f"#{number} 不在您负责的网格内。")
        raise CommandError(f"#{number} 由{petition.party}负责，您不能处理。")
    return petition


def _details_ok(ctx: MessageContext) -> bool:
    """Details of private matters only in a private chat or the staff group."""
    return ctx.is_private or ctx.room_id == ctx.config.community.staff_room


def _change(ctx: MessageContext, petition: Petition, action: str, note: str) -> None:
    try:
        transition(
            ctx.session,
            petition,
            action,
            ctx.sender_id,
            ctx.now,
            note,
            config=ctx.config,
        )
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    _audit(ctx, f"petition:{action}", petition, note)


def tell_reporter(ctx: MessageContext, petition: Petition, text: str) -> None:
    """Tell the reporter, in their group with an @, or privately for a private matter."""
    if petition.private or petition.room_id is None:
        ctx.tell(petition.reporter_id, text, source="petition-update")
    elif petition.room_id == ctx.room_id:
        ctx.reply(
            text,
            mention_ids=(petition.reporter_id,),
            mention_names=(petition.reporter_name,),
        )
    else:
        ctx.tell(
            petition.room_id,
            text,
            mention_ids=(petition.reporter_id,),
            mention_names=(petition.reporter_name,),
            source="petition-update",
        )


def _tell_staff(ctx: MessageContext, member_id: str, text: str) -> None:
    ids = (member_id,) if member_id else ()
    names = (staff_name(ctx.config, member_id) or member_id,) if member_id else ()
    ctx.tell(
        ctx.config.community.staff_room,
        text,
        mention_ids=ids,
        mention_names=names,
        source="petition-staff",
    )


def _note(args: list[str]) -> str:
    return " ".join(args[1:]).strip()


# --- staff: the lifecycle ---------------------------------------------------------


@router.command("受理", "accept", "ac", roles=STAFF, usage="/受理 12")
async def accept(ctx: MessageContext, args: list[str]) -> None:
    """受理一条诉求"""
    petition = await _staff_petition(ctx, args, "/受理 12", "accept")
    _change(ctx, petition, "accept", _note(args))
    ctx.reply(f"{label(petition)} 已受理，请在{_due(ctx, petition)}前办结或报告进展。")
    tell_reporter(
        ctx, petition, f"您反映的 #{petition.id} 已受理，{petition.party}正在处理。"
    )


@router.command("进展", "progress", "pg", roles=STAFF, usage="/进展 12 说明")
async def progress(ctx: MessageContext, args: list[str]) -> None:
    """记录处理进展（当天没办结也要说明进展）"""
    if len(args) < 2:
        raise CommandError("请写上进展说明，例如：/进展 12 已联系维修师傅，明早上门")
    petition = await _staff_petition(ctx, args, "/进展 12 说明", "progress")
    note = _note(args)
    _change(ctx, petition, "progress", note)
    ctx.reply(f"{label(petition)} 已记录进展。")
    tell_reporter(ctx, petition, f"您反映的 #{petition.id} 有新进展：{note}")


@router.command("办结", "resolve", "done", roles=STAFF, usage="/办结 12 说明")
async def resolve(ctx: MessageContext, args: list[str]) -> None:
    """办结一条诉求（之后会回访反映人）"""
    petition = await _staff_petition(ctx, args, "/办结 12 说明", "resolve")
    note = _note(args)
    _change(ctx, petition, "resolve", note)
    create_followup(ctx.session, ctx.config, petition, ctx.now)
    ctx.reply(
        f"{label(petition)} 已办结，稍后会回访反映人。"
        + (f"说明：{note}" if note else "")
    )
    followers = tuple(petition.followers or ())
    if followers and petition.room_id and not petition.private:
        ctx.tell(
            petition.room_id,
            f"您关注（同问）的 #{petition.id} 已办结。"
            + (f"说明：{note}" if note else ""),
            mention_ids=followers,
            source="petition-followers",
        )


@router.command("转派", "transfer", "tf", roles=STAFF, usage="/转派 12 物业")
async def transfer(ctx: MessageContext, args: list[str]) -> None:
    """转给物业、居委会或网格员办理"""
    petition = await _staff_petition(ctx, args, "/转派 12 物业", "transfer")
    if len(args) < 2 or args[1] not in PARTY_ROLES:
        raise CommandError("请写上转给谁：物业、居委会或网格员，例如：/转派 12 物业")
    party = args[1]
    grid = ctx.config.grid(petition.grid_id) if petition.grid_id else None
    assignee = party_assignee(ctx.config, party, petition.category, grid)
    if party == petition.party and assignee == petition.assignee_id:
        raise CommandError(f"#{petition.id} 已经由{party}负责。")
    note = " ".join([f"转给{party}", *args[2:]])
    _change(ctx, petition, "transfer", note)
    petition.party, petition.assignee_id = party, assignee
    ctx.reply(f"#{petition.id} 已转给{party}办理。")
    _tell_staff(
        ctx,
        assignee,
        f"{label(petition)} 转给您办理，请尽快受理：{short(petition.text)}",
    )


@router.command("退回", "return", "back", roles=STAFF, usage="/退回 12 原因")
async def send_back(ctx: MessageContext, args: list[str]) -> None:
    """不归自己管的诉求退回网格员重新分派"""
    if len(args) < 2:
        raise CommandError("请写上退回原因，例如：/退回 12 不属于物业管理范围")
    petition = await _staff_petition(ctx, args, "/退回 12 原因", "return")
    note = _note(args)
    grid = ctx.config.grid(petition.grid_id) if petition.grid_id else None
    _change(ctx, petition, "return", note)
    petition.party, petition.assignee_id = "网格员", grid.manager if grid else ""
    ctx.reply(f"#{petition.id} 已退回网格员重新分派。")
    _tell_staff(
        ctx, petition.assignee_id, f"{label(petition)} 被退回，请重新分派。原因：{note}"
    )


@router.command("催办", "urge", roles=MANAGERS, usage="/催办 12")
async def urge(ctx: MessageContext, args: list[str]) -> None:
    """催促负责人尽快办理"""
    petition = await _staff_petition(ctx, args, "/催办 12", "urge")
    if petition.status not in OPEN_STATES:
        raise CommandError(
            f"#{petition.id} 目前是“{status_name(petition)}”，不用催办。"
        )
    ctx.session.add(
        PetitionEvent(
            petition_id=petition.id,
            at=ctx.now,
            actor_id=ctx.sender_id,
            action="urge",
            from_status=petition.status,
            to_status=petition.status,
            note=_note(args)[:500],
        )
    )
    _audit(ctx, "petition:urge", petition, _note(args))
    _tell_staff(
        ctx,
        petition.assignee_id,
        f"【催办】{label(petition)}（{status_name(petition)}）请尽快办理并报告进展。",
    )
    ctx.reply(f"已催办 #{petition.id}。")


@router.command("重复", "duplicate", "dup", roles=MANAGERS, usage="/重复 12 8")
async def duplicate(ctx: MessageContext, args: list[str]) -> None:
    """把一条诉求并入另一条（同问 +1）"""
    petition = await _staff_petition(ctx, args, "/重复 12 8", "duplicate")
    original = await _staff_petition(ctx, args[1:], "/重复 12 8", "duplicate")
    try:
        mark_duplicate(ctx.session, petition, original, ctx.sender_id, ctx.now)
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    await cancel_followups(ctx.session, petition.id)
    _audit(ctx, "petition:duplicate", petition, f"duplicate of #{original.id}")
    ctx.reply(f"#{petition.id} 已并入 #{original.id}，反映人会在办结时收到通知。")


def _due(ctx: MessageContext, petition: Petition) -> str:
    due = (petition.due_at or petition.resolve_due).astimezone(ctx.config.tz)
    today = ctx.now.astimezone(ctx.config.tz).date()
    day = "今天" if due.date() == today else f"{due.month}月{due.day}日"
    return f"{day}{due:%H:%M}"


# --- staff: reading --------------------------------------------------------------------


@router.command("列表", "list", "ls", roles=STAFF, usage="/列表 [状态] [网格] [分类]")
async def list_petitions(ctx: MessageContext, args: list[str]) -> None:
    """列出诉求（默认未办结的），可按状态、网格、分类筛选"""
    assert ctx.staff is not None
    statuses, grid_id, category = set(OPEN_STATES), None, None
    for arg in args:
        if arg in STATUS_BY_NAME:
            statuses = {STATUS_BY_NAME[arg]}
        elif arg in ("全部", "all"):
            statuses = set(STATUS_BY_NAME.values())
        elif ctx.config.category(arg):
            category = arg
        elif (grid := _find_grid(ctx, arg)) is not None:
            grid_id = grid
        else:
            raise CommandError(
                f"看不懂“{arg[:10]}”：可以写状态（如 待受理）、网格或分类。"
            )

    query = select(Petition).where(Petition.status.in_(statuses)).order_by(Petition.id)
    if grid_id:
        query = query.where(Petition.grid_id == grid_id)
    if category:
        query = query.where(Petition.category == category)
    rows = [p for p in await ctx.session.scalars(query) if may_handle(ctx.staff, p)]
    if not rows:
        ctx.reply("没有符合条件的诉求。")
        return
    details = _details_ok(ctx)
    lines = [f"诉求 {len(rows)} 条："]
    lines += [summary_line(p, ctx.config, details=details) for p in rows[:LIST_LIMIT]]
    if len(rows) > LIST_LIMIT:
        lines.append(f"……还有 {len(rows) - LIST_LIMIT} 条，请到管理后台查看。")
    ctx.reply("\n".join(lines))


def _find_grid(ctx: MessageContext, arg: str) -> str | None:
    for grid in ctx.config.grids:
        if arg in (grid.id, grid.name) or (len(arg) >= 2 and arg in grid.name):
            return grid.id
    return None


@router.command("查看", "view", "show", roles=STAFF, usage="/查看 12")
async def view(ctx: MessageContext, args: list[str]) -> None:
    """查看一条诉求的详情和办理记录"""
    petition = await _staff_petition(ctx, args, "/查看 12", "view")
    events = list(
        await ctx.session.scalars(
            select(PetitionEvent)
            .where(PetitionEvent.petition_id == petition.id)
            .order_by(PetitionEvent.id)
        )
    )
    tz = ctx.config.tz
    who = (
        staff_name(ctx.config, petition.assignee_id) or petition.assignee_id or "未分派"
    )
    lines = [
        f"{label(petition)} {status_name(petition)}{'【紧急】' if petition.urgent else ''}",
        f"反映人：{petition.reporter_name}  负责人：{who}",
        f"登记：{petition.created_at.astimezone(tz):%m-%d %H:%M}  "
        f"响应期限：{petition.response_due.astimezone(tz):%m-%d %H:%M}  "
        f"办结期限：{petition.resolve_due.astimezone(tz):%m-%d %H:%M}",
        f"内容：{petition.text}",
    ]
    if petition.followers:
        lines.append(f"同问：{len(petition.followers)} 人")
    lines.append("办理记录：")
    for event in events:
        lines.append(
            f"· {event.at.astimezone(tz):%m-%d %H:%M} {_actor(ctx, event.actor_id)} "
            f"{ACTION_NAMES.get(event.action, event.action)}→"
            f"{STATUS_NAMES.get(event.to_status, event.to_status)}"
            + (f"：{event.note}" if event.note else "")
        )
    text = "\n".join(lines)
    if petition.private and not _details_ok(ctx):
        ctx.reply(text, room_id=ctx.sender_id)  # details of a dispute stay private
        ctx.reply(f"#{petition.id} 的详情已私信发给您。", mention_sender=True)
    else:
        ctx.reply(text)


def _actor(ctx: MessageContext, member_id: str) -> str:
    if member_id == ctx.config.community.bot_id:
        return "系统"
    return staff_name(ctx.config, member_id) or "居民"


# --- residents -------------------------------------------------------------------------


@router.command("我的", "mine", bare=True, usage="/我的")
async def mine(ctx: MessageContext, args: list[str]) -> None:
    """查看自己反映过（或同问）的诉求"""
    follower = cast(Petition.followers, String).like(f'%"{ctx.sender_id}"%')
    query = (
        select(Petition)
        .where(or_(Petition.reporter_id == ctx.sender_id, follower))
        .order_by(Petition.id.desc())
        .limit(10)
    )
    rows = list(await ctx.session.scalars(query))
    if not rows:
        ctx.reply("您还没有反映过诉求。", mention_sender=True)
        return
    details = ctx.is_private
    lines = ["您反映的诉求："] + [
        summary_line(p, ctx.config, details=details) for p in rows
    ]
    ctx.reply("\n".join(lines), mention_sender=True)


@router.command("查询", "status", bare=True, usage="/查询 12")
async def query_status(ctx: MessageContext, args: list[str]) -> None:
    """查询一条诉求的办理情况"""
    number = petition_number(args, "/查询 12")
    await answer_status(ctx, number)


async def answer_status(ctx: MessageContext, number: int) -> None:
    """Tell the reporter (or a follower, or staff) where a petition stands."""
    petition = await ctx.session.get(Petition, number)
    own = petition is not None and (
        petition.reporter_id == ctx.sender_id
        or ctx.sender_id in (petition.followers or [])
    )
    staff_ok = (
        petition is not None
        and ctx.staff is not None
        and may_handle(ctx.staff, petition)
    )
    if petition is None or not (own or staff_ok):
        raise CommandError(f"没有找到您反映的 #{number} 号诉求。")
    text = f"#{petition.id} 目前：{status_name(petition)}。"
    last = (
        await ctx.session.scalars(
            select(PetitionEvent)
            .where(PetitionEvent.petition_id == petition.id, PetitionEvent.note != "")
            .order_by(PetitionEvent.id.desc())
            .limit(1)
        )
    ).first()
    if last is not None and (not petition.private or ctx.is_private):
        text += f"最近说明：{short(last.note, 40)}"
    ctx.reply(text, mention_sender=True)


_STATUS_QUESTION = re.compile(
    r"^#?(\d{1,9})\s*号?\s*(?:诉求|报修|问题|工单|事)?\s*"
    r"(?:怎么样了|怎样了|进展如何|有进展了?吗|处理了吗|办了吗|修了吗|到哪了|办得怎么样了)"
    r"[?？啊呀呢]*$"
)


async def status_question(ctx: MessageContext) -> bool:
    """Context handler: "12号诉求怎么样了" is ``/查询 12``."""
    match = _STATUS_QUESTION.match(ctx.norm.text.strip())
    if match is None:
        return False
    try:
        await answer_status(ctx, int(match.group(1)))
    except CommandError as exc:
        ctx.reply(str(exc), mention_sender=True)
    ctx.outcome = "petition:status"
    return True


@router.command("撤回", "withdraw", bare=True, usage="撤回 12")
async def withdraw(ctx: MessageContext, args: list[str]) -> None:
    """撤回自己反映的诉求"""
    number = petition_number(args, "撤回 12")
    petition = await ctx.session.get(Petition, number)
    if petition is None or petition.reporter_id != ctx.sender_id:
        raise CommandError(f"只能撤回您自己反映的诉求，没有找到您的 #{number}。")
    try:
        transition(
            ctx.session,
            petition,
            "withdraw",
            ctx.sender_id,
            ctx.now,
            "本人撤回",
            config=ctx.config,
        )
    except PetitionError as exc:
        raise CommandError(str(exc)) from None
    await cancel_followups(ctx.session, petition.id)
    ctx.reply(f"好的，#{petition.id} 已撤回。", mention_sender=True)
    if petition.assignee_id:
        _tell_staff(ctx, petition.assignee_id, f"{label(petition)} 已由反映人撤回。")
