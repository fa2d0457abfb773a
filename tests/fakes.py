"""Test doubles at the seams: a chat channel that records, and message factories."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from bot.channels.base import (
    ChannelHealth,
    ChannelSendError,
    Deliver,
    IncomingMessage,
    OutgoingMessage,
)

_ids = itertools.count(1)


class RecordingChannel:
    """A channel that keeps what the bot sends; ``fail_next`` makes sends fail."""

    name = "recording"

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.deliver: Deliver | None = None
        self.fail_next = 0

    async def start(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def stop(self) -> None:
        self.deliver = None

    def health(self) -> ChannelHealth:
        return ChannelHealth(connected=self.deliver is not None)

    async def send(self, message: OutgoingMessage) -> str | None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise ChannelSendError("发送消息过于频繁", retryable=True)
        self.sent.append(message)
        return f"out-{len(self.sent)}"

    async def delivered(self, outbox_ids: list[int]) -> set[int]:
        return {m.outbox_id for m in self.sent if m.outbox_id in outbox_ids}

    def texts(self, room_id: str | None = None) -> list[str]:
        return [m.text for m in self.sent if room_id is None or m.room_id == room_id]


def make_message(text: str, *, room: str | None = "grid-01", sender: str = "wxid_resident_001",
                 name: str = "张阿姨", at: datetime | None = None, message_id: str | None = None,
                 mentions: tuple[str, ...] = (), mention_names: tuple[str, ...] = (),
                 mentions_bot: bool = False, topic: str = "", is_self: bool = False,
                 kind: str = "text") -> IncomingMessage:
    """An incoming message with sensible defaults for tests."""
    return IncomingMessage(
        message_id=message_id or f"t-{next(_ids)}", room_id=room, talker_id=sender,
        talker_name=name, text=text, timestamp=at or datetime.now(UTC), room_topic=topic,
        mention_ids=mentions, mention_names=mention_names, mentions_bot=mentions_bot,
        is_self=is_self, kind=kind,
    )
