"""发送异常: replies a crash left unconfirmed, sends WeChat kept refusing, and posts
that wait for a bot account no process seems to run.

Staff see the rows of their own grids (committee and admins: every row), check in
the group whether the message came, and resend with one click; the same as ``/补发``.
A post for another account's group still unsent after :data:`STALE_MINUTES` is
listed too, without a button: only that account can post there, so the operator
must see that its process runs. The JSON API (``/api/outbox``) serves the same rows.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import and_, or_, select

from bot.config import Config
from bot.outbox import HELD, UNSURE, release_held
from bot.web import ops, ops_notices
from bot.web.auth import User, check_csrf, require_user
from bot.web.html import Safe, hidden_csrf, layout, table
from bot.web.inputs import read_form
from bot.web.keys import SERVICES
from models.tables import AuditEntry, OutboundMessage

routes = web.RouteTableDef()

LIMIT = 200  # rows shown; the oldest first, as they wait longest
STALE_MINUTES = 10  # a post for another account unsent this long is shown
WAITING = "waiting_account"  # shown only: a pending row of another account, unsent
STATUS = {UNSURE: "待核对（重启时可能已发出）", "failed": "发送失败",
          WAITING: "等待其他账号发送"}


def _visible(config: Config, user: User, room_id: str) -> bool:
    """Rows of the user's grids; rows of other rooms (staff group, private) for all-grid staff."""
    if user.all_grids:
        return True
    grid = config.grid_for_room(room_id)
    return grid is not None and user.covers(grid.id)


def shown_status(row: OutboundMessage) -> str:
    """``unsure``, ``failed`` or, for another account's unsent row, ``waiting_account``."""
    return WAITING if row.status == "pending" else row.status


async def held_rows(services: Any, user: User) -> list[OutboundMessage]:
    """The rows waiting for staff, or for an absent account, that this user may see."""
    stale = services.now() - timedelta(minutes=STALE_MINUTES)
    elsewhere = and_(OutboundMessage.status == "pending",
                     OutboundMessage.account.notin_([services.outbox.account, ""]),
                     OutboundMessage.created_at < stale)
    async with services.db.session() as session:
        rows = list(await session.scalars(
            select(OutboundMessage).where(or_(OutboundMessage.status.in_(HELD), elsewhere))
            .order_by(OutboundMessage.id).limit(LIMIT)))
    return [r for r in rows if _visible(services.config, user, r.room_id)]


def row_json(row: OutboundMessage) -> dict[str, Any]:
    status = shown_status(row)
    return {"id": row.id, "room_id": row.room_id, "text": row.text,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "status": status, "status_name": STATUS.get(status, status),
            "account": row.account, "last_error": row.last_error,
            "resendable": row.status in HELD}


async def resend(services: Any, user: User, number: int) -> bool:
    """Release one held row of the user's grids for sending again; audited either way."""
    async with services.db.session() as session:
        row = await session.get(OutboundMessage, number)
        allowed = row is not None and _visible(services.config, user, row.room_id)
        released = await release_held(session, [number]) if allowed else []
        session.add(AuditEntry(at=services.now(), actor_id=user.member_id,
                               action="outbox:resend", target=f"outbox:{number}",
                               allowed=bool(released),
                               detail="" if released else "not held or not yours"))
    if released:
        services.outbox.wake()
    return bool(released)


def _action(user: User, row: OutboundMessage) -> Safe | str:
    if row.status not in HELD:
        return f"请确认账号 {row.account} 的机器人在运行"
    return Safe(f'<form method="post" action="/dashboard/outbox/{row.id}/resend" class="inline">'
                f'{hidden_csrf(user.csrf)}<button class="secondary">补发</button></form>')


@routes.get("/dashboard/outbox")
async def outbox_page(request: web.Request) -> web.StreamResponse:
    """发送异常: held and failed replies, each with a resend button."""
    user = await require_user(request)
    services = request.app[SERVICES]
    config = services.config
    names = dict(ops_notices.rooms_of(config, user))
    names[config.community.staff_room] = "工作群"
    rows = await held_rows(services, user)
    listing = table(
        ["编号", "群", "内容", "生成时间", "状态", "原因", ""],
        [[f"#{r.id}", names.get(r.room_id, "私聊"), r.text[:80] + ("…" if len(r.text) > 80 else ""),
          ops.local_time(config, r.created_at, "%m-%d %H:%M"),
          STATUS[shown_status(r)], r.last_error[:60], _action(user, r)]
         for r in rows],
        empty="没有待处理的消息：所有回复都已发出。")
    intro = Safe('<p class="muted">“待核对”是重启时正在发送、无法确认是否发出的消息：'
                 "请先看群里有没有，没有再补发。“发送失败”是多次重试仍未发出的消息。"
                 f"“等待其他账号发送”是超过{STALE_MINUTES}分钟仍未发出、只能由另一个机器人账号"
                 "发送的消息：请管理员确认那个账号的程序在运行。</p>")
    flash = "已安排补发。" if request.query.get("done") == "resend" else ""
    return layout(request, "发送异常", Safe(intro + listing), active="outbox", user=user,
                  flash=flash)


@routes.post(r"/dashboard/outbox/{number:\d{1,9}}/resend")
async def resend_row(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    if not await resend(request.app[SERVICES], user, int(request.match_info["number"])):
        raise web.HTTPNotFound(text="没有这条待补发的消息。")
    raise web.HTTPSeeOther("/dashboard/outbox?done=resend")
