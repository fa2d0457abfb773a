"""The staff dashboard: mounting, the error and security middleware, logging in and out.

The pages live in ``pages_*.py`` and the JSON API in ``api.py``; :func:`mount` adds
them all to the bot's web application. Under ``/dashboard`` and ``/api`` no error is
ever an HTML traceback: a refusal is a 4xx with a Chinese message (JSON under
``/api``), an unexpected exception a 500 whose id is in the log.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from bot.web import api, pages_admin, pages_outbox, pages_petitions, pages_stats
from bot.web.auth import (
    AUTH,
    UNSAFE_METHODS,
    USER,
    Auth,
    attempt_login,
    check_csrf,
    current_user,
    load_secret,
    log_out,
    require_user,
    same_origin,
    set_session,
)
from bot.web.html import Safe, esc, layout, secure_headers, tag
from bot.web.inputs import read_form
from bot.web.keys import SERVICES
from models.tables import AuditEntry

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
STATIC = Path(__file__).with_name("static")
DEFAULT_MESSAGES = {
    400: "请求有误。", 401: "请先登录管理后台。", 403: "没有权限。", 404: "没有这个页面。",
    405: "不支持这种请求方式。", 409: "当前状态下不能这样操作。", 413: "请求内容太大。",
    415: "请求内容格式不对。", 429: "请求太频繁，请稍后再试。",
}


def mount(app: web.Application) -> None:
    """Add the dashboard, its API and their middleware to the bot's web application."""
    services = app[SERVICES]
    app[AUTH] = Auth(load_secret(services.config))
    app.middlewares.append(guard)
    app.add_routes(routes)
    app.add_routes(pages_petitions.routes)
    app.add_routes(pages_stats.routes)
    app.add_routes(pages_admin.routes)
    app.add_routes(pages_outbox.routes)
    app.add_routes(api.routes)


def _ours(path: str) -> bool:
    return path == "/api" or path.startswith(("/api/", "/dashboard"))


def _message(exc: web.HTTPException) -> str:
    text = exc.text or ""
    if not text or text[:3].isdigit():  # aiohttp's own "404: Not Found"
        return DEFAULT_MESSAGES.get(exc.status, "请求无法完成。")
    return text


@web.middleware
async def guard(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    """Errors as JSON (``/api``) or a page (``/dashboard``); never a bare 500."""
    if not _ours(request.path):
        return await handler(request)
    is_api = request.path == "/api" or request.path.startswith("/api/")
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            secure_headers(exc)
            raise
        message = _message(exc)
        await _audit_refusal(request, exc.status, message)
        return await error_response(request, exc.status, message, is_api,
                                    headers=_kept_headers(exc))
    except Exception:
        error_id = secrets.token_hex(4)
        log.exception("dashboard request failed error_id=%s method=%s path=%s", error_id,
                      request.method, request.path)
        return await error_response(request, 500, f"服务器出错了，请稍后再试（错误编号 {error_id}）。",
                                    is_api, error_id=error_id)
    if is_api:
        secure_headers(response)
    return response


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k in ("Retry-After", "Allow")}


async def _audit_refusal(request: web.Request, status: int, message: str) -> None:
    """A refused change by a logged-in member goes into the audit log."""
    user = request.get(USER)
    if status != 403 or user is None or request.method not in UNSAFE_METHODS:
        return
    services = request.app[SERVICES]
    try:
        async with services.db.session() as session:
            session.add(AuditEntry(at=services.now(), actor_id=user.member_id,
                                   action=f"web:{request.method.lower()}",
                                   target=request.path[:128], allowed=False,
                                   detail=message[:500]))
    except Exception:
        log.exception("could not audit refusal path=%s", request.path)


async def error_response(request: web.Request, status: int, message: str, is_api: bool, *,
                         error_id: str = "",
                         headers: dict[str, str] | None = None) -> web.StreamResponse:
    if is_api:
        body: dict[str, object] = {"error": _code(status), "message": message}
        if error_id:
            body["error_id"] = error_id
        response = web.json_response(body, status=status, headers=headers)
        secure_headers(response)
        return response
    user = None
    if status != 401:
        try:
            user = await current_user(request)
        except Exception:
            user = None
    if status == 401:
        page = login_body(next_url=request.path_qs if request.method == "GET" else "")
        response = layout(request, "请先登录", page, status=401, error=message)
    else:
        body_html = tag("p", tag("a", "返回诉求列表", href="/dashboard"))
        response = layout(request, "无法完成", body_html, user=user, status=status,
                          error=message)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _code(status: int) -> str:
    return {400: "bad_request", 401: "not_logged_in", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 409: "conflict", 413: "too_large",
            415: "unsupported_media_type", 429: "too_many_attempts",
            500: "internal_error"}.get(status, "error")


# --- logging in and out -----------------------------------------------------------------


def safe_next(raw: str) -> str:
    """Only a path inside the dashboard; anything else goes to the board."""
    if raw.startswith("/dashboard") and "//" not in raw and "\\" not in raw:
        return raw
    return "/dashboard"


def login_body(next_url: str = "", account: str = "") -> Safe:
    hidden = Safe(f'<input type="hidden" name="next" value="{esc(next_url)}">')
    return Safe(
        '<div class="login"><div class="card">'
        '<h2>用登录码登录</h2>'
        '<p class="muted">私聊社区小助手发送“/登录”，收到 8 位数字登录码，10 分钟内有效。</p>'
        f'<form method="post" action="/dashboard/login">{hidden}'
        '<label>登录码<input name="code" inputmode="numeric" autocomplete="one-time-code" '
        'maxlength="12" required></label><button>登录</button></form></div>'
        '<div class="card"><h2>用密码登录</h2>'
        f'<form method="post" action="/dashboard/login">{hidden}'
        f'<label>微信号<input name="account" value="{esc(account)}" autocomplete="username" '
        'maxlength="128" required></label>'
        '<label>密码<input name="password" type="password" autocomplete="current-password" '
        'maxlength="256" required></label><button>登录</button></form>'
        '<p class="muted">密码由管理员用 <code>weizhili staff passwd 微信号</code> 设置。</p>'
        "</div></div>"
    )


@routes.get("/dashboard/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if await current_user(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next", "")))
    return layout(request, "登录管理后台", login_body(request.query.get("next", "")))


@routes.post("/dashboard/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="请求来源不是本站，已拒绝。")
    form = await read_form(request)
    code, account = form.get("code")[:32], form.get("account")[:128]
    password = form.get("password")[:256]
    next_url = safe_next(form.get("next"))
    if not code and not (account and password):
        return layout(request, "登录管理后台", login_body(next_url, account), status=400,
                      error="请填写登录码，或填写微信号和密码。")
    result = await attempt_login(request, code=code, account=account, password=password)
    if result.member_id is None:
        response = layout(request, "登录管理后台", login_body(next_url, account),
                          status=result.status, error=result.message)
        if result.status == 429:
            response.headers["Retry-After"] = "900"
        return response
    response = web.HTTPSeeOther(next_url)
    set_session(request, response, result.member_id)
    raise response


@routes.post("/dashboard/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    response = web.HTTPSeeOther("/dashboard/login")
    await log_out(request, user, response)
    raise response


@routes.get("/dashboard/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in ("dashboard.css",):
        raise web.HTTPNotFound()
    response = web.FileResponse(STATIC / name)
    response.headers["Cache-Control"] = "max-age=3600"
    return response


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(f"/dashboard/login?next={quote(request.path_qs)}")
