"""The one protocol between the bot and any chat: WeChat, the simulator, a replay file.

Nothing outside ``bot/channels/wechaty*.py`` knows about the wechaty SDK; everything
else sees :class:`IncomingMessage` going in and :class:`OutgoingMessage` going out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

MENTION_SEPARATOR = "\u2005"


@dataclass(frozen=True)
class IncomingMessage:
    """A message as the bot sees it, whatever channel brought it."""

    message_id: str
    room_id: str | None  # None for a private message
    talker_id: str
    talker_name: str
    text: str
    timestamp: datetime  # timezone-aware
    room_topic: str = ""
    mention_ids: tuple[str, ...] = ()
    mention_names: tuple[str, ...] = ()
    mentions_bot: bool = False
    is_self: bool = False
    kind: str = "text"  # text | image | other; only text is acted on


@dataclass(frozen=True)
class OutgoingMessage:
    """One message the bot sends; the outbox stores it before any channel sees it."""

    room_id: str
    text: str = ""
    mention_ids: tuple[str, ...] = ()
    mention_names: tuple[str, ...] = ()
    image_path: Path | None = None
    outbox_id: int | None = None


@dataclass
class ChannelHealth:
    """What a channel knows about its own connection."""

    connected: bool = False
    since: datetime | None = None
    last_event: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Deliver = Callable[[IncomingMessage], Awaitable[None]]


class ChannelSendError(Exception):
    """A send failed; ``retryable`` says whether the outbox should try again."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChatChannel(Protocol):
    """A place messages come from and replies go to."""

    name: str

    async def start(self, deliver: Deliver) -> None:
        """Begin delivering incoming messages to ``deliver``; returns once running."""

    async def stop(self) -> None:
        """Stop delivering and release every resource."""

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send one message; returns the platform's message id when it has one."""

    def health(self) -> ChannelHealth:
        """The connection state, for logs and ``/health``."""


class ConfirmsDelivery(Protocol):
    """A channel that can say afterwards which outbox rows it delivered.

    The outbox asks it at start-up about the rows a crash caught between the send and
    its "sent" mark, and sends again only what never arrived. A channel without this
    method (WeChat has no idempotency key) leaves those rows to ``outbox.in_doubt``.
    """

    async def delivered(self, outbox_ids: Sequence[int]) -> set[int]:
        """Which of ``outbox_ids`` this channel has delivered."""


def mention_prefix(names: Sequence[str]) -> str:
    """The text WeChat shows for mentions: ``@name`` plus U+2005 for each."""
    return "".join(f"@{name}{MENTION_SEPARATOR}" for name in names if name)
