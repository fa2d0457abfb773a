"""Replay: a chat export (JSON lines) fed through the same pipeline, as fast as it goes.

The bot's clock follows the messages' timestamps, so deadlines and reminders fall
where they would have on the day.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.channels.base import (
    ChannelHealth,
    Deliver,
    IncomingMessage,
    OutgoingMessage,
    mention_prefix,
)

log = logging.getLogger(__name__)


class ReplayFormatError(ValueError):
    """A line of the chat file is not a message; the text names the line."""


@dataclass
class SentRecord:
    room_id: str
    text: str
    mention_ids: tuple[str, ...]
    image: str


def read_messages(path: Path, bot_id: str, bot_name: str) -> Iterator[IncomingMessage | ReplayFormatError]:
    """Each line as a message, or a :class:`ReplayFormatError` for a bad line."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                stamp = datetime.fromisoformat(data["time"])
                if stamp.tzinfo is None:
                    raise ValueError("time has no offset")
                mentions = tuple(str(m) for m in data.get("mentions") or ())
                text = str(data["text"])
                yield IncomingMessage(
                    message_id=str(data["id"]), room_id=data.get("room") or None,
                    talker_id=str(data["sender"]), talker_name=str(data.get("sender_name", "")),
                    text=text, timestamp=stamp, room_topic=str(data.get("room_topic", "")),
                    mention_ids=mentions,
                    mention_names=tuple(bot_name if m == bot_id else "" for m in mentions),
                    mentions_bot=bot_id in mentions or f"@{bot_name}" in text,
                )
            except (ValueError, KeyError, TypeError) as exc:
                yield ReplayFormatError(f"line {number}: {exc}")


class ReplayChannel:
    """Collects what the bot sends while a file is replayed."""

    name = "replay"

    def __init__(self) -> None:
        self.sent: list[SentRecord] = []
        self._delivered: set[int] = set()
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    def health(self) -> ChannelHealth:
        return ChannelHealth(connected=self._deliver is not None)

    async def delivered(self, outbox_ids: Sequence[int]) -> set[int]:
        """The rows this replay collected; what an earlier process collected died with it."""
        return self._delivered.intersection(outbox_ids)

    async def send(self, message: OutgoingMessage) -> str | None:
        if message.outbox_id is not None:
            self._delivered.add(message.outbox_id)
        self.sent.append(SentRecord(message.room_id,
                                    mention_prefix(message.mention_names) + message.text,
                                    message.mention_ids,
                                    str(message.image_path or "")))
        return f"replay-{len(self.sent)}"
