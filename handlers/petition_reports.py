"""New reports: a resident's message routed as a petition becomes one, or joins one.

The router decided the message reports a problem; :func:`handle_report` numbers it
(or, when the same matter is already open in the grid, adds the reporter to it as a
同问 follower), routes it to the party responsible, acknowledges it in the group and
alerts staff at once when it is urgent. The lifecycle after that is
:mod:`handlers.petitions`.
"""

from __future__ import annotations

import logging

from bot.config import Config, GridConfig
from bot.context import MessageContext
from handlers.petitions import (
    add_follower,
    deadlines,
    label,
    route,
    short,
    staff_name,
    status_name,
)
from models.tables import Member, Petition, PetitionEvent

log = logging.getLogger(__name__)


# --- new reports -----------------------------------------------------------------


async def reporter_grid(ctx: MessageContext) -> GridConfig | None:
    """The grid of the message, or of the sender when they write privately."""
    if ctx.grid is not None:
        return ctx.grid
    member = await ctx.session.get(Member, ctx.sender_id)
    return ctx.config.grid(member.grid_id) if member and member.grid_id else None


async def create_petition(
    ctx: MessageContext,
    *,
    category: str | None,
    urgent: bool,
    location: str | None,
    keywords: list[str],
) -> Petition:
    """Record a new petition from the message in ``ctx``, routed and with deadlines."""
    config = ctx.config
    now = ctx.now
    grid = await reporter_grid(ctx)
    routing = route(config, category, grid)
    response_due, resolve_due = deadlines(config, now, urgent)
    petition = Petition(
        grid_id=grid.id if grid else None,
        room_id=ctx.message.room_id,
        reporter_id=ctx.sender_id,
        reporter_name=ctx.sender_name[:128],
        source_message_id=ctx.message.message_id,
        text=ctx.message.text,
        category=routing.category,
        party=routing.party,
        assignee_id=routing.assignee_id,
        location=(location or "")[:64],
        keywords=keywords[:20],
        urgent=urgent,
        private=routing.category == "纠纷",
        status="reported",
        created_at=now,
        updated_at=now,
        response_due=response_due,
        resolve_due=resolve_due,
        followers=[],
        reopen_count=0,
        escalation=0,
        due_at=response_due,
        due_kind="response",
    )
    ctx.session.add(petition)
    await ctx.session.flush()
    ctx.session.add(
        PetitionEvent(
            petition_id=petition.id,
            at=now,
            actor_id=ctx.sender_id,
            action="report",
            from_status="",
            to_status="reported",
        )
    )
    log.info(
        "petition created petition=%s grid=%s category=%s party=%s urgent=%s",
        petition.id,
        petition.grid_id,
        petition.category,
        petition.party,
        urgent,
    )
    return petition


# --- the intent handler --------------------------------------------------------


async def handle_report(ctx: MessageContext) -> None:
    """A resident raised a matter: link it to the same open one, or record and route it."""
    from handlers.duplicates import find_similar

    verdict = ctx.classification
    assert verdict is not None
    grid = await reporter_grid(ctx)
    category = route(ctx.config, verdict.category, grid).category
    original = await find_similar(
        ctx.session,
        ctx.config,
        grid_id=grid.id if grid else None,
        category=category,
        keywords=verdict.keywords,
        location=verdict.location,
        urgent=verdict.urgent,
        now=ctx.now,
    )
    if original is not None:
        _link(ctx, original)
        return

    petition = await create_petition(
        ctx,
        category=verdict.category,
        urgent=verdict.urgent,
        location=verdict.location,
        keywords=verdict.keywords,
    )
    ctx.outcome = f"petition:{petition.category}"
    if petition.urgent:
        _alert_urgent(ctx, petition, grid)
    elif petition.private:
        ctx.reply(
            f"已登记诉求 #{petition.id}，工作人员会私下联系您，请留意消息。",
            mention_sender=True,
        )
        ctx.tell(
            ctx.config.community.staff_room,
            f"新诉求 {label(petition)}（纠纷，请私下联系反映人 {petition.reporter_name}）："
            f"{short(petition.text, 60)}",
            mention_ids=_ids(petition.assignee_id),
            mention_names=_names(ctx.config, petition.assignee_id),
            source="petition",
        )
    else:
        ctx.reply(
            f"已登记诉求 {label(petition)}，{petition.party}会尽快处理，今天内给您答复。",
            mention_sender=True,
        )


def _link(ctx: MessageContext, original: Petition) -> None:
    ctx.outcome = f"petition:follow:{original.id}"
    if original.reporter_id == ctx.sender_id or ctx.sender_id in (
        original.followers or []
    ):
        ctx.reply(
            f"您反映的问题已在办理，编号 #{original.id}（{status_name(original)}），"
            "有结果会告诉您。",
            mention_sender=True,
        )
        return
    add_follower(ctx.session, original, ctx.sender_id, ctx.now)
    log.info("petition followed petition=%s member=%s", original.id, ctx.sender_id)
    ctx.reply(
        f"已有邻居反映过同样的问题，编号 #{original.id}（{status_name(original)}），"
        "已为您记上“同问 +1”，办结时会一并告诉您。",
        mention_sender=True,
    )


def _alert_urgent(
    ctx: MessageContext, petition: Petition, grid: GridConfig | None
) -> None:
    ctx.reply(
        f"已登记紧急诉求 {label(petition)}，已通知工作人员马上处理。"
        "如有危险请先离开现场，必要时拨打119/120。",
        mention_sender=True,
    )
    notify = _ids(petition.assignee_id, grid.manager if grid else "")
    names = _names(ctx.config, *notify)
    minutes = ctx.config.deadlines.urgent_response_minutes
    if not ctx.is_private:
        ctx.tell(
            ctx.room_id,
            f"【紧急】{label(petition)} 请尽快响应（{minutes}分钟内）。",
            mention_ids=notify,
            mention_names=names,
            source="urgent",
        )
    where = grid.name if grid else ""
    what = "（纠纷，详情见系统）" if petition.private else short(petition.text, 60)
    ctx.tell(
        ctx.config.community.staff_room,
        f"【紧急】{where} {label(petition)}：{what}，请{minutes}分钟内响应。",
        mention_ids=notify,
        mention_names=names,
        source="urgent",
    )


def _ids(*ids: str) -> tuple[str, ...]:
    return tuple(i for i in dict.fromkeys(ids) if i)


def _names(config: Config, *ids: str) -> tuple[str, ...]:
    return tuple(staff_name(config, i) or i for i in ids if i)
