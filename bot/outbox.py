"""The outbox: every outgoing message is stored, then sent in order, paced, retried.

Rows are written in the same transaction as whatever caused them, so a crash either
keeps the reply or never made it. One worker sends them: in id order within a room,
at least ``room_interval_seconds`` apart in a room and ``global_interval_seconds``
apart overall (WeChat restricts accounts that send too fast, field report B28), and
retries a failed send with back-off until ``max_attempts``. Pending rows survive a
restart and go out after it.

Fair and urgent first: urgent alerts and system notices are taken before other rows;
each pass takes at most :data:`ROOM_ROWS` rows of one room, sends the rooms in turn
(one row of each, then the next of each) and ends after :data:`PASS_SECONDS`, so a
burst of replies in one busy group never keeps another group, or the staff group's
alert about a gas smell, waiting behind it.

Exactly once: a row is claimed (``pending`` → ``sending``, a conditional update, so
two processes never both take it) and committed before the channel sees it, and
marked ``sent`` after. A crash between the two leaves it ``sending``: at the next
start a channel that can tell (:class:`~bot.channels.base.ConfirmsDelivery`) says
whether it arrived; otherwise ``outbox.in_doubt`` decides: ``hold`` marks it
``unsure`` for staff to check and resend with ``/补发``, ``resend`` sends it again.
Channels that confirm deliveries are claimed and marked in chunks, one transaction
for many rows; the others one row at a time, so at most one row is ever in doubt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.base import ChannelSendError, ChatChannel, OutgoingMessage
from bot.clock import Clock
from bot.config import OutboxConfig
from bot.db_trouble import DB_TROUBLE, db_reason
from models.db import Database
from models.tables import OutboundMessage

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]

SENDING = "sending"  # claimed and handed to the channel; not yet known to be sent
UNSURE = "unsure"  # a crash cut the send off and the channel cannot tell: staff decide
CHUNK = 50  # rows claimed and marked together when the channel confirms deliveries
ROOM_ROWS = 50  # rows of one room taken in one pass
SCAN_FACTOR = 10  # rows read per pass: this many times the pass's limit, for the rooms behind
PASS_SECONDS = 5.0  # a pass starts no new send after this; the next pass looks again
FIRST_SOURCES = ("urgent", "system:")  # sources sent before everything else
MAX_PAUSE_SECONDS = 10.0  # longest wait between tries while the database is away


def unsure_notice(ids: list[int]) -> str:
    """The note to staff about replies that may or may not have gone out."""
    shown = "、".join(str(i) for i in ids[:20]) + ("等" if len(ids) > 20 else "")
    return (f"【系统提示】重启前有{len(ids)}条消息正在发送，无法确认是否已发出，"
            f"为免重复已暂停（编号：{shown}）。请看群里是否已有，如需补发请发“/补发 编号”。")


def _in_turn(rows: list[OutboundMessage]) -> list[OutboundMessage]:
    """The rooms in turn: the first row of each room, then the second of each, …

    Rooms come in the order of their first row, so urgent rows stay in front, and
    each room's own rows keep their order.
    """
    by_room: dict[str, list[OutboundMessage]] = {}
    for row in rows:
        by_room.setdefault(row.room_id, []).append(row)
    queues = list(by_room.values())
    out: list[OutboundMessage] = []
    for depth in range(max(map(len, queues), default=0)):
        out += [queue[depth] for queue in queues if depth < len(queue)]
    return out


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


HELD = (UNSURE, "failed")  # rows that wait for staff: unsure after a crash, or given up


async def release_held(session: AsyncSession, ids: Iterable[int]) -> list[int]:
    """Send held or given-up rows again (staff asked to); returns the ids released."""
    released = list(await session.scalars(
        update(OutboundMessage)
        .where(OutboundMessage.id.in_(list(ids)), OutboundMessage.status.in_(HELD))
        .values(status="pending", not_before=None, attempts=0)
        .returning(OutboundMessage.id)))
    if released:
        log.info("outbox rows released by staff ids=%s", ",".join(map(str, sorted(released))))
    return sorted(released)


class Outbox:
    """Stores outgoing messages and sends them through one channel."""

    def __init__(self, db: Database, clock: Clock, config: OutboxConfig,
                 sleep: Sleep = asyncio.sleep, staff_room: str = "", account: str = "",
                 route: Callable[[str], str] | None = None) -> None:
        self.db = db
        self.staff_room = staff_room
        self.account = account  # this process's bot account: it sends its rows and ""
        self._route = route  # room id -> the account that must send there ("" any)
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
        self._unmarked: tuple[list[tuple[OutboundMessage, str | None]], list[int]] = ([], [])
        self.sent_count = 0

    # -- writing ---------------------------------------------------------------

    def add(self, session: AsyncSession, room_id: str, text: str = "", *,
            mention_ids: Iterable[str] = (), mention_names: Iterable[str] = (),
            image_path: str | Path = "", source: str = "",
            not_before: datetime | None = None,
            account: str | None = None) -> list[OutboundMessage]:
        """Queue a message inside the caller's transaction; long texts become parts.

        ``account`` names the bot account that must send it; by default the room's.
        """
        now = self.clock.now()
        if account is None:
            account = self._route(room_id) if self._route is not None else ""
        rows = []
        parts = split_text(text, self.config.max_chars) if text else [""]
        for index, part in enumerate(parts):
            rows.append(OutboundMessage(
                room_id=room_id, text=part,
                mention_ids=list(mention_ids) if index == 0 else [],
                mention_names=list(mention_names) if index == 0 else [],
                image_path=str(image_path) if index == len(parts) - 1 else "",
                source=source, status="pending", created_at=now, not_before=not_before,
                account=account,
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
        await self.settle_in_doubt()
        pending = await self.pending_count()
        if pending:
            log.info("outbox resuming pending=%d", pending)
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def settle_in_doubt(self) -> dict[str, list[int]]:
        """Decide the rows a crash caught mid-send: sent, send again, or hold for staff."""
        assert self._channel is not None
        async with self.db.session() as session:
            ids = list(await session.scalars(
                select(OutboundMessage.id).where(OutboundMessage.status == SENDING,
                                                 self._mine())
                .order_by(OutboundMessage.id)))
        if not ids:
            return {}
        confirm = getattr(self._channel, "delivered", None)
        if confirm is not None:
            arrived = set(await confirm(ids))
            verdict = {"sent": [i for i in ids if i in arrived],
                       "pending": [i for i in ids if i not in arrived]}
        elif self.config.in_doubt == "resend":
            verdict = {"pending": ids}
        else:
            verdict = {UNSURE: ids}
        async with self.db.session() as session:
            for status, chosen in verdict.items():
                if chosen:  # only rows still ``sending``: another process may finish one
                    moved = set(await session.scalars(
                        update(OutboundMessage).where(OutboundMessage.id.in_(chosen),
                                                      OutboundMessage.status == SENDING)
                        .values(status=status).returning(OutboundMessage.id)))
                    verdict[status] = [i for i in chosen if i in moved]
            if verdict.get(UNSURE):
                self.add(session, self.staff_room, unsure_notice(verdict[UNSURE]),
                         source="system:outbox")
        log.warning("outbox rows in doubt after a restart confirmed=%s sent=%d resend=%d "
                    "held=%d ids=%s", confirm is not None, len(verdict.get("sent", [])),
                    len(verdict.get("pending", [])), len(verdict.get(UNSURE, [])),
                    ",".join(map(str, ids)))
        return verdict

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
        try:
            if self._unmarked != ([], []):  # a mark the database refused: last try
                await self._mark([], [])
            left = await self.pending_count()
        except DB_TROUBLE as exc:  # stopping because the database went away
            log.warning("outbox stopped; pending unknown unmarked=%d error=%s",
                        len(self._unmarked[0]) + len(self._unmarked[1]), db_reason(exc))
            return
        log.info("outbox stopped pending=%d", left)

    async def pending_count(self) -> int:
        from sqlalchemy import func

        async with self.db.session() as session:
            return int(await session.scalar(
                select(func.count()).select_from(OutboundMessage)
                .where(OutboundMessage.status.in_(("pending", SENDING)), self._mine())
            ) or 0)

    async def _run(self) -> None:
        trouble = ""  # the database fault logged last: an outage is one line, not one a second
        pause = 1.0
        while not self._stopping:
            try:
                sent_any = await self.send_due()
                if trouble:
                    log.info("outbox resumed: database available again")
                trouble, pause = "", 1.0
            except asyncio.CancelledError:
                raise
            except DB_TROUBLE as exc:
                reason = db_reason(exc)
                if reason != trouble:
                    log.error("outbox paused: database unavailable error=%s", reason)
                trouble, sent_any = reason, False
                await self._sleep(pause)
                pause = min(pause * 2, MAX_PAUSE_SECONDS)
            except Exception:
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
        if self._unmarked != ([], []):
            await self._mark([], [])
        now = self.clock.now()
        picked: list[int] = []
        waiting: set[str] = set()
        taken: dict[str, int] = {}
        async with self.db.session() as session:
            for row_id, room_id, not_before in await session.execute(self._next_rows(limit)):
                if room_id in waiting or len(picked) >= limit:
                    continue
                taken[room_id] = taken.get(room_id, 0) + 1
                if taken[room_id] > ROOM_ROWS:
                    continue
                if not_before and not_before > now:
                    waiting.add(room_id)  # keep the room's order
                    continue
                picked.append(row_id)
            by_id = {r.id: r for r in await session.scalars(
                select(OutboundMessage).where(OutboundMessage.id.in_(picked)))} if picked else {}
        due = [by_id[i] for i in picked if i in by_id]
        due = _in_turn(due)
        deadline = asyncio.get_running_loop().time() + PASS_SECONDS
        chunk = CHUNK if getattr(self._channel, "delivered", None) is not None else 1
        failed_rooms: set[str] = set()
        sent_any = False
        for start in range(0, len(due), chunk):
            if self._stopping:
                break
            claimed = await self._claim(due[start:start + chunk])
            sent: list[tuple[OutboundMessage, str | None]] = []
            answered: set[int] = set()  # sent, or refused and recorded as such
            in_flight: int | None = None  # handed to the channel, no answer yet
            try:
                for row in claimed:
                    if self._stopping or row.room_id in failed_rooms:
                        continue
                    if (sent or sent_any) and asyncio.get_running_loop().time() > deadline:
                        break  # the rest go back to pending; the next pass looks again
                    await self._pace(row.room_id)
                    in_flight = row.id
                    platform_id, error = await self._send_one(row)
                    in_flight = None
                    if error is None:
                        sent.append((row, platform_id))
                    else:
                        failed_rooms.add(row.room_id)
                        await self._failed(row, str(error), retryable=error.retryable)
                    answered.add(row.id)
            finally:
                # Whatever happened (a database error, a cancelled stop), what was sent
                # is marked and what the channel never took is let go; only a send cut
                # off in flight stays ``sending``, for settle_in_doubt.
                released = [r.id for r in claimed
                            if r.id not in answered and r.id != in_flight]
                await self._mark(sent, released)
            sent_any = sent_any or bool(sent)
            if asyncio.get_running_loop().time() > deadline and sent_any:
                break
        return sent_any

    def _next_rows(self, limit: int):  # type: ignore[no-untyped-def]
        """Ids, rooms and waits of pending rows of this process: urgent first, then by id.

        The ordering names no index on purpose: the planner then reads the pending
        rows through the (status, account) index, however much history the table
        holds. A window function per room was tried and, once SQLite had statistics,
        scanned the whole table through the room index (53 ms a pass at 150,000 rows).
        """
        first = case((or_(*(OutboundMessage.source.startswith(s) for s in FIRST_SOURCES)), 0),
                     else_=1)
        return (select(OutboundMessage.id, OutboundMessage.room_id, OutboundMessage.not_before)
                .where(OutboundMessage.status == "pending", self._mine())
                .order_by(first, OutboundMessage.id).limit(limit * SCAN_FACTOR))

    def _mine(self) -> ColumnElement[bool]:
        """The rows this process sends: its account's and those any account may send."""
        return OutboundMessage.account.in_({self.account, ""})

    async def _claim(self, rows: list[OutboundMessage]) -> list[OutboundMessage]:
        """Take rows for sending; the ones another process took meanwhile drop out."""
        if not rows:
            return []
        async with self.db.session() as session:
            taken = set(await session.scalars(
                update(OutboundMessage)
                .where(OutboundMessage.id.in_([r.id for r in rows]),
                       OutboundMessage.status == "pending")
                .values(status=SENDING).returning(OutboundMessage.id)))
        return [r for r in rows if r.id in taken]

    async def _mark(self, sent: list[tuple[OutboundMessage, str | None]],
                    released: list[int]) -> None:
        """Record what a chunk did; kept and tried again if the database fails now."""
        sent = self._unmarked[0] + sent
        released = self._unmarked[1] + released
        self._unmarked = (sent, released)
        if not sent and not released:
            return
        now = self.clock.now()
        async with self.db.session() as session:
            if sent:
                await session.execute(update(OutboundMessage), [
                    {"id": row.id, "status": "sent", "sent_at": now,
                     "attempts": row.attempts + 1, "platform_id": platform_id or ""}
                    for row, platform_id in sent])
            if released:
                await session.execute(
                    update(OutboundMessage).where(OutboundMessage.id.in_(released),
                                                  OutboundMessage.status == SENDING)
                    .values(status="pending"))
        self._unmarked = ([], [])
        self.sent_count += len(sent)
        for row, _ in sent:
            log.info("outbox sent outbox_id=%s room=%s source=%s",
                     row.id, row.room_id, row.source)

    async def _pace(self, room_id: str) -> None:
        loop = asyncio.get_running_loop()
        ready = max(self._room_ready.get(room_id, 0.0), self._global_ready)
        wait = ready - loop.time()
        if wait > 0:
            await self._sleep(wait)
        now = loop.time()
        self._room_ready[room_id] = now + self.config.room_interval_seconds
        self._global_ready = now + self.config.global_interval_seconds

    async def _send_one(self, row: OutboundMessage
                        ) -> tuple[str | None, ChannelSendError | None]:
        """Hand one claimed row to the channel: (the platform's id, the failure)."""
        assert self._channel is not None
        message = OutgoingMessage(
            room_id=row.room_id, text=row.text,
            mention_ids=tuple(row.mention_ids or ()),
            mention_names=tuple(row.mention_names or ()),
            image_path=Path(row.image_path) if row.image_path else None,
            outbox_id=row.id,
        )
        try:
            return await self._channel.send(message), None
        except ChannelSendError as exc:
            return None, exc
        except Exception as exc:
            log.exception("outbox send crashed outbox_id=%s", row.id)
            return None, ChannelSendError(type(exc).__name__, retryable=True)

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
