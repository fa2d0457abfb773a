"""A tiny HTML helper: everything is escaped unless it is already :class:`Safe`."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from bot.web.keys import SERVICES, SIMULATOR

CSP = ("default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
NAV = (
    ("board", "/dashboard", "诉求"),
    ("stats", "/dashboard/stats", "统计"),
    ("honor", "/dashboard/honor", "光荣榜"),
    ("reminders", "/dashboard/reminders", "提醒通知"),
    ("members", "/dashboard/members", "成员"),
    ("outbox", "/dashboard/outbox", "发送异常"),
    ("audit", "/dashboard/audit", "审计"),
)


class Safe(str):
    """Markup that is already escaped."""


def esc(value: Any) -> Safe:
    """Escape a value for HTML text or a quoted attribute."""
    if isinstance(value, Safe):
        return value
    return Safe(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[Any], sep: str = "") -> Safe:
    return Safe(sep.join(esc(p) for p in parts))


def tag(name: str, content: Any = "", **attrs: Any) -> Safe:
    """``<name attrs>content</name>``; ``class_`` is ``class``; None/False attrs are left out."""
    rendered = []
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        key = key.rstrip("_").replace("_", "-")
        rendered.append(f" {key}" if value is True else f' {key}="{esc(value)}"')
    return Safe(f"<{name}{''.join(rendered)}>{esc(content)}</{name}>")


def options(choices: Iterable[tuple[str, str]], selected: str) -> Safe:
    return join(tag("option", label, value=value, selected=value == selected)
                for value, label in choices)


def hidden_csrf(token: str) -> Safe:
    return Safe(f'<input type="hidden" name="_csrf" value="{esc(token)}">')


def layout(request: web.Request, title: str, body: Any, *, active: str = "",
           user: Any = None, status: int = 200, flash: str = "", error: str = "") -> web.Response:
    """A full page: header with navigation, the body, security headers."""
    community = request.app[SERVICES].config.community.name
    nav = Safe("")
    if user is not None:
        links = [tag("a", label, href=href, class_="on" if key == active else None)
                 for key, href, label in NAV]
        if request.app[SIMULATOR] is not None:
            links.append(tag("a", "群聊模拟器", href="/"))
        logout = Safe(f'<form method="post" action="/dashboard/logout" class="inline">'
                      f'{hidden_csrf(user.csrf)}<button class="link">退出</button></form>')
        nav = Safe(f'<nav>{join(links)}</nav><div class="who">{esc(user.name)}'
                   f'（{esc(user.role)}）{logout}</div>')
    notes = Safe("")
    if flash:
        notes = tag("p", flash, class_="flash")
    if error:
        notes = Safe(notes + tag("p", error, class_="error", role="alert"))
    page = Safe(
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(community)}</title>"
        '<link rel="stylesheet" href="/dashboard/static/dashboard.css"></head><body>'
        f'<header><a class="brand" href="/dashboard">微治理 · {esc(community)}</a>{nav}</header>'
        f"<main><h1>{esc(title)}</h1>{notes}{esc(body)}</main></body></html>"
    )
    response = web.Response(text=page, content_type="text/html", status=status)
    secure_headers(response)
    return response


def secure_headers(response: web.StreamResponse) -> None:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")


def table(header: Iterable[str], rows: Iterable[Iterable[Any]], *, empty: str = "暂无记录",
          class_: str = "") -> Safe:
    """A table that turns into cards on a phone (each cell labelled by its column)."""
    names = list(header)
    head = join(tag("th", h) for h in names)
    body = []
    for row in rows:
        cells = [tag("td", cell, data_label=name) for name, cell in zip(names, row, strict=True)]
        body.append(tag("tr", join(cells)))
    if not body:
        return tag("p", empty, class_="empty")
    return Safe(f'<table class="{esc(("grid " + class_).strip())}"><thead><tr>{head}</tr>'
                f"</thead><tbody>{join(body)}</tbody></table>")


def pager(page: int, total: int, size: int, link: Any) -> Safe:
    """Previous/next links; ``link(page)`` returns the href of a page."""
    pages = max(1, -(-total // size))
    if pages == 1:
        return Safe("")
    parts = []
    if page > 1:
        parts.append(tag("a", "上一页", href=link(page - 1)))
    parts.append(tag("span", f"第 {page} / {pages} 页，共 {total} 条"))
    if page < pages:
        parts.append(tag("a", "下一页", href=link(page + 1)))
    return tag("p", join(parts, " "), class_="pager")
