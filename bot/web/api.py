"""The dashboard's JSON API under ``/api``: the pages' rules, answers as JSON.

Every state change needs the session's CSRF token in the ``X-CSRF-Token`` header
(``GET /api/me`` returns it) and no foreign ``Origin``. Bodies are JSON objects of at
most :data:`bot.web.inputs.MAX_BODY_BYTES`. Errors are ``{"error", "message"}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.web import honor, ops, ops_notices, ops_people, pages_admin, pages_outbox
from bot.web.auth import (
    User,
    attempt_login,
    check_csrf,
    log_out,
    require_user,
    same_origin,
    set_session,
)
from bot.web.inputs import read_json
from bot.web.keys import SERVICES, SIMULATOR
from bot.web.pages_stats import honor_grid, week_arg

routes = web.RouteTableDef()


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def changing(request: web.Request, roles: frozenset[str] | None = None) -> User:
    """The member for a state change: 401, then 403 for a missing token or a foreign Origin."""
    user = await require_user(request, roles) if roles else await require_user(request)
    check_csrf(request, user)
    return user


def _strings(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ops.InputError(f"“{key}”应当是文字列表。")
    return value


@routes.post("/api/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Log in with ``{"code"}`` or ``{"account", "password"}``; sets the session cookie."""
    if not same_origin(request):
        raise web.HTTPForbidden(text="请求来源不是本站，已拒绝。")
    data = await read_json(request)
    code = ops.text_arg(data, "code", limit=32, name="登录码")
    account = ops.text_arg(data, "account", limit=128, name="微信号")
    password = data.get("password", "")
    if not isinstance(password, str) or len(password) > 256:
        raise ops.InputError("密码格式不对。")
    if not code and not (account and password):
        raise ops.InputError("请提供登录码，或微信号和密码。")
    result = await attempt_login(request, code=code, account=account, password=password)
    if result.member_id is None:
        headers = {"Retry-After": "900"} if result.status == 429 else None
        error = "too_many_attempts" if result.status == 429 else "login_failed"
        return web.json_response({"error": error, "message": result.message},
                                 status=result.status, headers=headers)
    response = ok({"member_id": result.member_id})
    set_session(request, response, result.member_id)
    return response


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    user = await changing(request)
    response = ok({"ok": True})
    await log_out(request, user, response)
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.StreamResponse:
    """Who is logged in, their grids and the CSRF token for state changes."""
    user = await require_user(request)
    return ok({"member_id": user.member_id, "name": user.name, "role": user.role,
               "grids": list(user.grids), "all_grids": user.all_grids, "csrf": user.csrf,
               "simulator": request.app[SIMULATOR] is not None})


