"""What a handler gets: the message, who sent it, where, and the bot's services.

Handlers take a :class:`MessageContext` and return nothing; they queue replies with
``ctx.reply(...)``. Every database write of one message, its replies included, is
one transaction, so a crash either keeps all of it or none of it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import IncomingMessage
from bot.config import Config, GridConfig
from bot.normalize import NormalizedText
from bot.privacy import mask_personal
from handlers.intents import Classification

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.outbox import Outbox
    from handlers.router import Router
    from models.db import Database

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Long-lived parts every handler may use; built once by the app."""

    config: Config
    db: Database
    clock: Clock
    router: Router
    outbox: Outbox
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()

    @asynccontextmanager
    async def transaction(self, session: AsyncSession | None = None
                          ) -> AsyncIterator[AsyncSession]:
        """The caller's open session if it passes one, else a transaction of its own."""
        if session is not None:
            yield session
            return
        async with self.db.session() as own:
            yield own


@dataclass
class StaffInfo:
    """A staff member's role, looked up by WeChat id."""

    member_id: str
    name: str
    role: str
    grids: tuple[str, ...] = ()

    def covers(self, grid_id: str | None) -> bool:
        """Whether this staff member may act on the given grid."""
        if self.role in ("管理员", "居委会") or not self.grids:
            return True
        return grid_id in self.grids


@dataclass
class Reply:
    """One queued reply; turned into outbox rows by the pipeline."""

    room_id: str
    text: str
    mention_ids: tuple[str, ...] = ()
    mention_names: tuple[str, ...] = ()
    image_path: str = ""
    source: str = "reply"


@dataclass
class MessageContext:
    """One incoming message being handled, with a session in an open transaction."""

    services: Services
    session: AsyncSession
    message: IncomingMessage
    norm: NormalizedText
    grid: GridConfig | None
    staff: StaffInfo | None
    classification: Classification | None = None
    replies: list[Reply] = field(default_factory=list)
    outcome: str = ""

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def now(self) -> datetime:
        return self.services.now()

    @property
    def sender_id(self) -> str:
        return self.message.talker_id

    @property
    def sender_name(self) -> str:
        return self.message.talker_name

    @property
    def room_id(self) -> str:
        """Where replies go: the group, or the sender for a private message."""
        return self.message.room_id or self.message.talker_id

    @property
    def is_private(self) -> bool:
        return self.message.room_id is None

    @property
    def addressed(self) -> bool:
        """The message is meant for the bot: an @-mention or a private message."""
        return self.message.mentions_bot or self.is_private

    def reply(self, text: str, *, mention_sender: bool = False, mask: bool = True,
              room_id: str | None = None, mention_ids: tuple[str, ...] = (),
              mention_names: tuple[str, ...] = (), source: str = "reply") -> None:
        """Queue a reply; phone and ID numbers are masked unless ``mask`` is False."""
        if mask:
            text = mask_personal(text)
        if mention_sender and not self.is_private:
            mention_ids = (self.sender_id, *mention_ids)
            mention_names = (self.sender_name, *mention_names)
        self.replies.append(
            Reply(room_id or self.room_id, text, mention_ids, mention_names, source=source)
        )

    def tell(self, room_id: str, text: str, *, mention_ids: tuple[str, ...] = (),
             mention_names: tuple[str, ...] = (), source: str = "notify") -> None:
        """Queue a message to another room or person (staff, the staff group)."""
        self.replies.append(Reply(room_id, mask_personal(text), mention_ids, mention_names,
                                  source=source))
