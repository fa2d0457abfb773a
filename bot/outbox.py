"""The outbox: every outgoing message is stored, then sent in order, paced, retried.

Rows are written in the same transaction as whatever caused them, so a crash either
keeps the reply or never made it. One worker sends them: in id order within a room,
at least ``room_interval_seconds`` apart in a room and ``global_interval_seconds``
apart overall (WeChat restricts accounts that send too fast, field report B28), and
retries a failed send with back-off until ``max_attempts``. Pending rows survive a
restart and go out after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChannelSendError, ChatChannel, OutgoingMessage
from bot.clock import Clock
from bot.config import OutboxConfig
from models.db import Database
from models.tables import OutboundMessage

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def split_text(text: str, limit: int) -> list[str]:
    """Split a long text into parts of at most ``limit`` characters, at line breaks."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # a single over-long line is cut hard
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


class Outbox:
    """Stores outgoing messages and sends them through one channel."""

    def __init__(self, db: Database, clock: Clock, config: OutboxConfig,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.db = db
        self.clock = clock
        self.config = config
        self._sleep = sleep
        self._channel: ChatChannel | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._room_ready: dict[str, float] = {}
        self._global_ready = 0.0
        self._sending = asyncio.Lock()  # one pass at a time, or a row could go out twice
        self.sent_count = 0

    # -- writing ---------------------------------------------------------------

    def add(self, session: AsyncSession, room_id: str, text: str = "", *,
            mention_ids: Iterable[str] = (), mention_names: Iterable[str] = (),
            image_path: str | Path = "", source: str = "",
            not_before: datetime | None = None) -> list[OutboundMessage]:
        """Queue a message inside the caller's transaction; long texts become parts."""
        now = self.clock.now()
        rows = []
        parts = split_text(text, self.config.max_chars) if text else [""]
        for index, part in enumerate(parts):
            rows.append(OutboundMessage(
                room_id=room_id, text=part,
                mention_ids=list(mention_ids) if index == 0 else [],
                mention_names=list(mention_names) if index == 0 else [],
                image_path=str(image_path) if index == len(parts) - 1 else "",
                source=source, status="pending", created_at=now, not_before=not_before,
            ))
        session.add_all(rows)
        return rows

    def wake(self) -> None:
        """Tell the worker there is something new to send."""
        self._wake.set()

    # -- sending ---------------------------------------------------------------

    async def start(self, channel: ChatChannel) -> None:
        self._channel = channel
        self._stopping = False
        pending = await self.pending_count()
        if pending:
            log.info("outbox resuming pending=%d", pending)
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self, drain_seconds: float = 0.0) -> None:
        """Stop the worker; what is unsent stays pending for the next start."""
        if self._task is None:
            return
        if drain_seconds > 0:
            deadline = asyncio.get_running_loop().time() + drain_seconds
            while await self.pending_count() and asyncio.get_running_loop().time() < deadline:
                self.wake()
                await asyncio.sleep(0.05)
        # Let the worker finish the row it is on: cancelling it inside a transaction
        # would leave SQLite locked for whoever comes next.
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5.0)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
        left = await self.pending_count()
        log.info("outbox stopped pending=%d", left)

    async def pending_count(self) -> int:
        from sqlalchemy import func

        async with self.db.session() as session:
            return int(await session.scalar(
                select(func.count()).select_from(OutboundMessage)
                .where(OutboundMessage.status == "pending")
            ) or 0)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                sent_any = await self.send_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must survive a bad row or a DB hiccup
                log.exception("outbox pass failed; retrying shortly")
                sent_any = False
                await self._sleep(1.0)
            if not sent_any and not self._stopping:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                except TimeoutError:
                    pass

    async def send_due(self, limit: int = 200) -> bool:
        """Send every message that is due now, paced; returns whether any was sent."""
        assert self._channel is not None, "outbox started without a channel"
        async with self._sending:
            return await self._send_pass(limit)

    async def _send_pass(self, limit: int) -> bool:
        now = self.clock.now()
        async with self.db.session() as session:
            rows = list(await session.scalars(
                select(OutboundMessage).where(OutboundMessage.status == "pending")
                .order_by(OutboundMessage.id).limit(limit)
            ))
        blocked: set[str] = set()
        sent_any = False
        for row in rows:
            if self._stopping:
                break
            if row.room_id in blocked:
                continue
            if row.not_before and row.not_before > now:
                blocked.add(row.room_id)  # keep the room's order
                continue
            await self._pace(row.room_id)
            ok = await self._send_one(row)
            sent_any = sent_any or ok
            if not ok:
                blocked.add(row.room_id)
        return sent_any

    async def _pace(self, room_id: str) -> None:
        loop = asyncio.get_running_loop()
        ready = max(self._room_ready.get(room_id, 0.0), self._global_ready)
        wait = ready - loop.time()
        if wait > 0:
            await self._sleep(wait)
        now = loop.time()
        self._room_ready[room_id] = now + self.config.room_interval_seconds
        self._global_ready = now + self.config.global_interval_seconds

    async def _send_one(self, row: OutboundMessage) -> bool:
        assert self._channel is not None
        message = OutgoingMessage(
            room_id=row.room_id, text=row.text,
            mention_ids=tuple(row.mention_ids or ()),
            mention_names=tuple(row.mention_names or ()),
            image_path=Path(row.image_path) if row.image_path else None,
            outbox_id=row.id,
        )
        try:
            platform_id = await self._channel.send(message)
        except ChannelSendError as exc:
            await self._failed(row, str(exc), retryable=exc.retryable)
            return False
        except Exception as exc:  # noqa: BLE001 - a channel bug must not kill the outbox
            log.exception("outbox send crashed outbox_id=%s", row.id)
            await self._failed(row, type(exc).__name__, retryable=True)
            return False

        async with self.db.session() as session:
            await session.execute(
                update(OutboundMessage).where(OutboundMessage.id == row.id).values(
                    status="sent", sent_at=self.clock.now(), attempts=row.attempts + 1,
                    platform_id=platform_id or "",
                )
            )
        self.sent_count += 1
        log.info("outbox sent outbox_id=%s room=%s source=%s", row.id, row.room_id, row.source)
        return True

    async def _failed(self, row: OutboundMessage, error: str, *, retryable: bool) -> None:
        attempts = row.attempts + 1
        give_up = not retryable or attempts >= self.config.max_attempts
        delay = min(2 ** attempts, 300)
        async with self.db.session() as session:
            await session.execute(
                update(OutboundMessage).where(OutboundMessage.id == row.id).values(
                    attempts=attempts, last_error=error[:250],
                    status="failed" if give_up else "pending",
                    not_before=self.clock.now() + timedelta(seconds=delay),
                )
            )
        level = logging.ERROR if give_up else logging.WARNING
        log.log(level, "outbox send failed outbox_id=%s room=%s attempts=%d give_up=%s error=%s",
                row.id, row.room_id, attempts, give_up, error)
