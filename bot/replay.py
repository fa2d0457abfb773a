"""``weizhili replay``: a chat file through the real pipeline, with a summary."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.app import App
from bot.channels.base import IncomingMessage, OutgoingMessage
from bot.channels.replay import ReplayChannel, ReplayFormatError, read_messages
from bot.clock import ManualClock
from bot.config import Config, OutboxConfig
from models.tables import InboundMessage, Petition, Praise, Reminder

CHUNK = 200  # messages handed to the pipeline together


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, width: int = 30) -> None:
        self.total = max(total, 1)
        self.width = width
        self.started = time.perf_counter()
        self.tty = sys.stderr.isatty()

    def update(self, done: int) -> None:
        if not self.tty and done not in (self.total,) and done % 100:
            return
        filled = int(self.width * done / self.total)
        rate = done / max(time.perf_counter() - self.started, 1e-6)
        end = "\n" if done >= self.total or not self.tty else "\r"
        sys.stderr.write(f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total}"
                         f" {rate:.0f} msg/s{end}")
        sys.stderr.flush()


async def run_replay(config: Config, path: Path, *, replies: str | None = None,
                     labels: str | None = None, database_url: str | None = None,
                     resume: bool = False, delay: float = 0.0,
                     sent_log: str | None = None) -> int:
    """Replay ``path``; print the summary table; return an exit code.

    ``resume`` skips the messages the database has already journalled (a replay that
    was interrupted goes on where it stopped); ``delay`` pauses after each message;
    ``sent_log`` appends every send, as it happens, to a JSON-lines file.
    """
    if not path.is_file():
        print(f"找不到文件 / no such file: {path}", file=sys.stderr)
        return 2
    bot = config.community
    items = list(read_messages(path, bot.bot_id, bot.bot_name))
    messages = [m for m in items if not isinstance(m, ReplayFormatError)]
    bad = [m for m in items if isinstance(m, ReplayFormatError)]
    for problem in bad[:10]:
        print(f"skipped {problem}", file=sys.stderr)

    scratch = tempfile.TemporaryDirectory(prefix="weizhili-replay-")
    data_dir = Path(scratch.name)
    config = replace(config, data_dir=data_dir,
                     database_url=database_url or f"sqlite+aiosqlite:///{data_dir}/replay.db",
                     outbox=replace(config.outbox, room_interval_seconds=0.0,
                                    global_interval_seconds=0.0) if isinstance(config.outbox, OutboxConfig) else config.outbox)
    start = messages[0].timestamp if messages else datetime.now(UTC)
    if resume:  # the clock goes on from where the interrupted replay stopped
        start = max(start, await _last_journalled_at(config.db_url) or start)
    clock = ManualClock(start)
    channel = LoggingReplayChannel(sent_log) if sent_log else ReplayChannel()
    app = App(config, channel=channel, clock=clock, web_enabled=False, scheduler_enabled=False)
    await app.start()
    assert app.pipeline is not None and app.services is not None

    if resume:
        messages = await _not_yet_journalled(app, messages)

    outcomes: dict[str, str] = {}  # first outcome per message id
    handled: list[str] = []  # every delivery's outcome, duplicates included
    progress = Progress(len(messages))
    started = time.perf_counter()
    try:
        for message, outcome in zip(messages, await feed(app, clock, messages, delay=delay,
                                                          progress=progress), strict=True):
            outcomes.setdefault(message.message_id, outcome)
            handled.append(outcome)
        elapsed = time.perf_counter() - started
        await app.services.outbox.stop(drain_seconds=30)
        summary = await _summary(app, handled, len(bad), elapsed)
    finally:
        await app.stop()
        scratch.cleanup()

    _print_table(summary)
    if labels:
        _print_labels(Path(labels), outcomes)
    if replies:
        with open(replies, "w", encoding="utf-8") as handle:
            for record in channel.sent:
                handle.write(json.dumps(record.__dict__, ensure_ascii=False) + "\n")
        print(f"replies written: {replies} ({len(channel.sent)})")
    return 0


async def _last_journalled_at(url: str) -> datetime | None:
    from sqlalchemy.exc import DBAPIError

    from models.db import Database

    db = Database(url)
    try:
        async with db.session() as session:
            return await session.scalar(select(func.max(InboundMessage.sent_at)))
    except DBAPIError:  # a new database: nothing journalled yet
        return None
    finally:
        await db.close()


async def _not_yet_journalled(app: App, messages: list[IncomingMessage]
                              ) -> list[IncomingMessage]:
    assert app.services is not None
    async with app.services.db.session() as session:
        seen = set(await session.scalars(select(InboundMessage.message_id)))
    left = [m for m in messages if m.message_id not in seen]
    print(f"resuming: {len(messages) - len(left)} of {len(messages)} messages already "
          "journalled", flush=True)
    return left


class LoggingReplayChannel(ReplayChannel):
    """A replay channel that also appends each send to a file the moment it happens.

    The file is the receiving end: it says afterwards which outbox rows arrived, so a
    replay killed between a send and its "sent" mark sends nothing twice.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    async def delivered(self, outbox_ids: Sequence[int]) -> set[int]:
        wanted = set(outbox_ids)
        found: set[int] = set()
        with open(self._path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    number = json.loads(line).get("outbox_id")
                except ValueError:  # a line cut off by the crash itself
                    continue
                if number in wanted:
                    found.add(number)
        return found

    async def send(self, message: OutgoingMessage) -> str | None:
        record = {"outbox_id": message.outbox_id, "room": message.room_id,
                  "text": message.text}
        os.write(self._fd, (json.dumps(record, ensure_ascii=False) + "\n").encode())
        return await super().send(message)

    async def stop(self) -> None:
        await super().stop()
        os.close(self._fd)


async def feed(app: App, clock: ManualClock, messages: list[IncomingMessage], *,
               delay: float = 0.0, progress: Progress | None = None,
               live_ticks: bool = False) -> list[str]:
    """Deliver messages as they happened: the clock follows them, the jobs run as often
    as they would live, and the messages between two runs share transactions.

    The scheduled checks run every ``schedules.poll_seconds`` of the messages' time,
    so deadlines fall where they would have on the day; ``live_ticks`` runs them every
    ``poll_seconds`` of wall-clock time instead, as the live bot does, which is what
    a burst of messages arriving faster than the day's pace meets.
    """
    from schedules.runner import tick

    assert app.pipeline is not None and app.services is not None
    poll_seconds = app.config.schedules.poll_seconds
    poll = timedelta(seconds=poll_seconds)
    next_tick = clock.now()
    next_wall_tick = time.monotonic()
    results: list[str] = []

    def follow(message: IncomingMessage) -> None:
        if message.timestamp > clock.now():
            clock.set(message.timestamp)

    index = 0
    while index < len(messages):
        follow(messages[index])
        if live_ticks:
            if time.monotonic() >= next_wall_tick:
                await tick(app.services)
                next_wall_tick = time.monotonic() + poll_seconds
        elif clock.now() >= next_tick:
            await tick(app.services)
            next_tick = clock.now() + poll
        end = index + 1
        while (not delay and end < len(messages) and end - index < CHUNK
               and (live_ticks or messages[end].timestamp < next_tick)):
            end += 1
        results += await app.pipeline.deliver_many(messages[index:end], before_each=follow)
        index = end
        if progress is not None:
            progress.update(index)
        if delay:
            await asyncio.sleep(delay)
    await tick(app.services)
    return results


async def _summary(app: App, handled: list[str], bad_lines: int,
                   elapsed: float) -> list[tuple[str, str]]:
    assert app.services is not None
    counts = Counter(handled)
    rate = len(handled) / max(elapsed, 1e-6)
    rows: list[tuple[str, str]] = [("messages", str(len(handled))),
                                   ("seconds", f"{elapsed:.1f}"),
                                   ("messages per second", f"{rate:.0f}")]
    async with app.services.db.session() as session:
        by_category = (await session.execute(
            select(Petition.category, Petition.party, func.count()).group_by(
                Petition.category, Petition.party).order_by(func.count().desc()))).all()
        petitions = sum(n for _, _, n in by_category)
        praise = await session.scalar(select(func.count()).select_from(Praise))
        reminders = await session.scalar(select(func.count()).select_from(Reminder))
    rows.append(("petitions", str(petitions)))
    rows += [(f"  {category} · {party}", str(n)) for category, party, n in by_category]
    rows.append(("praise", str(praise)))
    rows.append(("reminders", str(reminders)))
    rows.append(("commands", str(sum(n for k, n in counts.items() if k.startswith("command")))))
    rows.append(("help replies", str(counts.get("help", 0))))
    rows.append(("no action (chit-chat)", str(counts.get("none", 0))))
    ignored = sum(counts.get(k, 0) for k in ("own", "stale", "not-text", "duplicate"))
    rows.append(("ignored (own/stale/duplicate/non-text)", str(ignored)))
    rows.append(("errors", str(counts.get("error", 0) + bad_lines)))
    rows.append(("replies sent", str(app.services.outbox.sent_count)))
    return rows


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(_display_width(k) for k, _ in rows) + 2
    print("replay summary")
    print("-" * (width + 10))
    for key, value in rows:
        print(key + " " * (width - _display_width(key)) + value.rjust(8))


def _display_width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _print_labels(path: Path, outcomes: dict[str, str]) -> None:
    kinds = {}
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 2:
            kinds[parts[0]] = parts[1]
    petitions = [i for i, k in kinds.items() if k == "petition" and i in outcomes]
    chat = [i for i, k in kinds.items() if k == "chitchat" and i in outcomes]
    became = sum(outcomes[i].startswith("petition") for i in petitions)
    triggered = sum(outcomes[i] not in ("none", "ignored", "stale", "own") for i in chat)
    print(f"labelled petitions that became petitions: {became}/{len(petitions)}"
          f" ({became / max(len(petitions), 1):.1%})")
    print(f"casual messages that triggered anything: {triggered}/{len(chat)}"
          f" ({triggered / max(len(chat), 1):.1%})")
