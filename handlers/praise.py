"""表扬: who thanked whom for what, and when it earns points.

    target     a mention id first; else a name known in the grid (members, staff);
               else the name as written, for staff to link later (``/关联 N @某人``)
    at once    praise of staff, or praise given by staff
    later      resident to resident: a staff ``/确认 N`` or a neighbour's ``+1``
               (``points.confirm_by`` = staff | plus_one | either)
    never      praising oneself; a second credit for the same person the same day;
               more than ``points.daily_cap_per_giver`` credits a day; a repeated message

Every praise is kept, refused ones too (status ``ignored`` with the rule in ``note``),
so staff can see what was tried.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import MessageContext
from handlers.points import ANONYMOUS, add_entry, already_paid
from models.tables import InboundMessage, Member, Petition, Praise, StaffRole

log = logging.getLogger(__name__)

PLUS_ONE_WINDOW = timedelta(minutes=30)
PLUS_ONE_WORDS = frozenset({"+1", "同意表扬", "同意+1", "+1同意"})
MAX_TARGETS = 3
# Thanks to a crowd is not praise of a person.
GROUP_WORDS = frozenset(
    {
        "大家",
        "各位",
        "你们",
        "大伙",
        "大伙儿",
        "所有人",
        "邻居们",
        "大家伙",
        "诸位",
        "亲们",
        "群里",
        "全体",
        "各位邻居",
        "各位领导",
        "群友",
        "朋友们",
    }
)
TITLES = (
    "师傅",
    "经理",
    "主任",
    "书记",
    "网格员",
    "姐",
    "哥",
    "阿姨",
    "叔",
    "老师",
    "主管",
)
COUNTED = ("pending", "confirmed")


@dataclass(frozen=True)
class Target:
    """Who a praise is for: an id when known, and the name to show."""

    member_id: str | None
    name: str
    is_staff: bool


def local_day_bounds(config: Config, moment: datetime) -> tuple[datetime, datetime]:
    """Start and end of the community's calendar day that holds ``moment``."""
    local = moment.astimezone(config.tz)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


# --- finding the target ---------------------------------------------------------------


async def resolve_name(
    session: AsyncSession, config: Config, written: str, grid_id: str | None
) -> Target:
    """Match a written name against staff and the grid's members; else keep it as written."""
    written = written.strip().lstrip("@")
    staff_rows = list(
        await session.scalars(
            select(StaffRole).where(StaffRole.name == written, StaffRole.active)
        )
    )
    if len(staff_rows) == 1:
        return Target(staff_rows[0].member_id, written, True)

    members = select(Member).where(Member.name == written)
    in_grid = (
        list(await session.scalars(members.where(Member.grid_id == grid_id)))
        if grid_id
        else []
    )
    candidates = in_grid or list(await session.scalars(members))
    if len(candidates) == 1:
        member = candidates[0]
        is_staff = await session.get(StaffRole, member.id) is not None
        return Target(member.id, written, is_staff)

    # "王师傅" for staff 王经理: a surname and a title, when only one staff member fits.
    if len(written) >= 2 and written[1:] in TITLES:
        fits = [
            s
            for s in config.staff
            if s.name.startswith(written[0])
            and (not grid_id or not s.grids or grid_id in s.grids)
        ]
        if len(fits) == 1:
            return Target(fits[0].id, fits[0].name, True)
    return Target(None, written, False)


async def resolve_targets(ctx: MessageContext, written: list[str]) -> list[Target]:
    """The praised people: mentioned ids first, else the names the router found."""
    bot_id = ctx.config.community.bot_id
    ids = [i for i in ctx.message.mention_ids if i != bot_id]
    names = list(ctx.message.mention_names) + [""] * len(ctx.message.mention_ids)
    targets: list[Target] = []
    if ids:
        by_id = dict(zip(ctx.message.mention_ids, names, strict=False))
        for member_id in dict.fromkeys(ids):
            staff = await ctx.session.get(StaffRole, member_id)
            member = await ctx.session.get(Member, member_id)
            shown = (
                by_id.get(member_id)
                or (member.name if member else "")
                or (staff.name if staff else "")
                or "这位邻居"
            )
            targets.append(Target(member_id, shown, staff is not None and staff.active))
        return targets[:MAX_TARGETS]
    grid_id = ctx.grid.id if ctx.grid else None
    for name in dict.fromkeys(n.strip() for n in written):
        if name and name not in GROUP_WORDS:
            targets.append(await resolve_name(ctx.session, ctx.config, name, grid_id))
    return targets[:MAX_TARGETS]


# --- the rules ------------------------------------------------------------------------


async def todays_praise(
    session: AsyncSession, config: Config, giver_id: str, now: datetime
) -> list[Praise]:
    """Everything this giver praised today, refused ones included."""
    start, end = local_day_bounds(config, now)
    return list(
        await session.scalars(
            select(Praise).where(
                Praise.giver_id == giver_id,
                Praise.created_at >= start,
                Praise.created_at < end,
            )
        )
    )


