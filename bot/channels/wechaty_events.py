"""The WeChat channel's event bridge: SDK events in, ordered IncomingMessages out.

It replaces the SDK's bridge, which drops heartbeats and runs handlers
concurrently. Listeners run inline in stream order; a message's payload is read at
once (a few reads at a time) but routed in arrival order, then handed to one queue
per room, so the messages of a group are handled in order.
Payloads are read straight from the wire: the message type in the TypeScript
numbering (the SDK crashes on types >= 16), mention ids from the payload (never
from names), timestamps in seconds or milliseconds (``Message.age()`` is wrong).
A payload the broken link could not deliver is asked for again once reconnected.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from bot.channels import wechaty_compat
from bot.channels.base import Deliver, IncomingMessage
from bot.channels.wechaty_sdk import (
    DEDUPE_SIZE,
    FETCH_RETRIES,
    GIVE_UP_STATUSES,
    STOP,
    WIRE_MESSAGE_TYPES,
    WIRE_TEXT,
    RecentIds,
    Session,
    timestamp_from_payload,
)
from bot.clock import Clock
from bot.config import WechatyConfig

logger = logging.getLogger(__name__)

__all__ = ["EventBridge", "FetchedMessage"]


@dataclass
class FetchedMessage:
    """A message's payload, read before it is put in order."""

    message_id: str
    room_id: str | None
    talker_id: str
    talker_name: str
    text: str
    timestamp: datetime
    mention_ids: tuple[str, ...]
    mention_names: tuple[str, ...]


