"""A sick PostgreSQL server: read-only, full, locked or gone. Messages are held, not lost.

The faults are made on the server itself: a database-wide read-only default, triggers
that fail writes with SQLSTATE 53100 (disk_full), another session's ACCESS EXCLUSIVE
lock, and a throw-away server of these tests stopped and started with ``pg_ctl``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from bot.app import App
from bot.clock import ManualClock
from bot.config import Config
from bot.db_trouble import DB_TROUBLE, DatabaseSickError, db_reason, is_db_trouble
from bot.intake_buffer import RECOVERED_NOTICE, TROUBLE_NOTICE
from models.db import Database
from models.tables import InboundMessage, Petition
from tests.fakes import RecordingChannel, make_message
from tests.test_sick_db import count, errors, staff_notes

URL = os.environ.get("WEIZHILI_TEST_DB_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith("postgresql"),
    reason="needs WEIZHILI_TEST_DB_URL naming a PostgreSQL server "
    "(scripts/start-postgres.sh prints one)",
)

ROOT = Path(__file__).resolve().parents[1]
HOLDING = "database cannot store incoming messages"
BUILDINGS = itertools.count(1)  # the same complaint twice would be one petition


def admin_engine(url: str, database: str | None = None) -> AsyncEngine:
    """An engine outside the bot's pool; ``database`` picks another database."""
    target = make_url(url)
    if database is not None:
        target = target.set(database=database)
    return create_async_engine(target, poolclass=NullPool)


async def run_sql(url: str, *statements: str, database: str | None = None) -> None:
    engine = admin_engine(url, database)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def deliver(
    app: App, clock: ManualClock, n: int, prefix: str = "sick"
) -> list[str]:
    """Deliver ``n`` petitions about different buildings, one by one, as a channel does."""
    outcomes = []
    for i in range(n):
        message = make_message(
            f"{next(BUILDINGS)}号楼楼道灯坏了好几天了",
            at=clock.now(),
            message_id=f"{prefix}-{i}",
        )
        outcomes.append(await app.pipeline.deliver(message))
    return outcomes


async def drain_until_done(app: App, attempts: int = 5) -> bool:
    """Retry as the live loop does; a connection opened while sick may fail once."""
    for _ in range(attempts):
        if await app.pipeline.drain_intake():
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.fixture
def manual_retries(app: App) -> None:
    app.pipeline.intake.delays = (3600.0,)  # the test drives the retries itself


# -- what counts as sickness ------------------------------------------------------


SICK = [
    "25006",
    "53100",
    "53200",
    "53300",
    "55P03",
    "57014",
    "57P01",
    "57P03",
    "08006",
    "58030",
]
NOT_SICK = ["23505", "23503", "40001", "40P01", "42703", "22P02", "P0001", "XX000"]


async def raised_by_session(db: Database, sqlstate: str) -> BaseException:
    with pytest.raises(Exception) as caught:
        async with db.session() as session:
            await session.execute(
                text(
                    "DO $$ BEGIN RAISE EXCEPTION 'simulated'"
                    f" USING ERRCODE = '{sqlstate}'; END $$"
                )
            )
    return caught.value


@pytest.mark.parametrize("sqlstate", SICK)
async def test_sick_sqlstates_come_out_of_a_session_as_db_trouble(sqlstate):
    db = Database(URL)
    try:
        exc = await raised_by_session(db, sqlstate)
    finally:
        await db.close()

    assert isinstance(exc, DatabaseSickError)
    assert isinstance(exc, DB_TROUBLE) and is_db_trouble(exc.__cause__)
    assert db_reason(exc) == f"simulated (SQLSTATE {sqlstate})"


@pytest.mark.parametrize("sqlstate", NOT_SICK)
async def test_bugs_conflicts_and_duplicates_are_not_db_trouble(sqlstate):
    db = Database(URL)
    try:
        exc = await raised_by_session(db, sqlstate)
    finally:
        await db.close()

    assert isinstance(exc, DBAPIError)
    assert not isinstance(exc, DB_TROUBLE) and not is_db_trouble(exc)
    assert isinstance(exc, IntegrityError) == sqlstate.startswith("23")


async def test_connections_wait_ten_seconds_for_a_lock_at_most(app):
    async with app.services.db.session() as session:
        assert await session.scalar(text("SHOW lock_timeout")) == "10s"


# -- read-only ----------------------------------------------------------------------


@pytest.fixture
async def read_only_switch() -> AsyncIterator[ReadOnlySwitch]:
    switch = ReadOnlySwitch(URL)
    try:
        yield switch
    finally:
        await switch.off()  # the next test's fresh schema needs a writable database


