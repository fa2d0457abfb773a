"""A sick database: holding incoming messages, retrying, telling staff, the spool.

A read-only file, a full disk, a lock that never clears or a server that went away
makes the journal write fail. :class:`SickDatabase` (a part of
:class:`~bot.pipeline.Pipeline`) then keeps each new message in the bounded
:class:`~bot.intake_buffer.IntakeBuffer` and on disk in the
:class:`~bot.intake_spool.IntakeSpool`, retries with back-off, tells staff once per
episode, and handles everything held, in order, when the database writes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from bot.channels.base import IncomingMessage
from bot.context import Services
from bot.intake_buffer import (
    DB_TROUBLE,
    FULL_NOTICE,
    TROUBLE_NOTICE,
    IntakeBuffer,
    db_reason,
)
from bot.intake_spool import IntakeSpool

if TYPE_CHECKING:
    from bot.pipeline import _Waiting

log = logging.getLogger("bot.pipeline")

MAX_BATCH = 200  # messages sharing one transaction


class SickDatabase:
    """The pipeline's side that deals with a database that cannot write.

    Mixed into :class:`~bot.pipeline.Pipeline`, which provides ``_journal``,
    ``_journal_batch``, ``_process`` and ``_count``.
    """

    services: Services
    intake: IntakeBuffer
    spool: IntakeSpool
    _lock: asyncio.Lock
    _draining: asyncio.Lock
    _retry: asyncio.Task[None] | None

    async def drain_intake(self) -> bool:
        """Handle what waited for the database; returns whether nothing waits any more."""
        intake = self.intake
        async with self._draining:
            try:
                while intake.deferred:
                    journal_id, message = intake.deferred[0]
                    async with self._lock:
                        outcome = await self._process(journal_id, message, resumed=True,
                                                      retry=True)
                    if outcome == "deferred":
                        return False
                    intake.deferred.pop(0)
                    self._count(outcome)
                while intake.messages:
                    message = intake.messages[0]
                    async with self._lock:
                        journal_id = await self._journal(message)
                        intake.messages.popleft()
                        if journal_id is None:
                            continue
                        outcome = await self._process(journal_id, message, resumed=True)
                    self._count(outcome)
                    if outcome == "deferred":
                        return False
                await self._clear_spool()
            except DB_TROUBLE:
                return False
            if intake.in_trouble:
                log.warning("database writable again; held messages handled count=%d "
                            "dropped=%d", intake.held_total, len(intake.dropped))
                await self._tell_staff(intake.recovered_notice())
                intake.reset()
            return await self._flush_notices()

    async def stop(self) -> None:
        """Stop retrying; whatever still waits for the database is named in the log."""
        if self.intake.waiting:
            await self.drain_intake()
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        held = [m.message_id for m in self.intake.messages]
        held += [m.message_id for _, m in self.intake.deferred]
        if held:
            log.error("stopping with messages the database never took count=%d ids=%s",
                      len(held), ",".join(held))
        for notice in self.intake.notices:
            log.error("staff notice never stored: %s", notice)
        if self.spool.path is not None and self.intake.messages:
            log.warning("held messages kept on disk for the next start count=%d "
                        "path=%s", self.spool.count, self.spool.path)
        await asyncio.to_thread(self.spool.close)

    async def _hold(self, batch: list[_Waiting],
                    exc: BaseException | None = None) -> None:
        """Keep a batch for later: on disk first, then in memory; never silently."""
        intake = self.intake
        if not intake.in_trouble:
            intake.in_trouble = True
            log.error("database cannot store incoming messages; holding them "
                      "capacity=%d spool=%s error=%s", intake.capacity,
                      self.spool.folder, db_reason(exc))
            await self._tell_staff(TROUBLE_NOTICE.format(capacity=intake.capacity))
        room = max(intake.capacity - len(intake.messages), 0)
        await self._spool([w.message for w in batch[:room]])
        for waiting in batch:
            message = waiting.message
            if not intake.push(message):
                log.error("intake buffer full; message dropped message_id=%s room=%s "
                          "talker=%s", message.message_id, message.room_id,
                          message.talker_id)
                if not intake.told_full:
                    intake.told_full = True
                    await self._tell_staff(FULL_NOTICE)
                self._count("dropped")
                waiting.future.set_result("dropped")
                continue
            self._count("held")
            waiting.future.set_result("held")
        self._start_retrying()

    async def _spool(self, messages: list[IncomingMessage]) -> None:
        """Write messages about to be held to the spool, before anyone hears "held"."""
        if not messages:
            return
        spool = self.spool
        spool.capacity = self.intake.capacity  # one bound for memory and disk
        if await asyncio.to_thread(spool.append, messages, list(self.intake.messages)):
            return
        for message in messages:
            log.error("intake spool cannot store a held message; kept in memory only "
                      "message_id=%s room=%s", message.message_id, message.room_id)

    async def _clear_spool(self) -> None:
        """Remove the spool once nothing held remains unjournalled."""
        if self.spool.path is None:
            return
        async with self._lock:  # no hold is writing to it meanwhile
            if not self.intake.messages:
                await asyncio.to_thread(self.spool.clear)

    async def _recover_spool(self) -> None:
        """Journal what a crash left in the spool; hold it again if still sick."""
        messages = await asyncio.to_thread(self.spool.recover)
        if not messages:
            return
        log.warning("intake spool of an earlier run found count=%d path=%s",
                    len(messages), self.spool.path)
        fresh = done = 0
        try:
            async with self._lock:
                for done in range(0, len(messages), MAX_BATCH):
                    ids = await self._journal_batch(messages[done:done + MAX_BATCH])
                    fresh += sum(1 for i in ids if i is not None)
        except DB_TROUBLE as exc:  # still sick: held as if they had just arrived
            intake = self.intake
            rest = messages[done:]
            log.error("database cannot store the spooled messages; holding them "
                      "count=%d error=%s", len(rest), db_reason(exc))
            if not intake.in_trouble:
                intake.in_trouble = True
                await self._tell_staff(TROUBLE_NOTICE.format(capacity=intake.capacity))
            intake.messages.extend(rest)  # already on disk
            intake.held_total += len(rest)
            self._start_retrying()
            return
        log.info("intake spool journalled count=%d already_journalled=%d",
                 fresh, len(messages) - fresh)
        await asyncio.to_thread(self.spool.clear)

    def _start_retrying(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.create_task(self._retry_loop(), name="intake-retry")

    async def _retry_loop(self) -> None:
        attempt = 0
        while self.intake.waiting:
            await asyncio.sleep(self.intake.delay(attempt))
            attempt += 1
            try:
                if await self.drain_intake():
                    return
            except Exception:  # one bad message must not end the retries
                log.exception("intake retry failed attempt=%d", attempt)

    async def _tell_staff(self, text: str) -> None:
        """Queue a note for the staff group, or keep it until the outbox can write."""
        self.intake.notices.append(text)
        await self._flush_notices()

    async def _flush_notices(self) -> bool:
        services = self.services
        notices = self.intake.notices
        if not notices:
            return True
        try:
            async with services.db.session() as session:
                for text in notices:
                    services.outbox.add(session, services.config.community.staff_room, text,
                                        source="system:database")
        except DB_TROUBLE as exc:
            log.error("outbox cannot store a staff notice; kept in memory count=%d "
                      "error=%s", len(notices), db_reason(exc))
            self._start_retrying()
            return False
        notices.clear()
        services.outbox.wake()
        return True
