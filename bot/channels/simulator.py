"""The built-in simulator: grid groups in a browser page, no WeChat needed.

A person picks a group and a speaker (a resident or a staff member), types, and sees
the bot's replies live over a websocket. This is ``weizhili run``'s default channel.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from datetime import UTC, datetime
from typing import Any

from bot.channels.base import (
    ChannelHealth,
    Deliver,
    IncomingMessage,
    OutgoingMessage,
    mention_prefix,
)
from bot.clock import Clock, SystemClock

log = logging.getLogger(__name__)

HISTORY = 200


class SimulatorChannel:
    """A chat channel whose groups live in the bot's own web page."""

    name = "simulator"

    def __init__(self, bot_id: str, bot_name: str, clock: Clock | None = None) -> None:
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.clock = clock or SystemClock()
        self._deliver: Deliver | None = None
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self._history: dict[str, deque[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._health = ChannelHealth()
        self.images: dict[str, str] = {}  # public name -> file path

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        now = self.clock.now()
        self._health = ChannelHealth(connected=True, since=now, last_event=now)
        log.info("simulator channel ready")

    async def stop(self) -> None:
        self._deliver = None
        self._health.connected = False
        for queue in list(self._listeners):
            queue.put_nowait({"type": "closed"})

    def health(self) -> ChannelHealth:
        return self._health

    # -- the page's side -----------------------------------------------------------

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        self._listeners.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._listeners.discard(queue)

    def history(self, room_id: str) -> list[dict[str, Any]]:
        return list(self._history.get(room_id, ()))

    async def post(self, room_id: str | None, talker_id: str, talker_name: str, text: str,
                   room_topic: str = "", mention_ids: tuple[str, ...] = ()) -> str:
        """A person typed in the page: show it to everyone and hand it to the bot."""
        now = self.clock.now()
        message_id = f"sim-{int(now.timestamp() * 1000)}-{next(self._ids)}"
        mentions_bot = self.bot_id in mention_ids or f"@{self.bot_name}" in text
        names = tuple(self.bot_name if i == self.bot_id else i for i in mention_ids)
        if mentions_bot and self.bot_id not in mention_ids:
            mention_ids = (*mention_ids, self.bot_id)
            names = (*names, self.bot_name)
        self._publish(room_id or talker_id, {
            "type": "message", "room": room_id or talker_id, "from": talker_id,
            "name": talker_name, "text": text, "bot": False, "at": now.isoformat(),
        })
        self._health.last_event = now
        if self._deliver is None:
            return message_id
        message = IncomingMessage(
            message_id=message_id, room_id=room_id, talker_id=talker_id,
            talker_name=talker_name, text=text, timestamp=now, room_topic=room_topic,
            mention_ids=mention_ids, mention_names=names, mentions_bot=mentions_bot,
        )
        await self._deliver(message)
        return message_id

    # -- the bot's side ------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> str | None:
        text = mention_prefix(message.mention_names) + message.text
        image = ""
        if message.image_path is not None:
            key = f"{message.outbox_id or next(self._ids)}.png"
            self.images[key] = str(message.image_path)
            image = f"/simulator/images/{key}"
        self._publish(message.room_id, {
            "type": "message", "room": message.room_id, "from": self.bot_id,
            "name": self.bot_name, "text": text, "image": image, "bot": True,
            "mentions": list(message.mention_ids),
            "at": datetime.now(UTC).isoformat(),
        })
        return f"sim-out-{message.outbox_id}"

    def _publish(self, room_id: str, event: dict[str, Any]) -> None:
        history = self._history.setdefault(room_id, deque(maxlen=HISTORY))
        history.append(event)
        for queue in list(self._listeners):
            if queue.full():
                continue  # a stalled page loses live events, not the bot
            queue.put_nowait(event)
