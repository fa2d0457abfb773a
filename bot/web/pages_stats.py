"""Statistics (the three rates and companions, with SVG charts) and the honor roll."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from aiohttp import web

from bot.config import Config
from bot.web import honor, ops, ops_notices, ops_people
from bot.web.auth import User, require_user
from bot.web.html import Safe, esc, join, layout, options, table, tag
from bot.web.keys import SERVICES

routes = web.RouteTableDef()

THREE_RATES = (("response_rate", "响应率"), ("solve_rate", "解决率"),
               ("satisfaction_rate", "满意率"))
COMPANION_RATES = (("on_time_response_rate", "按时响应率"), ("same_day_rate", "当日办结率"))
AVERAGES = (("avg_response_minutes", "平均响应（分钟）"),
            ("avg_resolve_minutes", "平均办结（分钟）"))
ALIASES = {"solve_rate": "resolve_rate", "on_time_response_rate": "on_time_rate"}
KEY_FIELDS = ("key", "label", "group", "name")
COUNTS = (("petitions", "诉求数"), ("responded", "已响应"), ("resolved", "已办结"),
          ("resolved_same_day", "当日办结"), ("reopen_count", "重办次数"),
          ("followups_answered", "已回访"))


def pick(row: dict[str, Any], key: str) -> Any:
    """A field of a rate row, under its name or its older alias."""
    return row.get(key, row.get(ALIASES.get(key, ""), None))


def group_label(row: dict[str, Any], config: Config, group_by: str | None) -> str:
    value = next((row[k] for k in KEY_FIELDS if row.get(k) is not None), None)
    if value is None or group_by is None:
        return "合计"
    if group_by == "grid":
        grid = config.grid(str(value))
        return grid.name if grid else (str(value) or "未分网格")
    if group_by == "week":
        return f"{value} 起"
    return str(value)


def rate_value(raw: Any) -> float | None:
    if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw) / 100 if raw > 1 else float(raw)


def percent(raw: Any) -> str:
    value = rate_value(raw)
    return "—" if value is None else f"{value * 100:.0f}%"


def minutes(raw: Any) -> str:
    if raw is None or not isinstance(raw, int | float):
        return "—"
    return f"{raw:.0f}"


def count_fields(row: dict[str, Any]) -> list[str]:
    return [k for k, _ in COUNTS if k in row]


def bar_chart(labels: list[str], series: list[tuple[str, list[float | None]]],
              title: str) -> Safe:
    """Horizontal grouped bars (0–100%), one group per label; plain SVG, no script."""
    width, left, right, bar, gap = 360, 92, 40, 14, 12
    group_height = bar * len(series) + gap
    height = 34 + group_height * max(1, len(labels))
    scale = width - left - right
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{esc(title)}" xmlns="http://www.w3.org/2000/svg">',
             f'<text class="title" x="6" y="16">{esc(title)}</text>']
    for x in (0, 0.5, 1):
        px = left + x * scale
        parts.append(f'<line class="axis" x1="{px:.0f}" y1="24" x2="{px:.0f}" '
                     f'y2="{height - 6}"/>')
        parts.append(f'<text class="tick" x="{px:.0f}" y="{height - 1}" '
                     f'text-anchor="middle">{x * 100:.0f}%</text>')
    for i, name in enumerate(labels):
        top = 26 + i * group_height
        parts.append(f'<text x="6" y="{top + bar * len(series) / 2 + 4:.0f}">'
                     f"{esc(name[:7])}</text>")
        for j, (_, values) in enumerate(series):
            value = values[i]
            y = top + j * bar
            if value is None:
                parts.append(f'<text class="none" x="{left + 4}" y="{y + bar - 3}">'
                             "暂无</text>")
                continue
            w = max(1.0, value * scale)
            parts.append(f'<rect class="bar{j}" x="{left}" y="{y}" width="{w:.1f}" '
                         f'height="{bar - 2}"><title>{esc(name)}：{value * 100:.0f}%</title>'
                         "</rect>")
            parts.append(f'<text x="{left + w + 3:.1f}" y="{y + bar - 3}">'
                         f"{value * 100:.0f}%</text>")
    parts.append("</svg>")
    legend = join(Safe(f'<span><i class="k{j}"></i>{esc(name)}</span>')
                  for j, (name, _) in enumerate(series))
    return Safe(f'<figure class="chart">{"".join(parts)}<figcaption class="legend">{legend}'
                "</figcaption></figure>")


def stats_form(config: Config, user: User, query: ops_notices.StatsQuery) -> Safe:
    grids = ([("", "全部网格")] if user.all_grids else []) + [
        (g.id, g.name) for g in config.grids if user.covers(g.id)]
    groups = [(k, f"按{v}") for k, v in ops_notices.GROUP_BY.items()] + [("none", "不分组")]
    return Safe(
        '<form class="filters card" method="get" action="/dashboard/stats">'
        f'<label>开始<input type="date" name="since" value="{query.since.isoformat()}"></label>'
        f'<label>结束<input type="date" name="until" value="{query.until.isoformat()}"></label>'
        f'<label>分组<select name="group_by">{options(groups, query.group_by or "none")}'
        "</select></label>"
        f'<label>网格<select name="grid">{options(grids, query.grid or "")}</select></label>'
        "<button>查看</button></form>")


def stats_body(config: Config, query: ops_notices.StatsQuery, rows: list[dict[str, Any]],
               totals: list[dict[str, Any]]) -> Safe:
    total = totals[0] if totals else {}
    kpis = "".join(
        f'<div class="kpi" data-rate="{key}"><b>{percent(pick(total, key))}</b>'
        f"<span>{esc(name)}</span></div>"
        for key, name in THREE_RATES + COMPANION_RATES)
    kpis += "".join(f'<div class="kpi" data-count="{esc(k)}"><b>{esc(total[k])}</b>'
                    f"<span>{esc(dict(COUNTS)[k])}</span></div>"
                    for k in count_fields(total)[:3])
    labels = [group_label(r, config, query.group_by) for r in rows]
    charts = Safe("")
    if rows:
        charts = Safe(
            bar_chart(labels, [(n, [rate_value(pick(r, k)) for r in rows]) for k, n in THREE_RATES],
                      "三率")
            + bar_chart(labels, [(n, [rate_value(pick(r, k)) for r in rows])
                                 for k, n in COMPANION_RATES], "按时响应与当日办结"))
    counts = count_fields(rows[0]) if rows else []
    header = ([ops_notices.GROUP_BY.get(query.group_by or "", "范围")]
              + [dict(COUNTS)[k] for k in counts]
              + [n for _, n in THREE_RATES + COMPANION_RATES] + [n for _, n in AVERAGES])
    data = [[label] + [r.get(k) for k in counts]
            + [percent(pick(r, k)) for k, _ in THREE_RATES + COMPANION_RATES]
            + [minutes(pick(r, k)) for k, _ in AVERAGES] for label, r in zip(labels, rows,
                                                                          strict=True)]
    note = tag("p", "响应率、解决率、满意率来自回访答复，还没有答复时显示“—”；"
                    "按时响应率和当日办结率只计已到期限的诉求。", class_="muted")
    return Safe(f'<div class="kpis">{kpis}</div>{note}{charts}<h2>明细</h2>'
                f'{table(header, data, empty="这段时间没有诉求。", class_="stats")}')


@routes.get("/dashboard/stats")
async def stats_page(request: web.Request) -> web.StreamResponse:
    """统计: the three rates and companions per grid, party, category or week."""
    user = await require_user(request)
    services = request.app[SERVICES]
    config = services.config
    today = services.now().astimezone(config.tz).date()
    query = ops_notices.parse_stats_query(config, user, request.query, today)
    rows = await ops_notices.compute_stats(services, query)
    if rows is None:
        body = Safe(stats_form(config, user, query)
                    + tag("p", "统计模块尚未安装，暂时没有数字。", class_="empty"))
    else:
        totals = await ops_notices.compute_stats(services, ops_notices.StatsQuery(
            query.since, query.until, None, query.grid)) or []
        body = Safe(stats_form(config, user, query) + stats_body(config, query, rows, totals))
    return layout(request, "统计", body, active="stats", user=user)


# --- honor roll -------------------------------------------------------------------------


def week_arg(raw: str | None, this_week: date) -> date:
    monday = ops.date_arg(raw, name="周", default=this_week)
    monday -= timedelta(days=monday.weekday())
    if monday > this_week or (this_week - monday).days > 366:
        raise ops.InputError("只能查看一年以内已经开始的周。")
    return monday


def honor_grid(config: Config, user: User, raw: str) -> str:
    """The grid asked for (checked), or the user's own when they see only some grids."""
    if raw and config.grid(raw) is None:
        raise ops.InputError("没有这个网格。")
    if raw and not user.covers(raw):
        raise ops.ForbiddenError(text="这个网格不在您的负责范围内。")
    if not raw and not user.all_grids:
        return user.grids[0]
    return raw


