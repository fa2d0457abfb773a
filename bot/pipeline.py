"""The message pipeline: journal, filter, normalise, dispatch, queue the replies.

    journal (unique on message id)  →  skip own / stale / non-text
      →  normalise once  →  command | conversation reply | routed intent | nothing
      →  replies into the outbox, in the same transaction as the effects

A message is journalled in its own transaction before it is acted on, so a crash
leaves it ``pending`` and :meth:`Pipeline.resume` handles it at the next start; a
redelivered id finds its journal row and does nothing twice. One failing message is
logged and marked ``error``; it never stops the others.

Messages that arrive together share their transactions (group commit): whoever holds
the lock journals every waiting message in one transaction and handles them in a
second one. If a handler fails inside such a batch, the batch is rolled back and its
messages are handled again one by one, each in its own transaction, so the failure
stays with its own message.
"""

from __future__ import annotations

import asyncio
import logging
import time as monotonic
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.arrival import storable
from bot.channels.base import IncomingMessage
from bot.context import MessageContext, Services, StaffInfo
from bot.intake_buffer import DB_TROUBLE, IntakeBuffer, db_reason
from bot.intake_spool import IntakeSpool
from bot.normalize import normalize
from bot.pipeline_sick import MAX_BATCH, SickDatabase
from handlers.intents import Intent
from models.tables import InboundMessage, Member, StaffRole

log = logging.getLogger(__name__)

ContextHandler = Callable[[MessageContext], Awaitable[bool]]
IntentHandler = Callable[[MessageContext], Awaitable[None]]

KNOWN_MEMBERS = 200_000  # members remembered as stored before the memory is reset
_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


@dataclass
class _Waiting:
    """A message waiting for the pipeline, and the caller waiting for its outcome."""

    message: IncomingMessage
    future: asyncio.Future[str]
    before_each: Callable[[IncomingMessage], None] | None = None


APOLOGY = "抱歉，刚才处理出了点问题，工作人员会尽快查看。"
HELP_HINT = (
    "您好，我是{bot}。有事直接说就行，比如“3号楼楼道灯坏了”“谢谢王师傅帮忙修水管”"
    "“明天上午九点提醒我去体检”。"
)