async def repeated_message(ctx: MessageContext) -> bool:
    """Whether the sender already sent these very words as praise today."""
    start, _ = local_day_bounds(ctx.config, ctx.now)
    found = await ctx.session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.talker_id == ctx.sender_id,
            InboundMessage.text == ctx.message.text,
            InboundMessage.message_id != ctx.message.message_id,
            InboundMessage.received_at >= start,
            InboundMessage.outcome.like("praise%"),
        )
    )
    return bool(found)


def refusal(
    target: Target,
    giver_id: str,
    reason: str,
    today: list[Praise],
    daily_cap: int,
    *,
    repeated: bool = False,
) -> str:
    """Which fairness rule stops this praise from counting ('' if none)."""
    if target.member_id is not None and target.member_id == giver_id:
        return "self"
    if repeated or (
        reason
        and any(p.reason == reason and p.target_name == target.name for p in today)
    ):
        return "repeat"
    counted = [p for p in today if p.status in COUNTED]
    if any(_same_person(p, target) for p in counted):
        return "same-target-today"
    if len(counted) >= daily_cap:
        return "daily-cap"
    return ""


def _same_person(praise: Praise, target: Target) -> bool:
    if target.member_id is not None:
        return praise.target_id == target.member_id
    return praise.target_id is None and praise.target_name == target.name


def award(
    session: AsyncSession, config: Config, praise: Praise, by: str, now: datetime
) -> None:
    """Confirm a praise and, when its target is known, write its ledger line."""
    praise.status = "confirmed"
    praise.confirmed_by = by
    praise.confirmed_at = now
    if praise.target_id:
        points = (
            config.points.praise_staff
            if praise.target_is_staff
            else config.points.praise_resident
        )
        add_entry(
            session,
            member_id=praise.target_id,
            grid_id=praise.grid_id,
            delta=points,
            kind="praise",
            note=praise.reason or "热心助人",
            by=by,
            now=now,
            ref=f"praise:{praise.id}",
        )


# --- the handler ----------------------------------------------------------------------


async def handle_praise(ctx: MessageContext) -> None:
    """A resident thanked someone by name: record it and thank them back."""
    verdict = ctx.classification
    assert verdict is not None
    config = ctx.config
    targets = await resolve_targets(ctx, verdict.targets)
    if not targets:
        ctx.outcome = "praise:no-target"
        if ctx.addressed:
            ctx.reply(
                "谢谢您的好意！想表扬谁，可以写上名字，比如“表扬5号楼张阿姨帮忙扫雪”。",
                mention_sender=True,
            )
        return

    reason = (verdict.reason or "").strip()[:300]
    today = await todays_praise(ctx.session, config, ctx.sender_id, ctx.now)
    repeated = await repeated_message(ctx)
    giver_is_staff = ctx.staff is not None
    recorded: list[tuple[Praise, Target]] = []
    for target in targets:
        note = refusal(
            target,
            ctx.sender_id,
            reason,
            today,
            config.points.daily_cap_per_giver,
            repeated=repeated,
        )
        praise = Praise(
            grid_id=ctx.grid.id if ctx.grid else None,
            room_id=ctx.message.room_id,
            giver_id=ctx.sender_id,
            target_id=target.member_id,
            target_name=target.name[:128],
            target_is_staff=target.is_staff,
            reason=reason,
            source_message_id=ctx.message.message_id,
            status="ignored" if note else "pending",
            note=note,
            created_at=ctx.now,
        )
        ctx.session.add(praise)
        await ctx.session.flush()
        if not note and (target.is_staff or giver_is_staff) and target.member_id:
            award(
                ctx.session,
                config,
                praise,
                "staff" if giver_is_staff else "auto",
                ctx.now,
            )
        today.append(praise)
        recorded.append((praise, target))
        log.info(
            "praise recorded praise=%s giver=%s target=%s status=%s note=%s",
            praise.id,
            ctx.sender_id,
            target.member_id,
            praise.status,
            note,
        )

    ctx.outcome = "praise:" + ",".join(p.status for p, _ in recorded)
    await _thank(ctx, recorded)


async def _thank(ctx: MessageContext, recorded: list[tuple[Praise, Target]]) -> None:
    notes = {p.note for p, _ in recorded}
    if notes == {"repeat"}:
        return  # the same words again: stay quiet rather than answer twice
    names = "、".join([await shown_name(ctx.session, p) for p, _ in recorded])
    if notes == {"self"}:
        ctx.reply("自己夸自己不算积分哦，多夸夸身边的好邻居吧！", mention_sender=True)
        return
    counted = [p for p, _ in recorded if p.status in COUNTED]
    if not counted:
        ctx.reply(
            f"谢谢您对{names}的肯定！（今天的表扬次数已记满，明天再来吧）"
            if "daily-cap" in notes
            else f"谢谢您对{names}的肯定！",
            mention_sender=True,
        )
        return
    numbers = "、".join(f"#{p.id}" for p in counted)
    if all(p.status == "confirmed" for p in counted):
        ctx.reply(
            f"收到您对{names}的表扬（{numbers}），已记入光荣榜，谢谢您！",
            mention_sender=True,
        )
    elif ctx.config.points.confirm_by == "staff":
        ctx.reply(
            f"收到您对{names}的表扬（{numbers}），工作人员确认后记入光荣榜，谢谢您！",
            mention_sender=True,
        )
    else:
        ctx.reply(
            f"收到您对{names}的表扬（{numbers}），有邻居回复“+1”或工作人员确认后"
            "记入光荣榜，谢谢您！",
            mention_sender=True,
        )


