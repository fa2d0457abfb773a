"""The message pipeline: journal, filter, normalise, dispatch, queue the replies.

    journal (unique on message id)  →  skip own / stale / non-text
      →  normalise once  →  command | conversation reply | routed intent | nothing
      →  replies into the outbox, in the same transaction as the effects

A message is journalled in its own transaction before it is acted on, so a crash
leaves it ``pending`` and :meth:`Pipeline.resume` handles it at the next start; a
redelivered id finds its journal row and does nothing twice. One failing message is
logged and marked ``error``; it never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time as monotonic
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.channels.base import IncomingMessage
from bot.context import MessageContext, Services, StaffInfo
from bot.intake_buffer import (
    DB_TROUBLE,
    FULL_NOTICE,
    TROUBLE_NOTICE,
    IntakeBuffer,
    db_reason,
)
from bot.normalize import normalize
from handlers.intents import Intent
from models.tables import InboundMessage, Member, StaffRole

log = logging.getLogger(__name__)

ContextHandler = Callable[[MessageContext], Awaitable[bool]]
IntentHandler = Callable[[MessageContext], Awaitable[None]]

APOLOGY = "抱歉，刚才处理出了点问题，工作人员会尽快查看。"
HELP_HINT = (
    "您好，我是{bot}。有事直接说就行，比如“3号楼楼道灯坏了”“谢谢王师傅帮忙修水管”"
    "“明天上午九点提醒我去体检”。"
)


class Pipeline:
    """Turns incoming messages into effects and replies."""

    def __init__(self, services: Services) -> None:
        from handlers import registry

        self.services = services
        self.commands = registry.commands()
        self.context_handlers: list[ContextHandler] = registry.context_handlers()
        self.intent_handlers: dict[Intent, IntentHandler] = registry.intent_handlers()
        self._lock = asyncio.Lock()
        self.stats: dict[str, int] = {}
        self.intake = IntakeBuffer()
        self._draining = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None

    # -- entry points ------------------------------------------------------------

    async def deliver(self, message: IncomingMessage) -> str:
        """Handle one message from a channel; returns its outcome for logs and replay."""
        started = monotonic.perf_counter()
        if self.intake.messages:  # the database is sick: queue behind, in order
            return await self._hold(message)
        async with self._lock:
            try:
                journal_id = await self._journal(message)
            except DB_TROUBLE as exc:
                return await self._hold(message, exc)
            if journal_id is None:
                self._count("duplicate")
                return "duplicate"
            outcome = await self._process(journal_id, message)
        self._count(outcome)
        log.info("message handled message_id=%s room=%s outcome=%s ms=%.1f",
                 message.message_id, message.room_id, outcome,
                 (monotonic.perf_counter() - started) * 1000)
        return outcome

    async def resume(self) -> int:
        """Process messages journalled before a crash but never finished."""
        async with self.services.db.session() as session:
            rows = list(await session.scalars(
                select(InboundMessage).where(InboundMessage.status == "pending")
                .order_by(InboundMessage.id)
            ))
        for row in rows:
            message = IncomingMessage(
                message_id=row.message_id, room_id=row.room_id, talker_id=row.talker_id,
                talker_name=row.talker_name, text=row.text or "", timestamp=row.sent_at,
                mention_ids=tuple(row.mention_ids or ()), mentions_bot=row.mentions_bot,
            )
            async with self._lock:
                outcome = await self._process(row.id, message, resumed=True)
            self._count(outcome)
        if rows:
            log.info("journal resumed count=%d", len(rows))
        return len(rows)

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

    # -- a sick database -------------------------------------------------------------

    async def _hold(self, message: IncomingMessage, exc: BaseException | None = None) -> str:
        intake = self.intake
        if not intake.in_trouble:
            intake.in_trouble = True
            log.error("database cannot store incoming messages; holding them in memory "
                      "capacity=%d error=%s", intake.capacity, db_reason(exc))
            await self._tell_staff(TROUBLE_NOTICE.format(capacity=intake.capacity))
        if not intake.push(message):
            log.error("intake buffer full; message dropped message_id=%s room=%s talker=%s",
                      message.message_id, message.room_id, message.talker_id)
            if not intake.told_full:
                intake.told_full = True
                await self._tell_staff(FULL_NOTICE)
            self._count("dropped")
            return "dropped"
        self._start_retrying()
        self._count("held")
        return "held"

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

    # -- steps ---------------------------------------------------------------------

    async def _journal(self, message: IncomingMessage) -> int | None:
        services = self.services
        grid = services.config.grid_for_room(message.room_id, message.room_topic)
        row = InboundMessage(
            message_id=message.message_id, channel="", room_id=message.room_id,
            grid_id=grid.id if grid else None, talker_id=message.talker_id,
            talker_name=message.talker_name[:128], text=message.text,
            mention_ids=list(message.mention_ids), mentions_bot=message.mentions_bot,
            sent_at=message.timestamp, received_at=services.now(), status="pending",
        )
        try:
            async with services.db.session() as session:
                session.add(row)
        except IntegrityError:
            log.debug("duplicate message ignored message_id=%s", message.message_id)
            return None
        return row.id

    async def _process(self, journal_id: int, message: IncomingMessage,
                       resumed: bool = False, retry: bool = False) -> str:
        services = self.services
        skip = self._skip_reason(message, resumed)
        if skip:
            await self._mark(journal_id, "ignored", skip)
            return skip
        try:
            async with services.db.session() as session:
                ctx = await self._context(session, message)
                await self._dispatch(ctx)
                for reply in ctx.replies:
                    services.outbox.add(
                        session, reply.room_id, reply.text, mention_ids=reply.mention_ids,
                        mention_names=reply.mention_names, image_path=reply.image_path,
                        source=f"{reply.source}:{message.message_id}"[:64],
                    )
                outcome = ctx.outcome or "none"
                await session.execute(
                    update(InboundMessage).where(InboundMessage.id == journal_id).values(
                        status="done", outcome=outcome[:64], processed_at=services.now())
                )
        except DB_TROUBLE as exc:  # journalled but not handled: try again later
            log.error("database failed while handling message_id=%s; retrying later "
                      "error=%s", message.message_id, db_reason(exc))
            if not retry:
                self.intake.deferred.append((journal_id, message))
                self._start_retrying()
            return "deferred"
        except Exception:  # noqa: BLE001 - one failing message never stops the others
            log.exception("message failed message_id=%s room=%s",
                          message.message_id, message.room_id)
            await self._fail(journal_id, message)
            return "error"
        if ctx.replies:
            services.outbox.wake()
        return outcome

    def _skip_reason(self, message: IncomingMessage, resumed: bool) -> str:
        config = self.services.config
        if message.is_self or message.talker_id == config.community.bot_id:
            return "own"
        if message.kind != "text" or not message.text.strip():
            return "not-text"
        if not resumed:
            age = self.services.now() - message.timestamp
            if age > timedelta(minutes=config.stale_minutes):
                return "stale"
        return ""

    async def _context(self, session, message: IncomingMessage) -> MessageContext:  # type: ignore[no-untyped-def]
        services = self.services
        config = services.config
        grid = config.grid_for_room(message.room_id, message.room_topic)
        bot_id = config.community.bot_id
        others = [n for i, n in zip(message.mention_ids, message.mention_names) if i != bot_id]
        names = [n for i, n in zip(message.mention_ids, message.mention_names) if i == bot_id]
        names += list(message.mention_names[len(message.mention_ids):])
        if message.mentions_bot:
            names.append(config.community.bot_name)
        norm = normalize(message.text, names, limit=config.max_message_chars, keep_names=others)

        member = await session.get(Member, message.talker_id)
        now = services.now()
        if member is None:
            member = Member(id=message.talker_id, name=message.talker_name[:128],
                            grid_id=grid.id if grid else None, first_seen=now, last_seen=now)
            session.add(member)
        else:
            member.last_seen = now
            if message.talker_name:
                member.name = message.talker_name[:128]
            if grid and not member.grid_id:
                member.grid_id = grid.id

        role = await session.get(StaffRole, message.talker_id)
        staff = None
        if role is not None and role.active:
            staff = StaffInfo(role.member_id, role.name or message.talker_name, role.role,
                              tuple(role.grids or ()))
        return MessageContext(services, session, message, norm, grid, staff)

    async def _dispatch(self, ctx: MessageContext) -> None:
        if await self.commands.handle(ctx):
            return
        for handler in self.context_handlers:
            if await handler(ctx):
                return

        ctx.classification = self.services.router.classify(
            ctx.norm.for_routing(), addressed=ctx.addressed
        )
        verdict = ctx.classification
        acts = verdict.intent is not Intent.NONE and (ctx.addressed or verdict.confident)
        if acts:
            await self.intent_handlers[verdict.intent](ctx)
            ctx.outcome = ctx.outcome or verdict.intent.value
        elif ctx.addressed:
            ctx.reply(HELP_HINT.format(bot=ctx.config.community.bot_name), mention_sender=True)
            ctx.outcome = "help"
        else:
            ctx.outcome = "none"

    async def _mark(self, journal_id: int, status: str, outcome: str) -> None:
        async with self.services.db.session() as session:
            await session.execute(
                update(InboundMessage).where(InboundMessage.id == journal_id).values(
                    status=status, outcome=outcome, processed_at=self.services.now())
            )

    async def _fail(self, journal_id: int, message: IncomingMessage) -> None:
        try:
            async with self.services.db.session() as session:
                await session.execute(
                    update(InboundMessage).where(InboundMessage.id == journal_id).values(
                        status="error", outcome="error", processed_at=self.services.now())
                )
                if message.mentions_bot or message.room_id is None:
                    self.services.outbox.add(
                        session, message.room_id or message.talker_id, APOLOGY,
                        source=f"error:{message.message_id}"[:64])
            self.services.outbox.wake()
        except Exception:  # noqa: BLE001
            log.exception("could not record failure message_id=%s", message.message_id)

    def _count(self, outcome: str) -> None:
        self.stats[outcome] = self.stats.get(outcome, 0) + 1