class ReadOnlySwitch:
    """Makes the test database read-only the way an operator does, and back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = make_url(url).database

    async def on(self) -> None:
        # From the maintenance database: sessions of a read-only one cannot ALTER it.
        await run_sql(
            self.url,
            f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = on',
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()",
            database="postgres",
        )

    async def off(self) -> None:
        await run_sql(
            self.url,
            f'ALTER DATABASE "{self.name}" RESET default_transaction_read_only',
            database="postgres",
        )


async def test_a_read_only_database_holds_messages_until_it_is_writable(
    app, clock, manual_retries, read_only_switch, caplog
):
    assert await deliver(app, clock, 1, "before") == ["petition:维修"]
    await read_only_switch.on()  # the bot's pooled connections are cut too

    outcomes = await deliver(app, clock, 3)

    assert outcomes == ["held"] * 3
    holding = errors(caplog, HOLDING)
    assert len(holding) == 1 and "SQLSTATE 25006" in holding[0]
    assert errors(caplog, "outbox cannot store a staff notice")  # kept in memory
    assert not await app.pipeline.drain_intake()  # still read-only: nothing moves
    assert await count(app, InboundMessage) == 1

    # Reset only: no connection is cut this time, the bot must reconnect by itself.
    await read_only_switch.off()
    assert await drain_until_done(app)

    assert await count(app, InboundMessage) == 4
    assert await count(app, InboundMessage, InboundMessage.status == "done") == 4
    assert await count(app, Petition) == 4
    assert await staff_notes(app) == [
        TROUBLE_NOTICE.format(capacity=app.pipeline.intake.capacity),
        RECOVERED_NOTICE.format(held=3),
    ]
    assert not app.pipeline.intake.in_trouble


# -- a full disk --------------------------------------------------------------------


class DiskFull:
    """Every write to the bot's tables fails as it does when a file cannot grow."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def tables(self) -> list[str]:
        engine = admin_engine(self.url)
        try:
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version' ORDER BY tablename"
                    )
                )
                return [r[0] for r in rows]
        finally:
            await engine.dispose()

    async def on(self) -> None:
        statements = [
            "CREATE FUNCTION weizhili_disk_full() RETURNS trigger"
            " LANGUAGE plpgsql AS $$"
            " BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'"
            " USING ERRCODE = 'disk_full'; END $$"
        ]
        statements += [
            "CREATE TRIGGER weizhili_disk_full BEFORE INSERT OR UPDATE OR DELETE"
            f' ON "{t}"'
            " FOR EACH ROW EXECUTE FUNCTION weizhili_disk_full()"
            for t in await self.tables()
        ]
        await run_sql(self.url, *statements)

    async def off(self) -> None:
        await run_sql(self.url, "DROP FUNCTION weizhili_disk_full() CASCADE")


async def test_a_full_disk_holds_messages_and_staff_hear_once(
    app, clock, manual_retries, caplog
):
    disk = DiskFull(URL)
    await disk.on()

    outcomes = await deliver(app, clock, 3)

    assert outcomes == ["held"] * 3
    holding = errors(caplog, HOLDING)
    assert (
        len(holding) == 1 and "No space left on device (SQLSTATE 53100)" in holding[0]
    )
    assert errors(caplog, "outbox cannot store a staff notice")
    assert not await app.pipeline.drain_intake()
    assert not await app.pipeline.drain_intake()  # retrying tells staff nothing twice
    assert await count(app, InboundMessage) == 0

    await disk.off()
    assert await app.pipeline.drain_intake()

    assert await count(app, InboundMessage, InboundMessage.status == "done") == 3
    assert await count(app, Petition) == 3
    assert await staff_notes(app) == [
        TROUBLE_NOTICE.format(capacity=app.pipeline.intake.capacity),
        RECOVERED_NOTICE.format(held=3),
    ]

    # A second episode is a new one: staff hear of it again, once.
    await disk.on()
    assert await deliver(app, clock, 2, "again") == ["held", "held"]
    await disk.off()
    assert await app.pipeline.drain_intake()
    assert await count(app, Petition) == 5
    assert (await staff_notes(app))[2:] == [
        TROUBLE_NOTICE.format(capacity=app.pipeline.intake.capacity),
        RECOVERED_NOTICE.format(held=2),
    ]


# -- a lock that does not clear ------------------------------------------------------