@routes.get("/api/petitions")
async def petitions(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    flt = ops.parse_board_filter(services.config, user, request.query)
    now = services.now()
    async with services.db.session() as session:
        rows, total = await ops.list_petitions(session, user, flt, now)
    return ok({"total": total, "page": flt.page, "page_size": ops.PAGE_SIZE,
               "petitions": [ops.petition_json(p, services.config, now) for p in rows]})


@routes.get(r"/api/petitions/{number:\d{1,9}}")
async def petition(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    number = int(request.match_info["number"])
    async with services.db.session() as session:
        row = await ops.load_petition(session, user, number)
        events = await ops.petition_events(session, number)
    data = ops.petition_json(row, services.config, services.now())
    data["history"] = [ops.event_json(e) for e in events]
    return ok(data)


@routes.post(r"/api/petitions/{number:\d{1,9}}/{action}")
async def petition_action(request: web.Request) -> web.StreamResponse:
    """``accept`` ``transfer`` ``progress`` ``resolve`` ``reopen`` with ``{"note"}``."""
    user = await changing(request)
    data = await read_json(request)
    services = request.app[SERVICES]
    row = await ops.apply_action(services, user, int(request.match_info["number"]),
                                 request.match_info["action"], data)
    return ok(ops.petition_json(row, services.config, services.now()))


@routes.get("/api/stats")
async def stats(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    today = services.now().astimezone(services.config.tz).date()
    query = ops_notices.parse_stats_query(services.config, user, request.query, today)
    rows = await ops_notices.compute_stats(services, query)
    return ok({"available": rows is not None, "since": query.since.isoformat(),
               "until": query.until.isoformat(), "group_by": query.group_by,
               "grid": query.grid, "rows": rows or []})


@routes.get("/api/honor-roll")
async def honor_roll(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    this_week = ops_people.week_start(services.config, services.now())
    monday = week_arg(request.query.get("week"), this_week)
    grid = honor_grid(services.config, user, request.query.get("grid", "")) or None
    roll = await honor.weekly_roll(services, user, monday, grid)
    return ok({"week": monday.isoformat(), "entries": roll.entries, "text": roll.text,
               "picture": roll.picture_available})


@routes.get("/api/reminders")
async def reminders(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    rows = await ops_notices.list_reminders(request.app[SERVICES], user)
    return ok({"reminders": [ops_notices.reminder_json(r) for r in rows]})


@routes.post(r"/api/reminders/{number:\d{1,9}}/cancel")
async def cancel(request: web.Request) -> web.StreamResponse:
    user = await changing(request)
    row = await ops_notices.cancel_reminder(request.app[SERVICES], user,
                                    int(request.match_info["number"]))
    return ok(ops_notices.reminder_json(row))


@routes.post("/api/notices")
async def notice(request: web.Request) -> web.StreamResponse:
    """Schedule ``{"content", "rooms": [...], "due": "YYYY-MM-DDTHH:MM"}``."""
    user = await changing(request)
    data = await read_json(request)
    row = await ops_notices.schedule_notice(request.app[SERVICES], user, data, _strings(data, "rooms"))
    return ok(ops_notices.reminder_json(row), status=201)


@routes.get("/api/members")
async def members(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    q = ops.text_arg(request.query, "q", limit=64, name="搜索")
    page = ops.int_arg(request.query.get("page"), name="页码", default=1, low=1, high=10_000)
    rows, total = await ops_people.list_members(request.app[SERVICES], user, q=q, page=page)
    return ok({"total": total, "page": page, "members": [
        {"id": m.id, "name": m.name, "grid_id": m.grid_id, "opted_out": m.opted_out,
         "points": m.points, "role": m.role if m.active else ""} for m in rows]})


@routes.get("/api/staff")
async def staff(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    rows = await ops_people.list_staff(request.app[SERVICES])
    return ok({"staff": [
        {"member_id": s.member_id, "name": s.name, "role": s.role, "grids": s.grids or [],
         "active": s.active, "has_password": bool(s.password_hash)}
        for s in rows if user.all_grids or set(s.grids or []) & set(user.grids)]})


@routes.post("/api/staff/{member_id}")
async def set_role(request: web.Request) -> web.StreamResponse:
    """Admins only: ``{"role": "网格员", "grids": ["grid-01"], "name": "…"}``; empty role removes."""
    user = await changing(request)
    data = await read_json(request)
    row = await ops_people.set_role(request.app[SERVICES], user, request.match_info["member_id"],
                             data, _strings(data, "grids"))
    assert row is not None
    return ok({"member_id": row.member_id, "role": row.role, "grids": row.grids,
               "active": row.active})


@routes.get("/api/audit")
async def audit(request: web.Request) -> web.StreamResponse:
    user = await require_user(request, ops_people.AUDITORS)
    q = request.query
    rows, total = await ops_people.list_audit(
        request.app[SERVICES], user, actor=ops.text_arg(q, "actor", limit=128, name="actor"),
        action=ops.text_arg(q, "action", limit=64, name="action"),
        refused=ops.bool_arg(q.get("refused"), name="refused"),
        page=ops.int_arg(q.get("page"), name="页码", default=1, low=1, high=10_000))
    return ok({"total": total, "entries": [ops_people.audit_json(e) for e in rows]})


# The CSV exports answer the same under /api as in the dashboard.
@routes.get("/api/outbox")
async def outbox_rows(request: web.Request) -> web.StreamResponse:
    """发送异常: held and failed replies, and posts waiting for an absent account."""
    user = await require_user(request)
    services = request.app[SERVICES]
    rows = await pages_outbox.held_rows(services, user)
    return ok({"rows": [pages_outbox.row_json(r) for r in rows]})


@routes.post(r"/api/outbox/{number:\d{1,9}}/resend")
async def outbox_resend(request: web.Request) -> web.StreamResponse:
    user = await changing(request)
    if not await pages_outbox.resend(request.app[SERVICES], user,
                                     int(request.match_info["number"])):
        raise ops.not_found("没有这条待补发的消息。")
    return ok({"ok": True})


routes.get("/api/export/petitions.csv")(pages_admin.export_petitions)
routes.get("/api/export/points.csv")(pages_admin.export_points)