async def shown_name(session: AsyncSession, praise: Praise) -> str:
    """The target's name for a public post: 一位热心居民 when they opted out."""
    if praise.target_id:
        member = await session.get(Member, praise.target_id)
        if member is not None and member.opted_out:
            return ANONYMOUS
    return praise.target_name or ANONYMOUS


# --- confirming and linking -----------------------------------------------------------


class PraiseError(Exception):
    """A praise action that cannot be done; the message is the Chinese reply."""


async def get_praise(session: AsyncSession, number: int) -> Praise:
    """The praise with this number, or a :class:`PraiseError`."""
    praise = await session.get(Praise, number)
    if praise is None:
        raise PraiseError(f"没有编号为 #{number} 的表扬。")
    return praise


async def confirm(ctx: MessageContext, praise: Praise, by: str) -> None:
    """Confirm a pending praise (staff ``/确认`` or a neighbour's +1)."""
    if praise.status == "confirmed":
        raise PraiseError(f"表扬 #{praise.id} 已经确认过了。")
    if praise.status != "pending":
        raise PraiseError(
            f"表扬 #{praise.id} 不计分（{_NOTE_NAMES.get(praise.note, '已作废')}），"
            "不能确认。"
        )
    award(ctx.session, ctx.config, praise, by, ctx.now)
    log.info("praise confirmed praise=%s by=%s", praise.id, by)


async def link(ctx: MessageContext, praise: Praise, member_id: str, name: str) -> None:
    """Say who an unresolved praise was for; pays it if it is already confirmed."""
    if praise.status not in COUNTED:
        raise PraiseError(f"表扬 #{praise.id} 不计分，不需要关联。")
    if await already_paid(ctx.session, f"praise:{praise.id}"):
        raise PraiseError(
            f"表扬 #{praise.id} 的积分已经记给了别人，如有错误请先 /撤销。"
        )
    staff = await ctx.session.get(StaffRole, member_id)
    praise.target_id = member_id
    praise.target_name = name[:128]
    praise.target_is_staff = staff is not None and staff.active
    if member_id == praise.giver_id:
        praise.status, praise.note = "ignored", "self"
        return
    if praise.status == "confirmed" or praise.target_is_staff:
        award(
            ctx.session,
            ctx.config,
            praise,
            praise.confirmed_by or ctx.sender_id,
            ctx.now,
        )


_NOTE_NAMES = {
    "self": "自己表扬自己",
    "repeat": "重复消息",
    "same-target-today": "当天已表扬过同一人",
    "daily-cap": "超过每日表扬次数",
    "revoked": "已撤销",
}


# --- praise by @-mention ---------------------------------------------------------------


# --- the neighbour's +1 ---------------------------------------------------------------


async def handle_plus_one(ctx: MessageContext) -> bool:
    """A "+1" right after a pending praise in the same group confirms it."""
    text = re.sub(r"[\s。！!~～.]+$", "", ctx.norm.text.strip())
    if text not in PLUS_ONE_WORDS or ctx.is_private:
        return False
    mode = ctx.config.points.confirm_by
    by_staff = ctx.staff is not None
    if mode == "staff" and not by_staff:
        return False

    praise = await ctx.session.scalar(
        select(Praise)
        .where(
            Praise.room_id == ctx.message.room_id,
            Praise.status == "pending",
            Praise.created_at >= ctx.now - PLUS_ONE_WINDOW,
        )
        .order_by(Praise.created_at.desc(), Praise.id.desc())
        .limit(1)
    )
    if praise is None or ctx.sender_id in (praise.giver_id, praise.target_id):
        return False
    # A petition posted after the praise is what a "+1" most likely agrees with.
    later = await ctx.session.scalar(
        select(func.count())
        .select_from(Petition)
        .where(
            Petition.room_id == ctx.message.room_id,
            Petition.created_at >= praise.created_at,
        )
    )
    if later:
        return False

    award(ctx.session, ctx.config, praise, f"plus_one:{ctx.sender_id}", ctx.now)
    name = await shown_name(ctx.session, praise)
    log.info("praise confirmed by plus-one praise=%s by=%s", praise.id, ctx.sender_id)
    if praise.target_id:
        ctx.reply(f"谢谢您的+1！对{name}的表扬（#{praise.id}）已确认，记入光荣榜。")
    else:
        ctx.reply(
            f"谢谢您的+1！对{name}的表扬（#{praise.id}）已确认，"
            "工作人员关联到人后记入积分。"
        )
    ctx.outcome = "praise:plus-one"
    return True