class Pipeline(SickDatabase):
    """Turns incoming messages into effects and replies."""

    def __init__(self, services: Services) -> None:
        from handlers import registry

        self.services = services
        self.commands = registry.commands()
        self.context_handlers: list[ContextHandler] = registry.context_handlers()
        self.intent_handlers: dict[Intent, IntentHandler] = registry.intent_handlers()
        self._lock = asyncio.Lock()
        self.stats: dict[str, int] = {}
        size = services.config.intake.buffer_size
        self.intake = IntakeBuffer(capacity=size)
        self.spool = IntakeSpool(services.config.data_dir, size)  # the held, on disk
        self._draining = asyncio.Lock()
        self._retry: asyncio.Task[None] | None = None
        self._waiting: list[_Waiting] = []
        # Members known to be stored, with the name and grid stored: most messages
        # then need no member query; their last_seen is written once per batch.
        self._known: dict[str, tuple[str, str | None]] = {}
        self._seen: dict[str, datetime] = {}
        self._fresh: dict[str, tuple[str, str | None]] = {}  # learnt in the open batch
        self._absent: set[str] = set()  # senders of the open batch not stored yet

    # -- entry points ------------------------------------------------------------

    async def deliver(self, message: IncomingMessage) -> str:
        """Handle one message from a channel; returns its outcome for logs and replay."""
        return (await self.deliver_many([message]))[0]

    async def deliver_many(self, messages: Sequence[IncomingMessage],
                           before_each: Callable[[IncomingMessage], None] | None = None,
                           ) -> list[str]:
        """Handle messages in order, sharing transactions with whatever else waits.

        ``before_each`` runs just before a message is handled (replay sets its clock).
        """
        loop = asyncio.get_running_loop()
        mine = [_Waiting(storable(m), loop.create_future(), before_each)
                for m in messages]
        self._waiting.extend(mine)
        async with self._lock:
            while self._waiting and not all(w.future.done() for w in mine):
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                try:
                    await self._run_batch(batch)
                finally:
                    for waiting in batch:  # a bug must never leave a caller hanging
                        if not waiting.future.done():
                            waiting.future.set_result("error")
        return [w.future.result() for w in mine]

    async def resume(self) -> int:
        """Process messages journalled before a crash but never finished.

        Messages a crash left in the intake spool are journalled first, so they are
        among them.
        """
        await self._recover_spool()
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

    # -- batches ---------------------------------------------------------------------

    async def _run_batch(self, batch: list[_Waiting]) -> None:
        started = monotonic.perf_counter()
        if self.intake.messages:  # the database is sick: queue behind, in order
            await self._hold(batch)
            return
        try:
            journal_ids = await self._journal_batch([w.message for w in batch])
        except DB_TROUBLE as exc:
            await self._hold(batch, exc)
            return
        except Exception:  # noqa: BLE001 - one message the database refused: find it
            journal_ids = await self._journal_one_by_one(batch)

        todo: list[tuple[int, _Waiting]] = []
        for waiting, journal_id in zip(batch, journal_ids, strict=True):
            if waiting.future.done():  # held, or refused by the database, above
                continue
            if journal_id is None:
                log.debug("duplicate message ignored message_id=%s",
                          waiting.message.message_id)
                self._count("duplicate")
                waiting.future.set_result("duplicate")
            else:
                todo.append((journal_id, waiting))
        if not todo:
            return

        outcomes = await self._process_batch(todo)
        elapsed = (monotonic.perf_counter() - started) * 1000
        for (_, waiting), outcome in zip(todo, outcomes, strict=True):
            self._count(outcome)
            waiting.future.set_result(outcome)
            log.info("message handled message_id=%s room=%s outcome=%s batch=%d ms=%.1f",
                     waiting.message.message_id, waiting.message.room_id, outcome,
                     len(batch), elapsed)

    async def _journal_batch(self, messages: list[IncomingMessage]) -> list[int | None]:
        """Journal messages in one statement; ``None`` for an id already journalled.

        ``INSERT … ON CONFLICT DO NOTHING RETURNING`` on the journal table itself (no
        ORM objects): the ids it returns are the messages that are new.
        """
        values: dict[str, dict[str, object]] = {}
        for message in messages:
            values.setdefault(message.message_id, self._journal_values(message))
        table = InboundMessage.__table__
        insert = _INSERTS[self.services.db.dialect](table)
        statement = insert.on_conflict_do_nothing(index_elements=["message_id"]).returning(
            table.c.id, table.c.message_id)
        async with self.services.db.session() as session:
            connection = await session.connection()
            result = await connection.execute(statement, list(values.values()))
            new = {message_id: row_id for row_id, message_id in result.all()}
        ids: list[int | None] = []
        for message in messages:
            ids.append(new.pop(message.message_id, None))  # a repeat in the batch: None
        return ids

    async def _journal_one_by_one(self, batch: list[_Waiting]) -> list[int | None]:
        """Journal a batch the database refused as a whole, one message at a time.

        The message that cannot be stored ends as ``error`` (logged with its id); the
        others are journalled as usual. ``None`` marks both a repeat and that one.
        """
        ids: list[int | None] = []
        for index, waiting in enumerate(batch):
            try:
                ids.append(await self._journal(waiting.message))
            except DB_TROUBLE as exc:  # the database itself went away: hold the rest
                await self._hold(batch[index:], exc)
                return ids + [None] * (len(batch) - index)
            except Exception as exc:  # noqa: BLE001
                log.error("message could not be journalled message_id=%s error=%s",
                          waiting.message.message_id, type(exc).__name__)
                log.debug("journal failure", exc_info=True)
                self._count("error")
                waiting.future.set_result("error")
                ids.append(None)
        return ids

    async def _process_batch(self, todo: list[tuple[int, _Waiting]]) -> list[str]:
        services = self.services
        if len(todo) == 1:
            journal_id, waiting = todo[0]
            if waiting.before_each:
                waiting.before_each(waiting.message)
            return [await self._process(journal_id, waiting.message)]

        outcomes: list[str] = []
        wake = False
        try:
            async with services.db.session() as session:
                staff = await self._staff_roles(session)
                await self._load_members(session, [w.message for _, w in todo])
                marks = []
                for journal_id, waiting in todo:
                    message = waiting.message
                    if waiting.before_each:
                        waiting.before_each(message)
                    status, outcome, replies = await self._handle(session, message, staff)
                    wake = wake or replies
                    outcomes.append(outcome)
                    marks.append({"id": journal_id, "status": status, "outcome": outcome[:64],
                                  "processed_at": services.now()})
                await session.execute(update(InboundMessage), marks)
                await self._touch_members(session)
        except DB_TROUBLE as exc:  # journalled but not handled: try again later
            log.error("database failed while handling a batch of %d; retrying later "
                      "error=%s", len(todo), db_reason(exc))
            self._forget_batch()
            self.intake.deferred.extend((j, w.message) for j, w in todo)
            self._start_retrying()
            return ["deferred"] * len(todo)
        except Exception:  # noqa: BLE001 - isolate the failure in its own message
            log.warning("a message failed inside a batch of %d; handling them one by one",
                        len(todo))
            self._forget_batch()
            outcomes = []
            for journal_id, waiting in todo:
                if waiting.before_each:
                    waiting.before_each(waiting.message)
                outcomes.append(await self._process(journal_id, waiting.message))
            return outcomes
        self._remember_batch()
        if wake:
            services.outbox.wake()
        return outcomes

    async def _handle(self, session: AsyncSession, message: IncomingMessage,
                      staff: dict[str, StaffInfo], resumed: bool = False,
                      ) -> tuple[str, str, bool]:
        """Filter and dispatch one message in ``session``: (status, outcome, replied)."""
        skip = self._skip_reason(message, resumed)
        if skip:
            return "ignored", skip, False
        ctx = await self._context(session, message, staff)
        await self._dispatch(ctx)
        for reply in ctx.replies:
            self.services.outbox.add(
                session, reply.room_id, reply.text, mention_ids=reply.mention_ids,
                mention_names=reply.mention_names, image_path=reply.image_path,
                source=f"{reply.source}:{message.message_id}"[:64],
            )
        return "done", ctx.outcome or "none", bool(ctx.replies)

    async def _staff_roles(self, session: AsyncSession) -> dict[str, StaffInfo]:
        """Every active staff role, read once per transaction (rights follow the id)."""
        rows = await session.scalars(select(StaffRole).where(StaffRole.active.is_(True)))
        return {r.member_id: StaffInfo(r.member_id, r.name, r.role, tuple(r.grids or ()))
                for r in rows}

    async def _load_members(self, session: AsyncSession,
                            messages: list[IncomingMessage]) -> None:
        """Bring the batch's unknown senders into the session with one query."""
        unknown = {m.talker_id for m in messages if m.talker_id not in self._known}
        if unknown:
            found = await session.scalars(select(Member).where(Member.id.in_(unknown)))
            self._absent = unknown - {member.id for member in found}

    async def _touch_members(self, session: AsyncSession) -> None:
        if self._seen:
            await session.execute(update(Member), [
                {"id": member_id, "last_seen": at} for member_id, at in self._seen.items()
            ])
            self._seen.clear()

    def _remember_batch(self) -> None:
        self._known.update(self._fresh)
        self._fresh.clear()
        self._absent.clear()
        if len(self._known) > KNOWN_MEMBERS:
            self._known.clear()  # cheap to rebuild; keeps memory bounded

    def _forget_batch(self) -> None:
        self._fresh.clear()
        self._seen.clear()
        self._absent.clear()

    # -- steps ---------------------------------------------------------------------

    def _journal_values(self, message: IncomingMessage) -> dict[str, object]:
        services = self.services
        grid = services.config.grid_for_room(message.room_id, message.room_topic)
        return {
            "message_id": message.message_id, "channel": "", "room_id": message.room_id,
            "grid_id": grid.id if grid else None, "talker_id": message.talker_id,
            "talker_name": message.talker_name[:128], "text": message.text,
            "mention_ids": list(message.mention_ids), "mentions_bot": message.mentions_bot,
            "sent_at": message.timestamp, "received_at": services.now(),
            "status": "pending", "outcome": "",
        }

    async def _journal(self, message: IncomingMessage) -> int | None:
        """Journal one message; ``None`` when its id was journalled before."""
        journal_id = (await self._journal_batch([message]))[0]
        if journal_id is None:
            log.debug("duplicate message ignored message_id=%s", message.message_id)
        return journal_id

    async def _process(self, journal_id: int, message: IncomingMessage,
                       resumed: bool = False, retry: bool = False) -> str:
        """Handle one journalled message in its own transaction."""
        services = self.services
        replied = False
        try:
            async with services.db.session() as session:
                staff = await self._staff_roles(session)
                status, outcome, replied = await self._handle(session, message, staff, resumed)
                await session.execute(
                    update(InboundMessage).where(InboundMessage.id == journal_id).values(
                        status=status, outcome=outcome[:64], processed_at=services.now())
                )
                await self._touch_members(session)
        except DB_TROUBLE as exc:  # journalled but not handled: try again later
            self._forget_batch()
            log.error("database failed while handling message_id=%s; retrying later "
                      "error=%s", message.message_id, db_reason(exc))
            if not retry:
                self.intake.deferred.append((journal_id, message))
                self._start_retrying()
            return "deferred"
        except Exception:  # noqa: BLE001 - one failing message never stops the others
            self._forget_batch()
            log.exception("message failed message_id=%s room=%s",
                          message.message_id, message.room_id)
            await self._fail(journal_id, message)
            return "error"
        self._remember_batch()
        if replied:
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

    async def _context(self, session: AsyncSession, message: IncomingMessage,
                       staff_roles: dict[str, StaffInfo]) -> MessageContext:
        services = self.services
        config = services.config
        grid = config.grid_for_room(message.room_id, message.room_topic)
        bot_id = config.community.bot_id
        # names beyond the ids (a mention the channel could not resolve) are kept below
        mentions = list(zip(message.mention_ids, message.mention_names, strict=False))
        others = [n for i, n in mentions if i != bot_id]
        names = [n for i, n in mentions if i == bot_id]
        names += list(message.mention_names[len(message.mention_ids):])
        if message.mentions_bot:
            names.append(config.community.bot_name)
        norm = normalize(message.text, names, limit=config.max_message_chars, keep_names=others)

        now = services.now()
        name = message.talker_name[:128]
        known = self._known.get(message.talker_id) or self._fresh.get(message.talker_id)
        if known is not None and (not name or known[0] == name) and (grid is None or known[1]):
            self._seen[message.talker_id] = now
        else:
            member = None
            if message.talker_id not in self._absent:  # a new member needs no lookup
                member = await session.get(Member, message.talker_id)
            if member is None:
                member = Member(id=message.talker_id, name=name,
                                grid_id=grid.id if grid else None, first_seen=now,
                                last_seen=now)
                session.add(member)
            else:
                member.last_seen = now
                if name:
                    member.name = name
                if grid and not member.grid_id:
                    member.grid_id = grid.id
            self._fresh[message.talker_id] = (member.name, member.grid_id)
        staff = staff_roles.get(message.talker_id)
        if staff is not None and not staff.name:
            staff = StaffInfo(staff.member_id, message.talker_name, staff.role, staff.grids)
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