class EventBridge:
    """Incoming events of :class:`~bot.channels.wechaty.WechatyChannel` (a mixin)."""

    # State owned by the channel.
    _config: WechatyConfig
    _clock: Clock
    _deliver: Deliver | None
    _stopping: bool
    _session: Session | None
    _self_id: str
    _self_name: str
    _bot_id_hint: str
    _seen: RecentIds
    _intake: asyncio.Queue[Any]
    _room_queues: dict[str, asyncio.Queue[Any]]
    _room_workers: dict[str, asyncio.Task[None]]
    _fetch_limit: asyncio.Semaphore
    _retries: dict[str, int]
    _connected: asyncio.Event

    # Provided by the channel and the sender.
    _touch: Callable[[], None]
    _set_connected: Callable[..., None]
    _spawn: Callable[[Awaitable[Any]], None]
    _call: Callable[[Awaitable[Any]], Awaitable[Any]]
    _notify_room: Callable[[str, str, list[tuple[str, str]]], Awaitable[None]]

    # --- the event bridge (replaces the SDK's) ---------------------------------------

    def _bridge(self, session: Session, puppet: Any) -> None:
        handlers: dict[str, Callable[[Any], None]] = {
            "login": lambda p: self._on_login(session, p),
            "logout": lambda p: self._on_logout(session, p),
            "message": lambda p: self._on_message(session, p),
            "dong": lambda p: session.dong.set(),
            "heartbeat": lambda p: None,
            "ready": lambda p: None,
            "scan": lambda p: logger.warning(
                "wechaty account not logged in; scan on the gateway status=%s",
                getattr(p, "status", ""),
            ),
            "error": lambda p: logger.warning(
                "wechaty gateway error=%s",
                wechaty_compat.redact(str(getattr(p, "data", p))),
            ),
            "room-join": lambda p: self._on_room_change(session, "join", p),
            "room-leave": lambda p: self._on_room_change(session, "leave", p),
            "room-topic": lambda p: self._on_room_change(session, "topic", p),
        }
        for event, handler in handlers.items():
            puppet.on(event, self._guarded(session, event, handler))

    def _guarded(
        self, session: Session, event: str, handler: Callable[[Any], None]
    ) -> Callable[[Any], None]:
        # Sync listeners run inline, in stream order; an exception here would
        # otherwise end the SDK's event loop for this stream.
        def listener(payload: Any) -> None:
            if session.closed:
                return
            self._touch()
            try:
                handler(payload)
            except Exception:
                logger.exception("wechaty event handler failed event=%s", event)

        return listener

    def _on_login(self, session: Session, payload: Any) -> None:
        session.logged_in = True
        self._self_id = payload.contact_id
        self._last_error = ""
        self._set_connected(True, "login")
        logger.info(
            "wechaty logged in self_id=%s session=%d", self._self_id, session.number
        )
        self._spawn(self._load_self_name(session))

    def _on_logout(self, session: Session, payload: Any) -> None:
        session.logged_in = False
        self._set_connected(False, "logout")

    def _on_message(self, session: Session, payload: Any) -> None:
        message_id = payload.message_id
        if not message_id or not self._seen.add(message_id):
            logger.debug("wechaty duplicate message id=%s skipped", message_id)
            return
        fetch = asyncio.create_task(self._fetch(session, message_id))
        self._intake.put_nowait(
            functools.partial(self._route, session, message_id, fetch)
        )

    def _on_room_change(self, session: Session, kind: str, payload: Any) -> None:
        self._intake.put_nowait(
            functools.partial(self._room_event, session, kind, payload)
        )

    # --- incoming messages -------------------------------------------------------------

    async def _sequence(self) -> None:
        # Jobs run one by one in stream order, so a room's messages and its
        # topic changes reach the room queues in the order they happened.
        while True:
            job = await self._intake.get()
            if job is STOP:
                return
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("wechaty event processing failed")

    async def _fetch(self, session: Session, message_id: str) -> FetchedMessage | None:
        async with self._fetch_limit:
            stub = session.puppet.puppet_stub
            payload = await self._call(stub.message_payload(id=message_id))
            wire_type = int(payload.type)
            kind = WIRE_MESSAGE_TYPES.get(wire_type)
            if kind is None:
                logger.warning(
                    "wechaty message of unknown type skipped id=%s type=%d",
                    message_id,
                    wire_type,
                )
                return None
            if wire_type != WIRE_TEXT:
                logger.debug("wechaty message skipped id=%s kind=%s", message_id, kind)
                return None

            talker_id = payload.from_id
            if talker_id and talker_id in (self._self_id, self._bot_id_hint):
                logger.debug("wechaty own message skipped id=%s", message_id)
                return None

            room_id = payload.room_id or None
            now = self._clock.now()
            mention_ids = tuple(dict.fromkeys(i for i in payload.mention_ids if i))
            talker_name = await self._contact_name(session, talker_id)
            mention_names: list[str] = []
            for contact_id in mention_ids:
                for name in await self._display_names(session, room_id, contact_id):
                    if name and name not in mention_names:
                        mention_names.append(name)
            return FetchedMessage(
                message_id=message_id,
                room_id=room_id,
                talker_id=talker_id,
                talker_name=talker_name,
                text=payload.text or "",
                timestamp=timestamp_from_payload(payload.timestamp, now),
                mention_ids=mention_ids,
                mention_names=tuple(mention_names),
            )

    def _retry_later(self, message_id: str, error: Exception) -> None:
        status = getattr(getattr(error, "status", None), "name", "")
        attempts = self._retries.get(message_id, 0) + 1
        if status in GIVE_UP_STATUSES or attempts > FETCH_RETRIES or self._stopping:
            self._retries.pop(message_id, None)
            logger.warning(
                "wechaty message dropped id=%s status=%s", message_id, status
            )
            return
        if len(self._retries) >= DEDUPE_SIZE:
            self._retries.pop(next(iter(self._retries)))
        self._retries[message_id] = attempts
        self._spawn(self._refetch(message_id, attempts))

    async def _refetch(self, message_id: str, attempts: int) -> None:
        delays = self._config.backoff_seconds
        await asyncio.sleep(delays[min(attempts - 1, len(delays) - 1)])
        await self._connected.wait()
        session = self._session
        if session is None or session.closed or message_id in self._seen:
            return
        logger.info(
            "wechaty message payload retry id=%s attempt=%d", message_id, attempts
        )
        self._on_message(session, SimpleNamespace(message_id=message_id))

    async def _route(
        self,
        session: Session,
        message_id: str,
        fetch: asyncio.Task[FetchedMessage | None],
    ) -> None:
        try:
            fetched = await fetch
        except Exception as exc:
            # Forget the id so a redelivery gets another chance, and ask again
            # ourselves once connected: the gateway may still have the message.
            self._seen.discard(message_id)
            logger.warning(
                "wechaty message payload failed id=%s error=%s",
                message_id,
                type(exc).__name__,
            )
            self._retry_later(message_id, exc)
            return
        self._retries.pop(message_id, None)
        if fetched is None:
            return

        if session.closed and self._session is not None:
            session = self._session  # fetched just before a reconnect
        topic = (
            await self._room_topic(session, fetched.room_id) if fetched.room_id else ""
        )
        bot_ids = {i for i in (self._self_id, self._bot_id_hint) if i}
        incoming = IncomingMessage(
            message_id=fetched.message_id,
            room_id=fetched.room_id,
            talker_id=fetched.talker_id,
            talker_name=fetched.talker_name,
            text=fetched.text,
            timestamp=fetched.timestamp,
            room_topic=topic,
            mention_ids=fetched.mention_ids,
            mention_names=fetched.mention_names,
            mentions_bot=bool(bot_ids.intersection(fetched.mention_ids)),
            is_self=False,
            kind="text",
        )
        logger.info(
            "wechaty message id=%s room=%s talker=%s mentions=%d mentions_bot=%s",
            incoming.message_id,
            incoming.room_id,
            incoming.talker_id,
            len(incoming.mention_ids),
            incoming.mentions_bot,
        )
        logger.debug("wechaty message text=%r", incoming.text)
        self._enqueue(incoming.room_id or f"private:{incoming.talker_id}", incoming)

    def _enqueue(
        self, key: str, item: IncomingMessage | Callable[[], Awaitable[None]]
    ) -> None:
        queue = self._room_queues.get(key)
        if queue is None:
            queue = asyncio.Queue()
            self._room_queues[key] = queue
            self._room_workers[key] = asyncio.create_task(
                self._room_worker(key, queue), name=f"wechaty-room-{key}"
            )
        queue.put_nowait(item)

    async def _room_worker(self, key: str, queue: asyncio.Queue[Any]) -> None:
        while True:
            item = await queue.get()
            if item is STOP:
                queue.task_done()
                return
            try:
                if isinstance(item, IncomingMessage):
                    if self._deliver is not None:
                        await self._deliver(item)
                else:
                    await item()
            except asyncio.CancelledError:
                raise
            except Exception:
                message_id = getattr(item, "message_id", "-")
                logger.exception(
                    "wechaty handler failed queue=%s message_id=%s", key, message_id
                )
            finally:
                queue.task_done()

    # --- rooms and contacts ------------------------------------------------------------

    async def _room_topic(self, session: Session, room_id: str) -> str:
        try:
            room = session.bot.Room.load(room_id)
            if not room.is_ready():
                await self._call(room.ready())
            return room.payload.topic or ""
        except Exception as exc:
            logger.warning(
                "wechaty room payload failed room=%s error=%s",
                room_id,
                type(exc).__name__,
            )
            return ""

    async def _refresh_room(self, session: Session, room_id: str) -> None:
        # Room.ready(force_sync=True) returns early once ready (SDK notes, defect 7).
        room = session.bot.Room.load(room_id)
        room._payload = None
        try:
            await self._call(room.ready())
        except Exception as exc:
            logger.warning(
                "wechaty room refresh failed room=%s error=%s",
                room_id,
                type(exc).__name__,
            )

    async def _contact_name(self, session: Session, contact_id: str) -> str:
        if not contact_id:
            return ""
        try:
            contact = session.bot.Contact.load(contact_id)
            if not contact.is_ready():
                await self._call(contact.ready())
            return contact.name or ""
        except Exception as exc:
            logger.debug(
                "wechaty contact payload failed id=%s error=%s",
                contact_id,
                type(exc).__name__,
            )
            return ""

    async def _display_names(
        self, session: Session, room_id: str | None, contact_id: str
    ) -> list[str]:
        """The group nickname (if any) and the contact name of a member."""
        names: list[str] = []
        if room_id:
            try:
                member = await self._call(
                    session.puppet.room_member_payload(room_id, contact_id)
                )
                names += [member.room_alias, member.name]
            except Exception as exc:
                logger.debug(
                    "wechaty member payload failed room=%s id=%s error=%s",
                    room_id,
                    contact_id,
                    type(exc).__name__,
                )
        names.append(await self._contact_name(session, contact_id))
        return [n for n in dict.fromkeys(names) if n]

    async def _load_self_name(self, session: Session) -> None:
        name = await self._contact_name(session, self._self_id)
        if name:
            self._self_name = name

    async def _room_event(self, session: Session, kind: str, payload: Any) -> None:
        room_id = payload.room_id
        if session.closed or not room_id:
            return
        await self._refresh_room(session, room_id)
        if kind == "topic":
            logger.info("wechaty room topic changed room=%s", room_id)
            logger.debug("wechaty room topic new=%r", payload.new_topic)
            self._enqueue(
                room_id, functools.partial(self._notify_room, kind, room_id, [])
            )
            return

        ids = payload.invited_ids if kind == "join" else payload.removed_ids
        ids = [i for i in ids or [] if i]
        if self._self_id and self._self_id in ids:
            logger.warning("wechaty bot itself %s room=%s", kind, room_id)
            ids = [i for i in ids if i != self._self_id]
        members = [(i, await self._contact_name(session, i)) for i in ids]
        logger.info("wechaty room %s room=%s members=%d", kind, room_id, len(members))
        if members:
            self._enqueue(
                room_id, functools.partial(self._notify_room, kind, room_id, members)
            )
