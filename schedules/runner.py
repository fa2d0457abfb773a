"""The scheduler: APScheduler only wakes the bot; the database says what is due.

Jobs are module-level functions registered under fixed ids with
``replace_existing=True`` and an explicit time zone (field reports B07, B11, B13).
A short interval tick fires due reminders and petition deadlines; clock-time jobs
(digests, honor rolls) record each run in ``job_runs`` so that a restart neither
repeats nor drops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Services
from bot.db_trouble import DB_TROUBLE, db_reason
from bot.leader import TICK_KEY

log = logging.getLogger(__name__)

Job = Callable[[Services], Awaitable[object]]


async def tick(services: Services) -> None:
    """Everything that is checked every few seconds, in one transaction.

    Each job runs inside a savepoint of the shared transaction: one that fails is
    rolled back and logged, the others still commit. Most ticks find nothing due, so
    one transaction instead of one per job is most of their cost saved.
    """
    from schedules.reminders import fire_due_reminders

    jobs = [fire_due_reminders, *services.extras.get("tick_jobs", [])]
    lock = services.extras.setdefault("tick_lock", asyncio.Lock())
    try:
        async with lock, services.db.session() as session:  # one tick at a time
            if not await _tick_is_ours(session):
                _skipped(services)
                return
            services.extras.pop("tick_skipped_since", None)
            services.extras.pop("tick_skip_warned", None)
            for job in jobs:
                try:
                    async with session.begin_nested():
                        await job(services, session)
                except DB_TROUBLE:
                    raise  # the transaction is gone: the jobs after it would fail too
                except Exception:  # noqa: BLE001 - one failing job must not stop the others
                    log.exception("tick job failed job=%s", getattr(job, "__name__", job))
    except DB_TROUBLE as exc:  # the next tick tries again
        log.error("tick skipped: database unavailable error=%s", db_reason(exc))
        return
    except Exception:  # noqa: BLE001 - the next tick tries again
        log.exception("tick could not commit jobs=%d", len(jobs))
        return
    services.outbox.wake()  # what the jobs queued is committed now


SKIP_WARN_SECONDS = 60.0  # ticks skipped this long: something holds the lock too long


def _skipped(services: Services, now: float | None = None) -> None:
    """A tick skipped because another holds the tick lock: quiet, unless it lasts."""
    now = time.monotonic() if now is None else now
    since = services.extras.setdefault("tick_skipped_since", now)
    if now - since >= SKIP_WARN_SECONDS and not services.extras.get("tick_skip_warned"):
        services.extras["tick_skip_warned"] = True
        log.warning("ticks skipped for %.0f s: another connection holds the tick lock; "
                    "reminders and deadlines wait", now - since)
    else:
        log.debug("tick skipped: another process is running one")


async def _tick_is_ours(session: AsyncSession) -> bool:
    """Only one process of a database ticks at a time, leader or not.

    Only the leader ticks, but a leader that lost its lock without noticing may
    tick a few seconds more beside the new one; two ticks reading the same due
    reminder would post it twice. On PostgreSQL the tick's transaction takes an
    advisory lock first (released at commit), and the other process skips its
    tick. SQLite needs nothing: every transaction there starts with ``BEGIN
    IMMEDIATE``, so the second tick waits and then sees what the first one did.
    """
    if session.bind.dialect.name != "postgresql":
        return True
    return bool(await session.scalar(
        text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": TICK_KEY}))


async def run_clock_job(services: Services, name: str) -> None:
    """Run one of the clock-time jobs by name (digest, morning list, honor roll …)."""
    job = services.extras.get("clock_jobs", {}).get(name)
    if job is None:
        log.warning("unknown clock job name=%s", name)
        return
    try:
        await job(services)
    except Exception:  # noqa: BLE001
        log.exception("clock job failed name=%s", name)


class Scheduler:
    """Owns the APScheduler instance; started inside the running loop, never at import."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._catching_up: asyncio.Task[None] | None = None
        self.scheduler = AsyncIOScheduler(
            timezone=services.config.tz,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    async def start(self, *, catch_up: bool = True) -> None:
        config = self.services.config
        self.scheduler.add_job(tick, IntervalTrigger(seconds=config.schedules.poll_seconds,
                                                     timezone=config.tz),
                               args=[self.services], id="tick", replace_existing=True)
        for name, trigger in self.clock_triggers().items():
            self.scheduler.add_job(run_clock_job, trigger, args=[self.services, name],
                                   id=f"clock:{name}", replace_existing=True)
        self.scheduler.start()
        if catch_up:  # in the background: messages are handled meanwhile
            self._catching_up = asyncio.create_task(self.catch_up(), name="catch-up")
        log.info("scheduler started jobs=%d", len(self.scheduler.get_jobs()))

    async def catch_up(self) -> None:
        """What fell due while the bot was down: the tick's rows, then missed posts."""
        await tick(self.services)
        for name, job in self.services.extras.get("catch_up_jobs", {}).items():
            try:
                await job(self.services)
            except Exception:  # noqa: BLE001
                log.exception("catch-up job failed name=%s", name)
        log.info("catch-up finished")

    def clock_triggers(self) -> dict[str, CronTrigger]:
        config = self.services.config
        triggers = {}
        for name, spec in self.services.extras.get("clock_specs", {}).items():
            triggers[name] = CronTrigger(timezone=config.tz, **spec)
        return triggers

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._catching_up is not None and not self._catching_up.done():
            try:  # let it finish what it is posting: cut off mid-transaction, SQLite stays locked
                await asyncio.wait_for(asyncio.shield(self._catching_up), timeout=10.0)
            except TimeoutError:
                self._catching_up.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._catching_up
        self._catching_up = None
        log.info("scheduler stopped")
