"""The simulator page and its websocket."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import WSMsgType, web

from bot.web.keys import SERVICES, SIMULATOR

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
STATIC = Path(__file__).with_name("static")
MAX_TEXT = 20_000


def _people(request: web.Request) -> dict[str, object]:
    config = request.app[SERVICES].config
    staff = [{"id": s.id, "name": s.name, "role": s.role} for s in config.staff]
    residents = [{"id": f"wxid_resident_{i:03d}", "name": name, "role": "居民"}
                 for i, name in enumerate(["张阿姨", "李大爷", "王姐", "刘叔", "小陈"], 1)]
    groups = [{"id": g.room_id or g.id, "name": g.room_topic or g.name, "grid": g.id}
              for g in config.grids]
    groups.append({"id": config.community.staff_room, "name": config.community.staff_room_topic,
                   "grid": ""})
    return {"groups": groups, "people": residents + staff,
            "bot": {"id": config.community.bot_id, "name": config.community.bot_name},
            "community": config.community.name}


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    if request.app[SIMULATOR] is None:
        raise web.HTTPFound("/dashboard")
    return web.FileResponse(STATIC / "simulator.html")


@routes.get("/simulator/setup")
async def setup(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR]
    if simulator is None:
        raise web.HTTPNotFound(text="simulator is not the active channel")
    data = _people(request)
    data["history"] = {g["id"]: simulator.history(g["id"]) for g in data["groups"]}  # type: ignore[index,union-attr]
    return web.json_response(data)


@routes.get("/simulator/images/{name}")
async def image(request: web.Request) -> web.StreamResponse:
    simulator = request.app[SIMULATOR]
    path = simulator.images.get(request.match_info["name"]) if simulator else None
    if not path or not Path(path).is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path)


@routes.get("/simulator/ws")
async def websocket(request: web.Request) -> web.WebSocketResponse:
    simulator = request.app[SIMULATOR]
    if simulator is None:
        raise web.HTTPNotFound()
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=256 * 1024)
    await ws.prepare(request)
    queue = simulator.subscribe()
    config = request.app[SERVICES].config
    topics = {(g.room_id or g.id): g.room_topic for g in config.grids}

    async def pump() -> None:
        while True:
            event = await queue.get()
            if event.get("type") == "closed":
                await ws.close()
                return
            await ws.send_json(event)

    import asyncio

    pumping = asyncio.create_task(pump())
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
                room = str(data.get("room") or "") or None
                sender = str(data["from"])[:128]
                name = str(data.get("name") or sender)[:64]
                text = str(data["text"])[:MAX_TEXT]
                mentions = tuple(str(m) for m in data.get("mentions") or ())[:20]
            except (ValueError, KeyError, TypeError):
                await ws.send_json({"type": "error", "text": "消息格式不对"})
                continue
            if not text.strip():
                continue
            await simulator.post(room, sender, name, text, topics.get(room or "", ""), mentions)
    finally:
        pumping.cancel()
        simulator.unsubscribe(queue)
    return ws