async def test_a_locked_journal_holds_messages_until_the_lock_goes(
    app, clock, manual_retries, caplog
):
    def short_wait(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # 10 s in production; the same failure, sooner.
        dbapi_connection.run_async(lambda conn: conn.execute("SET lock_timeout = 200"))

    event.listen(app.services.db.engine.sync_engine.pool, "checkout", short_wait)
    blocker = admin_engine(URL)
    try:
        async with blocker.connect() as conn:
            await conn.execute(
                text("LOCK TABLE inbound_messages IN ACCESS EXCLUSIVE MODE")
            )

            assert await deliver(app, clock, 2) == ["held", "held"]
            holding = errors(caplog, HOLDING)
            assert len(holding) == 1
            assert "lock timeout (SQLSTATE 55P03)" in holding[0]
            assert not await app.pipeline.drain_intake()
            # The outbox is not locked: staff are told at once.
            assert await staff_notes(app) == [
                TROUBLE_NOTICE.format(capacity=app.pipeline.intake.capacity)
            ]
            await conn.rollback()  # the lock goes
    finally:
        await blocker.dispose()

    assert await app.pipeline.drain_intake()
    assert await count(app, InboundMessage, InboundMessage.status == "done") == 2
    assert await count(app, Petition) == 2
    assert (await staff_notes(app))[1:] == [RECOVERED_NOTICE.format(held=2)]


# -- the server goes away ------------------------------------------------------------


class OwnServer:
    """A throw-away PostgreSQL server of these tests, stopped and started at will."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = ""
        self.bin = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
        )[-1]

    def _pg_ctl(self, *args: str) -> None:
        command = [str(self.bin / "pg_ctl"), "-D", str(self.folder), *args]
        if os.geteuid() == 0:  # the server refuses to run as root
            command = ["su", "postgres", "-s", "/bin/bash", "-c", " ".join(command)]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        script = ROOT / "scripts" / "start-postgres.sh"
        done = subprocess.run(
            ["bash", str(script), str(self.folder), str(self.port)],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.url = done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        self._pg_ctl("-w", "stop", "-m", "fast")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def own_server() -> Iterator[OwnServer]:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        pytest.skip("PostgreSQL server binaries not found: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="weizhili-pg-sick-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = OwnServer(folder, free_port())
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def gone_app(
    own_server: OwnServer, config: Config, clock: ManualClock, channel: RecordingChannel
) -> AsyncIterator[App]:
    """The bot on the throw-away server, which is running again when the bot stops."""
    own_server.start()
    await run_sql(
        own_server.url, "DROP SCHEMA IF EXISTS public CASCADE", "CREATE SCHEMA public"
    )
    bot = App(
        replace(config, database_url=own_server.url),
        channel=channel,
        clock=clock,
        web_enabled=False,
        scheduler_enabled=False,
    )
    await bot.start()
    try:
        yield bot
    finally:
        await asyncio.to_thread(own_server.start)
        await bot.stop()


async def test_the_server_going_away_holds_messages_until_it_is_back(
    gone_app, own_server, clock, caplog
):
    app = gone_app
    intake = app.pipeline.intake
    outbox_task = app.services.outbox._task

    # A restart while idle: the pool finds its connections dead and opens new ones.
    assert await deliver(app, clock, 1, "before") == ["petition:维修"]
    await asyncio.to_thread(own_server.stop)
    await asyncio.to_thread(own_server.start)
    assert await deliver(app, clock, 1, "after-restart") == ["petition:维修"]
    assert not errors(caplog, HOLDING)

    # Down for a while: held, retried by the bot's own loop, handled once it is back.
    intake.delays = (0.1,)
    await asyncio.to_thread(own_server.stop)
    assert await deliver(app, clock, 3) == ["held"] * 3
    holding = errors(caplog, HOLDING)
    assert len(holding) == 1 and "ConnectionRefusedError" in holding[0]
    await asyncio.sleep(0.5)  # several retries fail meanwhile
    assert len(intake.messages) == 3 and intake.in_trouble
    assert app.pipeline._retry is not None and not app.pipeline._retry.done()

    await asyncio.to_thread(own_server.start)
    for _ in range(300):  # the retry loop gets there by itself
        if not intake.waiting and not intake.in_trouble:
            break
        await asyncio.sleep(0.1)
    assert not intake.waiting and not intake.in_trouble

    assert await count(app, InboundMessage, InboundMessage.status == "done") == 5
    assert await count(app, Petition) == 5
    assert await staff_notes(app) == [
        TROUBLE_NOTICE.format(capacity=intake.capacity),
        RECOVERED_NOTICE.format(held=3),
    ]
    assert outbox_task is not None and not outbox_task.done()  # the worker lived on


async def test_the_server_going_away_mid_transaction_defers_the_message(
    gone_app, own_server, clock, caplog, monkeypatch
):
    app = gone_app
    app.pipeline.intake.delays = (3600.0,)
    router = app.services.router
    real = router.classify
    calls = {"n": 0}

    def classify_then_crash(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # journalled, the handling transaction open
            own_server.stop()
        return real(*args, **kwargs)

    monkeypatch.setattr(router, "classify", classify_then_crash)

    assert await deliver(app, clock, 1) == ["deferred"]
    assert errors(caplog, "database failed while handling message_id=sick-0")
    assert not await app.pipeline.drain_intake()  # still down

    await asyncio.to_thread(own_server.start)
    assert await app.pipeline.drain_intake()

    assert await count(app, InboundMessage, InboundMessage.status == "done") == 1
    assert await count(app, Petition) == 1
    assert calls["n"] == 2  # handled once more, not twice more
