"""The petition board, a petition's detail page and its actions."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from bot.config import PARTIES, Config
from bot.web import ops
from bot.web.auth import User, check_csrf, require_user
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
from handlers.petitions import STATUS_NAMES, TRANSITIONS
from models.tables import Petition

routes = web.RouteTableDef()

ACTION_HELP = {
    "accept": "受理后由您负责跟进。",
    "transfer": "转给其他责任方办理。",
    "progress": "记录一次处理进展（必须写说明）。",
    "resolve": "办结后会回访反映人。",
    "reopen": "反映人不满意或问题复发时重新办理。",
}


def status_badges(petition: Petition, now: datetime) -> Safe:
    parts = [tag("span", STATUS_NAMES.get(petition.status, petition.status),
                 class_=f"badge {petition.status}")]
    if petition.urgent:
        parts.append(tag("span", "紧急", class_="badge urgent"))
    if ops.is_overdue(petition, now):
        parts.append(tag("span", "超时", class_="badge late"))
    return join(parts, " ")


def grid_name(config: Config, grid_id: str | None) -> str:
    grid = config.grid(grid_id) if grid_id else None
    return grid.name if grid else (grid_id or "—")


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def filter_form(config: Config, user: User, flt: ops.BoardFilter) -> Safe:
    grids = [("", "全部网格")] + [(g.id, g.name) for g in config.grids if user.covers(g.id)]
    statuses = [("", "全部状态"), ("open", "未办结"), ("done", "已办结/关闭")]
    statuses += list(STATUS_NAMES.items())
    categories = [("", "全部类别")] + [(c.name, c.name) for c in config.categories]
    parties = [("", "全部责任方")] + [(p, p) for p in PARTIES]
    return Safe(
        '<form class="filters card" method="get" action="/dashboard">'
        f'<label>网格<select name="grid">{options(grids, flt.grid)}</select></label>'
        f'<label>状态<select name="status">{options(statuses, flt.status)}</select></label>'
        f'<label>类别<select name="category">{options(categories, flt.category)}</select></label>'
        f'<label>责任方<select name="party">{options(parties, flt.party)}</select></label>'
        '<label class="check"><input type="checkbox" name="overdue" value="1"'
        f'{" checked" if flt.overdue else ""}>只看超时</label>'
        '<button>筛选</button></form>'
    )


@routes.get("/dashboard")
async def board(request: web.Request) -> web.StreamResponse:
    """诉求看板: filters, one page of petitions, CSV export of the same filter."""
    user = await require_user(request)
    services = request.app[SERVICES]
    config = services.config
    flt = ops.parse_board_filter(config, user, request.query)
    now = services.now()
    async with services.db.session() as session:
        rows, total = await ops.list_petitions(session, user, flt, now)
        open_count = (await ops.list_petitions(session, user, ops.BoardFilter(status="open"),
                                               now, limit=0))[1]
        late_count = (await ops.list_petitions(session, user, ops.BoardFilter(overdue=True),
                                               now, limit=0))[1]

    kpis = Safe(
        '<div class="kpis">'
        f'<a class="kpi" href="/dashboard?status=open"><b>{open_count}</b><span>未办结</span></a>'
        f'<a class="kpi" href="/dashboard?overdue=1"><b>{late_count}</b><span>已超时</span></a>'
        f'<div class="kpi"><b>{total}</b><span>符合筛选</span></div></div>'
    )
    listing = table(
        ["编号", "状态", "内容", "类别", "责任方", "网格", "登记时间"],
        [[tag("a", f"#{p.id}", href=f"/dashboard/petitions/{p.id}"), status_badges(p, now),
          tag("a", _short(p.text), href=f"/dashboard/petitions/{p.id}"), p.category, p.party,
          grid_name(config, p.grid_id), ops.local_time(config, p.created_at)] for p in rows],
        empty="没有符合条件的诉求。", class_="board",
    )
    query = flt.query_string(page=1)
    export = tag("p", join([
        tag("a", "导出 CSV", href=f"/dashboard/export/petitions.csv?{query}"),
        tag("a", "积分明细 CSV", href="/dashboard/export/points.csv")], " · "),
        class_="muted")
    body = Safe(kpis + filter_form(config, user, flt) + listing
                + pager(flt.page, total, ops.PAGE_SIZE,
                        lambda n: f"/dashboard?{flt.query_string(page=n)}") + export)
    return layout(request, "诉求看板", body, active="board", user=user)


def _facts(config: Config, petition: Petition, names: dict[str, str], now: datetime) -> Safe:
    rows = [
        ("状态", status_badges(petition, now)),
        ("类别", petition.category), ("责任方", petition.party),
        ("承办人", names.get(petition.assignee_id, petition.assignee_id) or "—"),
        ("网格", grid_name(config, petition.grid_id)),
        ("反映人", petition.reporter_name or petition.reporter_id),
        ("地点", petition.location or "—"),
        ("登记时间", ops.local_time(config, petition.created_at, "%Y-%m-%d %H:%M")),
        ("响应期限", ops.local_time(config, petition.response_due, "%m-%d %H:%M")),
        ("办结期限", ops.local_time(config, petition.resolve_due, "%m-%d %H:%M")),
    ]
    if petition.resolved_at:
        rows.append(("办结时间", ops.local_time(config, petition.resolved_at, "%m-%d %H:%M")))
    if petition.reopen_count:
        rows.append(("重办次数", str(petition.reopen_count)))
    return Safe('<dl class="facts">' + "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in rows) + "</dl>")


def _action_forms(petition: Petition, user: User) -> Safe:
    forms = []
    for action, name in ops.ACTIONS.items():
        if petition.status not in TRANSITIONS[action][0]:
            continue
        extra = Safe("")
        if action == "transfer":
            extra = Safe(
                f'<label>转派给<select name="party" required>'
                f'{options([("", "请选择"), *((p, p) for p in PARTIES)], "")}</select></label>')
        required = " required" if action == "progress" else ""
        forms.append(Safe(
            f'<form method="post" action="/dashboard/petitions/{petition.id}/{action}" '
            f'data-action="{action}">{hidden_csrf(user.csrf)}'
            f'<b>{esc(name)}</b><span class="muted">{esc(ACTION_HELP[action])}</span>{extra}'
            f'<textarea name="note" maxlength="{ops.NOTE_MAX}" placeholder="说明"{required}>'
            f'</textarea><button name="do" value="{action}">{esc(name)}</button></form>'))
    if not forms:
        return tag("p", "当前状态下没有可做的操作。", class_="muted")
    return Safe('<div class="actions">' + "".join(forms) + "</div>")


async def render_detail(request: web.Request, user: User, number: int, *, flash: str = "",
                        error: str = "", status: int = 200) -> web.Response:
    services = request.app[SERVICES]
    config = services.config
    now = services.now()
    async with services.db.session() as session:
        petition = await ops.load_petition(session, user, number)
        events = await ops.petition_events(session, number)
        names = await ops.names_of(session, {e.actor_id for e in events}
                                   | {petition.assignee_id})
    history = [
        tag("li", Safe(
            f'<span class="muted">{esc(ops.local_time(config, e.at, "%m-%d %H:%M"))}</span> '
            f'{esc(names.get(e.actor_id, e.actor_id))} · '
            f'{esc(_event_name(e.action))}'
            + (f" → {esc(STATUS_NAMES.get(e.to_status, e.to_status))}" if e.to_status else "")
            + (f'<div class="text">{esc(e.note)}</div>' if e.note else "")))
        for e in events]
    body = Safe(
        f'<div class="card">{_facts(config, petition, names, now)}</div>'
        f'<div class="card"><h2>反映内容</h2><p class="text" id="petition-text">'
        f"{esc(petition.text)}</p></div>"
        f'<h2>处理</h2>{_action_forms(petition, user)}'
        f'<h2>办理记录</h2><ol class="history">{join(history)}</ol>'
        '<p><a href="/dashboard">← 返回诉求看板</a></p>'
    )
    return layout(request, f"诉求 #{petition.id}", body, active="board", user=user,
                  flash=flash, error=error, status=status)


def _event_name(action: str) -> str:
    if action in ops.ACTIONS:
        return ops.ACTIONS[action]
    names = {"report": "登记", "close": "关闭", "return": "退回", "withdraw": "撤回",
             "duplicate": "标记重复", "followup": "回访", "escalate": "督办", "plus_one": "同问"}
    return names.get(action, action)


@routes.get(r"/dashboard/petitions/{number:\d{1,9}}")
async def detail(request: web.Request) -> web.StreamResponse:
    """One petition: facts, text, history and the actions its state allows."""
    user = await require_user(request)
    done = request.query.get("done", "")
    flash = f"已{ops.ACTIONS[done]}。" if done in ops.ACTIONS else ""
    return await render_detail(request, user, int(request.match_info["number"]), flash=flash)


@routes.post(r"/dashboard/petitions/{number:\d{1,9}}/{action}")
async def act(request: web.Request) -> web.StreamResponse:
    """Apply an action from the detail page, then show the page again."""
    user = await require_user(request)
    form = await read_form(request)
    check_csrf(request, user, form.get("_csrf"))
    number = int(request.match_info["number"])
    action = request.match_info["action"]
    services = request.app[SERVICES]
    try:
        await ops.apply_action(services, user, number, action, form.as_dict())
    except (ops.InputError, ops.ConflictError) as exc:
        return await render_detail(request, user, number, error=exc.text or "",
                                   status=exc.status)
    raise web.HTTPSeeOther(f"/dashboard/petitions/{number}?done={action}")
