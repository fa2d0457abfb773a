"""Reminders and notices, members and staff, the audit log, CSV exports."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bot.web import ops, ops_notices, ops_people
from bot.web.auth import STAFF, User, check_csrf, require_user
from bot.web.html import (
    Safe,
    esc,
    hidden_csrf,
    join,
    layout,
    options,
    pager,
    table,
    tag,
)
from bot.web.inputs import read_form
from bot.web.keys import SERVICES
from handlers.commands import ADMINS

routes = web.RouteTableDef()

REMINDER_STATUS = {"pending": "待发送", "approval": "待审批", "sent": "已发送",
                   "cancelled": "已取消", "missed": "未能发送"}


async def render_reminders(request: web.Request, user: User, *, flash: str = "",
                           error: str = "", status: int = 200) -> web.Response:
    services = request.app[SERVICES]
    config = services.config
    rows = await ops_notices.list_reminders(services, user)
    room_names = dict(ops_notices.rooms_of(config, user))
    listing = table(
        ["编号", "类型", "内容", "群", "时间", "状态", ""],
        [[f"#{r.id}", "通知" if r.kind == "notice" else "提醒", r.content,
          "、".join(room_names.get(x, x) for x in r.room_ids or []),
          ops.local_time(config, r.due_at, "%Y-%m-%d %H:%M") + ("（重复）" if r.recurrence else ""),
          REMINDER_STATUS.get(r.status, r.status),
          Safe(f'<form method="post" action="/dashboard/reminders/{r.id}/cancel" '
               f'class="inline">{hidden_csrf(user.csrf)}'
               '<button class="secondary">取消</button></form>')
          if r.status in ("pending", "approval") else ""] for r in rows],
        empty="没有提醒或通知。")
    default_due = (services.now() + timedelta(hours=1)).astimezone(config.tz)
    rooms = join(Safe(f'<label class="check"><input type="checkbox" name="rooms" '
                      f'value="{esc(room)}">{esc(name)}</label>')
                 for room, name in ops_notices.rooms_of(config, user))
    form = Safe(
        '<form class="card" method="post" action="/dashboard/notices">'
        f"{hidden_csrf(user.csrf)}<h2>安排一条通知</h2>"
        f'<label>通知内容<textarea name="content" maxlength="{ops_notices.NOTICE_MAX}" required>'
        "</textarea></label>"
        f'<p class="muted">发到哪些群</p><div class="rooms">{rooms}</div>'
        '<label>发送时间<input type="datetime-local" name="due" '
        f'value="{default_due:%Y-%m-%dT%H:%M}"></label><p><button>保存通知</button></p>'
        "</form>")
    return layout(request, "提醒与通知", Safe(form + listing), active="reminders", user=user,
                  flash=flash, error=error, status=status)


@routes.get("/dashboard/reminders")
async def reminders_page(request: web.Request) -> web.StreamResponse:
    """提醒与通知: group reminders and notices, cancel, schedule a notice."""
    user = await require_user(request)
    flash = {"cancel": "已取消。", "notice": "通知已安排，到时会自动发送。"}.get(
        request.query.get("done", ""), "")
    return await render_reminders(request, user, flash=flash)


@routes.post(r"/dashboard/reminders/{number:\d{1,9}}/cancel")
async def cancel_reminder(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    try:
        await ops_notices.cancel_reminder(request.app[SERVICES], user, int(request.match_info["number"]))
    except ops.ConflictError as exc:
        return await render_reminders(request, user, error=exc.text or "", status=409)
    raise web.HTTPSeeOther("/dashboard/reminders?done=cancel")


@routes.post("/dashboard/notices")
async def schedule_notice(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    try:
        await ops_notices.schedule_notice(request.app[SERVICES], user, form.as_dict(),
                                  form.getall("rooms"))
    except ops.InputError as exc:
        return await render_reminders(request, user, error=exc.text or "", status=400)
    raise web.HTTPSeeOther("/dashboard/reminders?done=notice")


# --- members and staff ---------------------------------------------------------------


def _role_form(user: User, member_id: str, role: str, grids: tuple[str, ...],
               grid_choices: list[tuple[str, str]]) -> Safe:
    if user.role not in ADMINS:
        return Safe("")
    roles = [("", "无（取消角色）"), *((r, r) for r in sorted(STAFF))]
    boxes = join(Safe(f'<label class="check"><input type="checkbox" name="grids" '
                      f'value="{esc(g)}"{" checked" if g in grids else ""}>{esc(n)}</label>')
                 for g, n in grid_choices)
    return Safe(f'<details class="rolebox"><summary>{"修改角色" if role else "设为工作人员"}'
                f'</summary><form method="post" action="/dashboard/staff/{esc(member_id)}">'
                f'{hidden_csrf(user.csrf)}'
                f'<label>角色<select name="role">{options(roles, role)}</select></label>'
                f'<div class="rooms">{boxes}</div><p class="muted">不勾选网格表示全部网格。</p>'
                '<button class="secondary">保存</button></form></details>')


@routes.get("/dashboard/members")
async def members_page(request: web.Request) -> web.StreamResponse:
    """成员与工作人员: roles, opt-outs, points; admins edit roles."""
    user = await require_user(request)
    services = request.app[SERVICES]
    config = services.config
    q = ops.text_arg(request.query, "q", limit=64, name="搜索")
    page = ops.int_arg(request.query.get("page"), name="页码", default=1, low=1, high=10_000)
    members, total = await ops_people.list_members(services, user, q=q, page=page)
    grid_choices = [(g.id, g.name) for g in config.grids]
    grid_names = dict(grid_choices)
    staff = await ops_people.list_staff(services)
    staff_rows = [[s.name, s.member_id, s.role if s.active else f"{s.role}（已停用）",
                   "、".join(grid_names.get(g, g) for g in s.grids or []) or "全部",
                   "已设置" if s.password_hash else "—",
                   _role_form(user, s.member_id, s.role if s.active else "",
                              tuple(s.grids or ()), grid_choices)]
                  for s in staff if user.all_grids or set(s.grids or []) & set(user.grids)]
    member_rows = [[m.name or "—", m.id, grid_names.get(m.grid_id or "", m.grid_id or "—"),
                    m.points, "不上榜" if m.opted_out else "上榜", m.role if m.active else "",
                    _role_form(user, m.id, m.role if m.active else "", m.role_grids,
                               grid_choices) if not m.role else ""]
                   for m in members]
    search = Safe('<form class="filters card" method="get" action="/dashboard/members">'
                  f'<label>姓名或微信号<input name="q" value="{esc(q)}" maxlength="64"></label>'
                  "<button>搜索</button></form>")
    body = Safe(
        "<h2>工作人员</h2>"
        + table(["姓名", "微信号", "角色", "网格", "密码", ""], staff_rows)
        + "<h2>居民</h2>" + search
        + table(["姓名", "微信号", "网格", "积分", "公开", "角色", ""], member_rows,
                empty="没有找到成员。")
        + pager(page, total, ops.PAGE_SIZE, lambda n: f"/dashboard/members?page={n}"))
    flash = "已保存。" if request.query.get("done") == "role" else ""
    return layout(request, "成员与工作人员", body, active="members", user=user, flash=flash)


@routes.post("/dashboard/staff/{member_id}")
async def set_role(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    await ops_people.set_role(request.app[SERVICES], user, request.match_info["member_id"],
                       form.as_dict(), form.getall("grids"))
    raise web.HTTPSeeOther("/dashboard/members?done=role")


# --- audit ------------------------------------------------------------------------------


@routes.get("/dashboard/audit")
async def audit_page(request: web.Request) -> web.StreamResponse:
    """审计日志: every state change and every refusal, who and when."""
    user = await require_user(request, ops_people.AUDITORS)
    services = request.app[SERVICES]
    config = services.config
    actor = ops.text_arg(request.query, "actor", limit=128, name="操作人")
    action = ops.text_arg(request.query, "action", limit=64, name="操作")
    refused = ops.bool_arg(request.query.get("refused"), name="只看拒绝")
    page = ops.int_arg(request.query.get("page"), name="页码", default=1, low=1, high=10_000)
    rows, total = await ops_people.list_audit(services, user, actor=actor, action=action,
                                       refused=refused, page=page)
    form = Safe('<form class="filters card" method="get" action="/dashboard/audit">'
                f'<label>操作人微信号<input name="actor" value="{esc(actor)}"></label>'
                f'<label>操作（前缀）<input name="action" value="{esc(action)}"></label>'
                '<label class="check"><input type="checkbox" name="refused" value="1"'
                f'{" checked" if refused else ""}>只看被拒绝的</label><button>筛选</button></form>')
    listing = table(["时间", "操作人", "操作", "对象", "结果", "说明"],
                    [[ops.local_time(config, e.at, "%m-%d %H:%M:%S"), e.actor_id, e.action,
                      e.target, "允许" if e.allowed else tag("b", "拒绝"), e.detail]
                     for e in rows])
    body = Safe(form + listing + pager(page, total, ops.PAGE_SIZE,
                                       lambda n: f"/dashboard/audit?page={n}"))
    return layout(request, "审计日志", body, active="audit", user=user)


# --- CSV --------------------------------------------------------------------------------


def csv_response(data: bytes, name: str) -> web.Response:
    return web.Response(body=data, content_type="text/csv", charset="utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@routes.get("/dashboard/export/petitions.csv")
async def export_petitions(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    flt = ops.parse_board_filter(services.config, user, request.query)
    return csv_response(await ops_people.petitions_csv(services, user, flt), "petitions.csv")


@routes.get("/dashboard/export/points.csv")
async def export_points(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    return csv_response(await ops_people.points_csv(request.app[SERVICES], user), "points.csv")
