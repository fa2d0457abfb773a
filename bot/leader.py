"""One leader among the bot processes of a database: only it runs scheduled jobs.

Every process handles its own groups' messages, but digests, honor rolls and
reminders must go out once however many processes share the database (field report
B09). The leader holds a lock that the operating system or the database server
releases by itself when the process dies, so a follower that retries every few
seconds takes over without anyone cleaning up:

- PostgreSQL: a session advisory lock held on a dedicated connection;
- SQLite: ``fcntl.flock`` on a file next to the database file.

:func:`startup_lock` serialises migrations and seeding of processes that start at the
same moment, with the same two mechanisms.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.db_trouble import db_reason
from models.db import is_sqlite, sqlite_path

log = logging.getLogger(__name__)

# Advisory lock keys: any fixed 64-bit numbers, the same in every process.
LEADER_KEY = 0x5A48_4C01  # "ZHL" scheduler leader
STARTUP_KEY = 0x5A48_4C02  # migrations and seeding
TICK_KEY = 0x5A48_4C03  # one scheduler tick at a time (schedules/runner.py)

OnChange = Callable[[], Awaitable[None]]


def asyncpg_dsn(url: str) -> str:
    """The plain ``postgresql://`` DSN asyncpg wants for a SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def lock_file_for(url: str, data_dir: Path, suffix: str) -> Path:
    """Where the SQLite lock file lives: beside the database file."""
    path = sqlite_path(url)
    if path is None:
        return data_dir / f"weizhili{suffix}"
    return path.with_name(path.name + suffix)


class LeaderLock:
    """Wins, holds and hands over the scheduler's leadership."""

    def __init__(
        self,
        url: str,
        data_dir: Path,
        *,
        retry_seconds: float = 3.0,
        check_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self.data_dir = data_dir
        self.retry_seconds = retry_seconds
        self.check_seconds = check_seconds
        self.is_leader = False
        self._fd: int | None = None
        self._conn: Any = None  # asyncpg.Connection while leading on PostgreSQL
        self._task: asyncio.Task[None] | None = None
        self._on_lost: OnChange | None = None

    async def start(self, on_won: OnChange, on_lost: OnChange | None = None) -> None:
        """Try once now; then keep trying (or keep checking) in the background."""
        self._on_lost = on_lost
        if await self.try_acquire():
            await on_won()
        self._task = asyncio.create_task(self._watch(on_won, on_lost), name="leader")

    async def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; returns whether this process leads now."""
        if self.is_leader:
            return True
        won = await (
            self._try_sqlite() if is_sqlite(self.url) else self._try_postgres()
        )
        if won:
            self.is_leader = True
            log.info("leadership won pid=%d", os.getpid())
        return won

    async def close(self) -> None:
        """Stop trying, stop the leader's work, then let go of the lock."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        was_leader = self.is_leader
        if was_leader and self._on_lost is not None:
            await self._on_lost()  # the jobs stop before another process may start them
        await self._release()
        if was_leader:
            log.info("leadership released pid=%d", os.getpid())

    # -- the background loop -------------------------------------------------------

    async def _watch(self, on_won: OnChange, on_lost: OnChange | None) -> None:
        failing = ""  # the last failure logged, so an outage is one line, not thousands
        while True:
            if self.is_leader:
                await asyncio.sleep(self.check_seconds)
                if not await self._still_held():
                    log.error(
                        "leadership lost pid=%d; scheduled jobs stop here", os.getpid()
                    )
                    await self._release()
                    if on_lost is not None:
                        await on_lost()
                continue
            await asyncio.sleep(self.retry_seconds)
            try:
                if await self.try_acquire():
                    await on_won()
                failing = ""
            except Exception as exc:  # a sick database must not end the retries
                reason = db_reason(exc)[:300]
                if reason != failing:
                    log.error("leadership attempt failed; retrying every %.0f s error=%s",
                              self.retry_seconds, reason)
                    log.debug("leadership attempt failure", exc_info=True)
                failing = reason

    # -- SQLite: a file lock --------------------------------------------------------

    async def _try_sqlite(self) -> bool:
        path = lock_file_for(self.url, self.data_dir, ".leader")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    # -- PostgreSQL: an advisory lock on its own connection -------------------------

    async def _try_postgres(self) -> bool:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(self.url), timeout=10)
        try:
            won = bool(
                await conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_KEY)
            )
        except BaseException:
            await conn.close()
            raise
        if not won:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _still_held(self) -> bool:
        if self._conn is None:
            return self._fd is not None
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout=10)
        except Exception:  # any failure means the lock may be gone
            return False
        return True

    async def _release(self) -> None:
        self.is_leader = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except Exception:  # closing the connection frees the lock anyway
                conn.terminate()


@contextlib.asynccontextmanager
async def startup_lock(url: str, data_dir: Path) -> AsyncIterator[None]:
    """Hold a blocking lock while migrating and seeding, so processes take turns."""
    if is_sqlite(url):
        path = lock_file_for(url, data_dir, ".startup")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock
        return

    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=10)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", STARTUP_KEY)
        yield
    finally:
        await conn.close()  # ending the session releases the lock
