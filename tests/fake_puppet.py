"""A fake wechaty puppet-service gRPC server for tests, on 127.0.0.1 only.

It speaks the wire protocol the Python SDK (wechaty-puppet-service 0.8.10) expects:
grpclib with the ``wechaty_grpc`` message classes. Text messages use type 7 (the
TypeScript numbering the SDK reads), images 6. Every RPC of ``PuppetStub`` is mapped;
the ones the bot needs are implemented over a :class:`FakeWorld`, the others answer
an empty reply and are recorded in ``calls``.

In-process use (pytest)::

    server = FakePuppetServer(FakeWorld.default(), echo_self=True)
    await server.start()                      # port 0: a free port on 127.0.0.1
    ...  WechatyConfig(endpoint=server.endpoint, token="test-token") ...
    await server.wait_streams(1)              # the client opened its event stream
    mid = server.inject_room_text("room-1@chatroom", "wxid_alice", "@小助手\u2005灯坏了",
                                  mention_ids=["wxid_bot"])
    await server.wait_sent(1)
    server.sent   # [(conversation_id, text, (mention ids...)), ...]
    server.end_stream()                       # a clean end of the event stream
    server.answer_dongs = False               # Ding is answered, no DONG event
    server.change_topic("room-1@chatroom", "新群名")
    await server.stop()

Other helpers: ``emit(event_type, payload)`` sends any event (type as an int or an
``EventType``; payload a dict turned into the JSON string the client reads),
``redeliver(message_id)``, ``join``/``leave`` for room membership, ``send_delay``
to stall sends, ``fail_payloads`` to make the next N ``MessagePayload`` calls fail
with UNAVAILABLE, ``sent_files`` for files sent (conversation id, FileBox JSON).

Subprocess use (for kill -9 and for end-to-end runs of ``weizhili run``)::

    python -m tests.fake_puppet --port 0 --control-port 0 \
        [--world world.json] [--sent-file sent.jsonl] [--no-echo]

It prints one line ``READY grpc=<port> control=<port>`` on stdout when listening,
then serves until killed. Restart it with the same ``--port`` so the bot reconnects
to the same endpoint. ``--sent-file`` appends one JSON object per sent message
(``{"conversation_id", "text", "mention_ids"}``; files carry ``"file"``), flushed at
once, so what was sent survives a SIGKILL. ``--world`` is a JSON file::

    {"bot_id": "wxid_bot", "bot_name": "社区小助手",
     "contacts": {"wxid_alice": "Alice"},
     "rooms": {"room-1@chatroom": {"topic": "1网格居民群",
                                   "members": ["wxid_bot", "wxid_alice"],
                                   "aliases": {"wxid_alice": "3栋Alice"}}}}

The control interface is plain HTTP/JSON on 127.0.0.1:<control port>:

=====  ===============  ==========================================================
GET    /state           ``{"streams_opened", "stream_open", "answer_dongs",
                        "sending", "sent", "sent_files", "calls"}``
                        (``sending``: text sends received, not yet answered)
GET    /sent            the list of sent messages
POST   /inject          ``{"room"?, "talker", "text", "mention_ids"?, "id"?,
                        "timestamp"?, "type"?}`` → ``{"message_id", "delivered"}``
                        (no ``room``: a private message to the bot)
POST   /emit            ``{"type": int, "payload": {...}}`` → ``{"delivered"}``
POST   /redeliver       ``{"id"}`` → ``{"delivered"}``
POST   /topic           ``{"room", "topic", "changer"?}``
POST   /join            ``{"room", "members": [ids], "inviter"?, "names"?: {id: name}}``
POST   /leave           ``{"room", "members": [ids], "remover"?}``
POST   /end-stream      end the event stream cleanly
POST   /dongs           ``{"answer": bool}``
POST   /send-delay      ``{"seconds": float}``: stall each send this long before
                        it is recorded (a SIGKILL meanwhile loses it unrecorded)
=====  ===============  ==========================================================
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import logging
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty import puppet as pb

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
TEXT = 7  # TypeScript wechaty-puppet numbering, which the Python SDK reads
IMAGE = 6
_END = object()
_CARDINALITY = {
    "unary_unary": Cardinality.UNARY_UNARY,
    "unary_stream": Cardinality.UNARY_STREAM,
    "stream_unary": Cardinality.STREAM_UNARY,
    "stream_stream": Cardinality.STREAM_STREAM,
}


@dataclass
class FakeRoom:
    """A WeChat group in the fake world."""

    id: str
    topic: str
    members: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # member id -> group nickname
    owner: str = ""


@dataclass
class FakeWorld:
    """Contacts, rooms and messages the fake server knows."""

    bot_id: str = "wxid_bot"
    bot_name: str = "社区小助手"
    contacts: dict[str, str] = field(default_factory=dict)  # id -> name
    rooms: dict[str, FakeRoom] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.contacts.setdefault(self.bot_id, self.bot_name)

    @classmethod
    def default(cls) -> FakeWorld:
        """A bot, three residents and two grid groups."""
        world = cls(
            contacts={"wxid_alice": "Alice", "wxid_bob": "Bob", "wxid_carol": "Carol"},
        )
        members = [world.bot_id, "wxid_alice", "wxid_bob", "wxid_carol"]
        world.add_room("room-1@chatroom", "1网格居民群", members)
        world.add_room("room-2@chatroom", "2网格居民群", members)
        return world

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FakeWorld:
        """A world described as in the module docstring."""
        world = cls(
            bot_id=data.get("bot_id", "wxid_bot"),
            bot_name=data.get("bot_name", "社区小助手"),
            contacts=dict(data.get("contacts", {})),
        )
        for room_id, room in data.get("rooms", {}).items():
            world.add_room(
                room_id,
                room.get("topic", room_id),
                room.get("members", [world.bot_id]),
                room.get("aliases", {}),
            )
        return world

    def add_room(
        self,
        room_id: str,
        topic: str,
        members: Iterable[str],
        aliases: dict[str, str] | None = None,
    ) -> FakeRoom:
        """Add (or replace) a group."""
        room = FakeRoom(room_id, topic, list(members), dict(aliases or {}), self.bot_id)
        self.rooms[room_id] = room
        return room

    def name(self, contact_id: str) -> str:
        return self.contacts.get(contact_id, contact_id)


class FakePuppetServer:
    """The puppet-service gRPC server over a :class:`FakeWorld`."""

    def __init__(
        self,
        world: FakeWorld | None = None,
        *,
        echo_self: bool = True,
        sent_file: Path | None = None,
    ) -> None:
        self.world = world or FakeWorld.default()
        self.echo_self = echo_self
        self.sent_file = sent_file
        self.answer_dongs = True
        self.logged_in = True
        self.send_delay = 0.0
        self.sending = 0  # text sends received and not yet answered
        self.fail_payloads = 0  # the next N MessagePayload calls answer UNAVAILABLE
        self.sent: list[tuple[str, str, tuple[str, ...]]] = []
        self.sent_files: list[tuple[str, dict[str, Any]]] = []
        self.calls: list[str] = []
        self.streams_opened = 0
        self.dings = 0
        self.port = 0
        self._queues: list[asyncio.Queue[Any]] = []
        self._server: Server | None = None
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)

    # --- lifecycle --------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``, what the bot's config needs."""
        return f"{HOST}:{self.port}"

    @property
    def stream_open(self) -> bool:
        return bool(self._queues)

    async def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 (port 0: a free one); returns the port."""
        self._server = Server([self])
        await self._server.start(HOST, port)
        sockets = self._server._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        logger.info("fake puppet listening port=%d", self.port)
        return self.port

    async def stop(self) -> None:
        """Close every connection abruptly and stop listening."""
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        self._queues.clear()

    async def wait_streams(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` event streams have been opened in total."""
        await self._wait(
            lambda: self.streams_opened >= count and self.stream_open, timeout
        )

    async def wait_sent(self, count: int, timeout: float = 10.0) -> None:
        """Wait until at least ``count`` text messages have been sent."""
        await self._wait(lambda: len(self.sent) >= count, timeout)

    async def wait_calls(self, name: str, count: int, timeout: float = 10.0) -> None:
        """Wait until the RPC ``name`` (e.g. ``"MessagePayload"``) ran ``count`` times."""
        await self._wait(lambda: self.calls.count(name) >= count, timeout)

    async def _wait(self, predicate: Any, timeout: float) -> None:
        async def waiter() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(waiter(), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _poke(self) -> None:
        asyncio.get_running_loop().create_task(self._notify())

    # --- what tests do ----------------------------------------------------------

    def emit(self, event_type: int | pb.EventType, payload: dict[str, Any]) -> bool:
        """Send one event on the open stream; False when no client listens."""
        event = pb.EventResponse(type=int(event_type), payload=json.dumps(payload))
        for queue in self._queues:
            queue.put_nowait(event)
        return bool(self._queues)

    def end_stream(self) -> None:
        """End the event stream cleanly (what a gateway restart looks like)."""
        for queue in self._queues:
            queue.put_nowait(_END)

    def add_message(
        self,
        talker: str,
        text: str,
        *,
        room: str | None = None,
        mention_ids: Iterable[str] = (),
        message_id: str | None = None,
        timestamp: int | None = None,
        msg_type: int = TEXT,
    ) -> str:
        """Store a message payload without announcing it; returns its id."""
        message_id = message_id or f"msg-{next(self._ids)}-{time.monotonic_ns()}"
        self.world.messages[message_id] = {
            "id": message_id,
            "text": text,
            "timestamp": int(time.time()) if timestamp is None else timestamp,
            "type": msg_type,
            "from_id": talker,
            "room_id": room or "",
            "to_id": "" if room else self.world.bot_id,
            "mention_ids": list(mention_ids),
        }
        return message_id

    def inject_room_text(
        self,
        room: str,
        talker: str,
        text: str,
        mention_ids: Iterable[str] = (),
        **kwargs: Any,
    ) -> str:
        """A resident writes in a group; returns the message id."""
        message_id = self.add_message(
            talker, text, room=room, mention_ids=mention_ids, **kwargs
        )
        self.redeliver(message_id)
        return message_id

    def inject_private_text(self, talker: str, text: str, **kwargs: Any) -> str:
        """Someone writes to the bot directly; returns the message id."""
        message_id = self.add_message(talker, text, **kwargs)
        self.redeliver(message_id)
        return message_id

    def redeliver(self, message_id: str) -> bool:
        """Announce a stored message (again)."""
        return self.emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": message_id})

    def change_topic(self, room_id: str, topic: str, changer: str = "") -> bool:
        """Rename a group and announce it."""
        room = self.world.rooms[room_id]
        old, room.topic = room.topic, topic
        return self.emit(
            pb.EventType.EVENT_TYPE_ROOM_TOPIC,
            {
                "changerId": changer or room.owner,
                "newTopic": topic,
                "oldTopic": old,
                "roomId": room_id,
                "timestamp": int(time.time()),
            },
        )

    def join(
        self,
        room_id: str,
        members: Iterable[str],
        inviter: str = "",
        names: dict[str, str] | None = None,
    ) -> bool:
        """New members join a group."""
        room = self.world.rooms[room_id]
        members = list(members)
        self.world.contacts.update(names or {})
        room.members.extend(m for m in members if m not in room.members)
        return self.emit(
            pb.EventType.EVENT_TYPE_ROOM_JOIN,
            {
                "inviteeIdList": members,
                "inviterId": inviter or room.owner,
                "roomId": room_id,
                "timestamp": int(time.time()),
            },
        )

    def leave(self, room_id: str, members: Iterable[str], remover: str = "") -> bool:
        """Members leave (or are removed from) a group."""
        room = self.world.rooms[room_id]
        members = list(members)
        room.members = [m for m in room.members if m not in members]
        return self.emit(
            pb.EventType.EVENT_TYPE_ROOM_LEAVE,
            {
                "removeeIdList": members,
                "removerId": remover or room.owner,
                "roomId": room_id,
                "timestamp": int(time.time()),
            },
        )

    # --- the gRPC service -------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        overrides = {
            "Event": self._event,
            "Ding": self._ding,
            "ContactPayload": self._contact_payload,
            "RoomPayload": self._room_payload,
            "RoomList": self._room_list,
            "RoomMemberList": self._room_member_list,
            "RoomMemberPayload": self._room_member_payload,
            "MessagePayload": self._message_payload,
            "MessageSendText": self._message_send_text,
            "MessageSendFile": self._message_send_file,
            "Version": self._version,
        }
        mapping = {}
        for name, kind, request_cls, reply_cls in _stub_routes():
            cardinality = _CARDINALITY[kind]
            if name == "Event":
                func = self._event
            elif cardinality is Cardinality.UNARY_UNARY:
                func = self._unary(name, reply_cls, overrides.get(name))
            elif cardinality is Cardinality.STREAM_UNARY:
                func = self._stream_unary(name, reply_cls)
            else:
                func = self._unary_stream(name)
            mapping[f"/wechaty.Puppet/{name}"] = Handler(
                func, cardinality, request_cls, reply_cls
            )
        return mapping

    def _unary(self, name: str, reply_cls: type, impl: Any) -> Any:
        async def handler(stream: Stream[Any, Any]) -> None:
            request = await stream.recv_message()
            self.calls.append(name)
            self._poke()
            reply = await impl(request) if impl else reply_cls()
            await stream.send_message(reply)

        return handler

    def _stream_unary(self, name: str, reply_cls: type) -> Any:
        async def handler(stream: Stream[Any, Any]) -> None:
            async for _ in stream:
                pass
            self.calls.append(name)
            await stream.send_message(reply_cls())

        return handler

    def _unary_stream(self, name: str) -> Any:
        async def handler(stream: Stream[Any, Any]) -> None:
            await stream.recv_message()
            self.calls.append(name)

        return handler

    async def _event(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        self.calls.append("Event")
        # One stream at a time: a new one replaces the old.
        for old in self._queues:
            old.put_nowait(_END)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queues = [queue]
        self.streams_opened += 1
        await stream.send_message(
            pb.EventResponse(
                type=int(pb.EventType.EVENT_TYPE_HEARTBEAT),
                payload=json.dumps({"data": "heartbeat"}),
            )
        )
        if self.logged_in:
            self.emit(pb.EventType.EVENT_TYPE_LOGIN, {"contactId": self.world.bot_id})
            self.emit(pb.EventType.EVENT_TYPE_READY, {"data": "ready"})
        await self._notify()
        try:
            while True:
                event = await queue.get()
                if event is _END:
                    return
                await stream.send_message(event)
        finally:
            if queue in self._queues:
                self._queues.remove(queue)
            self._poke()

    async def _ding(self, request: pb.DingRequest) -> pb.DingResponse:
        self.dings += 1
        if self.answer_dongs:
            self.emit(pb.EventType.EVENT_TYPE_DONG, {"data": request.data})
        return pb.DingResponse()

    async def _version(self, request: Any) -> pb.VersionResponse:
        return pb.VersionResponse(version="fake-0.1")

    async def _contact_payload(
        self, request: pb.ContactPayloadRequest
    ) -> pb.ContactPayloadResponse:
        if request.id not in self.world.contacts:
            raise GRPCError(Status.NOT_FOUND, f"no contact {request.id}")
        return pb.ContactPayloadResponse(
            id=request.id,
            name=self.world.contacts[request.id],
            type=pb.ContactType.CONTACT_TYPE_PERSONAL,
            friend=True,
        )

    def _room(self, room_id: str) -> FakeRoom:
        if room_id not in self.world.rooms:
            raise GRPCError(Status.NOT_FOUND, f"no room {room_id}")
        return self.world.rooms[room_id]

    async def _room_payload(
        self, request: pb.RoomPayloadRequest
    ) -> pb.RoomPayloadResponse:
        room = self._room(request.id)
        return pb.RoomPayloadResponse(
            id=room.id,
            topic=room.topic,
            owner_id=room.owner,
            member_ids=list(room.members),
        )

    async def _room_list(self, request: Any) -> pb.RoomListResponse:
        return pb.RoomListResponse(ids=list(self.world.rooms))

    async def _room_member_list(
        self, request: pb.RoomMemberListRequest
    ) -> pb.RoomMemberListResponse:
        return pb.RoomMemberListResponse(
            member_ids=list(self._room(request.id).members)
        )

    async def _room_member_payload(
        self, request: pb.RoomMemberPayloadRequest
    ) -> pb.RoomMemberPayloadResponse:
        room = self._room(request.id)
        if request.member_id not in room.members:
            raise GRPCError(Status.NOT_FOUND, f"{request.member_id} not in {room.id}")
        return pb.RoomMemberPayloadResponse(
            id=request.member_id,
            name=self.world.name(request.member_id),
            room_alias=room.aliases.get(request.member_id, ""),
        )

    async def _message_payload(
        self, request: pb.MessagePayloadRequest
    ) -> pb.MessagePayloadResponse:
        if self.fail_payloads > 0:
            self.fail_payloads -= 1
            raise GRPCError(Status.UNAVAILABLE, "payload store busy")
        message = self.world.messages.get(request.id)
        if message is None:
            raise GRPCError(Status.NOT_FOUND, f"no message {request.id}")
        return pb.MessagePayloadResponse(**message)

    async def _message_send_text(
        self, request: pb.MessageSendTextRequest
    ) -> pb.MessageSendTextResponse:
        self.sending += 1
        try:
            if self.send_delay:
                await asyncio.sleep(self.send_delay)
        finally:
            self.sending -= 1
        mention_ids = tuple(request.mentonal_ids)
        self.sent.append((request.conversation_id, request.text, mention_ids))
        self._record_sent(
            {
                "conversation_id": request.conversation_id,
                "text": request.text,
                "mention_ids": list(mention_ids),
            }
        )
        message_id = self._store_own_message(request.conversation_id, request.text)
        return pb.MessageSendTextResponse(id=message_id)

    async def _message_send_file(
        self, request: pb.MessageSendFileRequest
    ) -> pb.MessageSendFileResponse:
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        box = json.loads(request.filebox)
        self.sent_files.append((request.conversation_id, box))
        self._record_sent(
            {
                "conversation_id": request.conversation_id,
                "file": box.get("name", ""),
                "mention_ids": [],
            }
        )
        message_id = self._store_own_message(
            request.conversation_id, box.get("name", ""), msg_type=IMAGE
        )
        return pb.MessageSendFileResponse(id=message_id)

    def _store_own_message(
        self, conversation_id: str, text: str, msg_type: int = TEXT
    ) -> str:
        in_room = conversation_id in self.world.rooms
        message_id = self.add_message(
            self.world.bot_id,
            text,
            room=conversation_id if in_room else None,
            msg_type=msg_type,
        )
        if not in_room:
            self.world.messages[message_id]["to_id"] = conversation_id
        if self.echo_self:
            self.redeliver(message_id)
        self._poke()
        return message_id

    def _record_sent(self, entry: dict[str, Any]) -> None:
        if self.sent_file is None:
            return
        with self.sent_file.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            out.flush()

    # --- state for the control interface ----------------------------------------

    def state(self) -> dict[str, Any]:
        """What the control interface reports at ``GET /state``."""
        return {
            "streams_opened": self.streams_opened,
            "stream_open": self.stream_open,
            "answer_dongs": self.answer_dongs,
            "dings": self.dings,
            "sending": self.sending,
            "sent": [
                {"conversation_id": c, "text": t, "mention_ids": list(m)}
                for c, t, m in self.sent
            ],
            "sent_files": [
                {"conversation_id": c, "name": box.get("name", "")}
                for c, box in self.sent_files
            ],
            "calls": self.calls[-200:],
        }


def _stub_routes() -> list[tuple[str, str, type, type]]:
    """(RPC name, cardinality kind, request class, reply class) of every stub RPC."""
    routes = []
    for chunk in inspect.getsource(PuppetStub).split("async def ")[1:]:
        route = re.search(r'"/wechaty\.Puppet/(\w+)"', chunk)
        kind = re.search(r"self\._(\w+)\(", chunk)
        classes = re.findall(r"puppet\.(\w+)", chunk)
        requests = [c for c in classes if c.endswith("Request")]
        replies = [c for c in classes if c.endswith("Response")]
        if not (route and kind and requests and replies):
            continue
        routes.append(
            (
                route.group(1),
                kind.group(1),
                getattr(pb, requests[0]),
                getattr(pb, replies[-1]),
            )
        )
    return routes


# --- subprocess mode ---------------------------------------------------------------


async def _serve_control(server: FakePuppetServer, port: int) -> Any:
    from aiohttp import web

    async def state(request: web.Request) -> web.Response:
        return web.json_response(server.state())

    async def sent(request: web.Request) -> web.Response:
        return web.json_response(server.state()["sent"])

    async def inject(request: web.Request) -> web.Response:
        body = await request.json()
        kwargs = {
            "mention_ids": body.get("mention_ids", []),
            "message_id": body.get("id"),
            "timestamp": body.get("timestamp"),
            "msg_type": body.get("type", TEXT),
        }
        message_id = server.add_message(
            body["talker"], body["text"], room=body.get("room"), **kwargs
        )
        delivered = server.redeliver(message_id)
        return web.json_response({"message_id": message_id, "delivered": delivered})

    async def emit(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"delivered": server.emit(int(body["type"]), body.get("payload", {}))}
        )

    async def redeliver(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"delivered": server.redeliver(body["id"])})

    async def topic(request: web.Request) -> web.Response:
        body = await request.json()
        done = server.change_topic(body["room"], body["topic"], body.get("changer", ""))
        return web.json_response({"delivered": done})

    async def join(request: web.Request) -> web.Response:
        body = await request.json()
        done = server.join(
            body["room"], body["members"], body.get("inviter", ""), body.get("names")
        )
        return web.json_response({"delivered": done})

    async def leave(request: web.Request) -> web.Response:
        body = await request.json()
        done = server.leave(body["room"], body["members"], body.get("remover", ""))
        return web.json_response({"delivered": done})

    async def end_stream(request: web.Request) -> web.Response:
        server.end_stream()
        return web.json_response({"ok": True})

    async def dongs(request: web.Request) -> web.Response:
        body = await request.json()
        server.answer_dongs = bool(body.get("answer", True))
        return web.json_response({"answer_dongs": server.answer_dongs})

    async def send_delay(request: web.Request) -> web.Response:
        body = await request.json()
        server.send_delay = max(0.0, float(body.get("seconds", 0.0)))
        return web.json_response({"send_delay": server.send_delay})

    app = web.Application()
    app.add_routes(
        [
            web.get("/state", state),
            web.get("/sent", sent),
            web.post("/inject", inject),
            web.post("/emit", emit),
            web.post("/redeliver", redeliver),
            web.post("/topic", topic),
            web.post("/join", join),
            web.post("/leave", leave),
            web.post("/end-stream", end_stream),
            web.post("/dongs", dongs),
            web.post("/send-delay", send_delay),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    await site.start()
    return runner


async def _main(args: argparse.Namespace) -> None:
    world = FakeWorld.default()
    if args.world:
        world = FakeWorld.from_json(json.loads(Path(args.world).read_text("utf-8")))
    sent_file = Path(args.sent_file) if args.sent_file else None
    server = FakePuppetServer(world, echo_self=not args.no_echo, sent_file=sent_file)
    grpc_port = await server.start(args.port)
    runner = await _serve_control(server, args.control_port)
    control_port = runner.addresses[0][1]
    print(f"READY grpc={grpc_port} control={control_port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the fake server as a process (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_puppet")
    parser.add_argument("--port", type=int, default=0, help="gRPC port on 127.0.0.1")
    parser.add_argument("--control-port", type=int, default=0, help="HTTP control port")
    parser.add_argument("--world", help="JSON file describing contacts and rooms")
    parser.add_argument("--sent-file", help="append every sent message here (JSONL)")
    parser.add_argument("--no-echo", action="store_true", help="do not echo own sends")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