@routes.get("/dashboard/honor")
async def honor_page(request: web.Request) -> web.StreamResponse:
    """光荣榜: this week's preview and picture, and past weeks."""
    user = await require_user(request)
    services = request.app[SERVICES]
    this_week = ops_people.week_start(services.config, services.now())
    monday = week_arg(request.query.get("week"), this_week)
    grid = honor_grid(services.config, user, request.query.get("grid", ""))
    roll = await honor.weekly_roll(services, user, monday, grid or None)
    title = "本周预览" if monday == this_week else f"{monday:%Y-%m-%d} 这一周"
    picture = Safe("")
    if roll.picture_available:
        query = f"week={monday.isoformat()}" + (f"&grid={grid}" if grid else "")
        picture = Safe(f'<p><img class="roll" alt="光荣榜图片" '
                       f'src="/dashboard/honor/picture.png?{esc(query)}"></p>')
    lines = table(["名次", "姓名", "网格", "积分", "事迹"],
                  [[i, e["name"], e.get("grid_id") or "", e["points"], e.get("reasons", "")]
                   for i, e in enumerate(roll.entries, 1)], empty="这一周还没有积分记录。")
    text = tag("pre", roll.text, class_="card text") if roll.text else Safe("")
    weeks = [this_week - timedelta(weeks=n) for n in range(1, 9)]
    past = join((tag("a", f"{w:%m-%d} 这周", href=f"/dashboard/honor?week={w.isoformat()}")
                 for w in weeks), " · ")
    grids = ([("", "全社区")] if user.all_grids else []) + [
        (g.id, g.name) for g in services.config.grids if user.covers(g.id)]
    form = Safe('<form class="filters card" method="get" action="/dashboard/honor">'
                f'<input type="hidden" name="week" value="{monday.isoformat()}">'
                f'<label>网格<select name="grid">{options(grids, grid)}</select></label>'
                "<button>查看</button></form>")
    body = Safe(f"<h2>{esc(title)}</h2>{form}{picture}{text}{lines}"
                f'<h2>往期</h2><p>{past}</p>')
    return layout(request, "光荣榜", body, active="honor", user=user)


@routes.get("/dashboard/honor/picture.png")
async def honor_picture(request: web.Request) -> web.StreamResponse:
    user = await require_user(request)
    services = request.app[SERVICES]
    this_week = ops_people.week_start(services.config, services.now())
    monday = week_arg(request.query.get("week"), this_week)
    grid = honor_grid(services.config, user, request.query.get("grid", "")) or None
    png = await honor.weekly_picture(services, user, monday, grid)
    if png is None:
        raise web.HTTPNotFound(text="暂时没有光荣榜图片（缺少中文字体或光荣榜模块）。")
    return web.Response(body=png, content_type="image/png",
                        headers={"Cache-Control": "no-store"})
