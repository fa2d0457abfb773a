"""A sick database: read-only, full or locked. Messages are held, retried, never lost silently."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from bot.intake_buffer import FULL_NOTICE, TROUBLE_NOTICE
from models.db import sqlite_path
from models.tables import InboundMessage, OutboundMessage, Petition
from tests.fakes import make_message

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("WEIZHILI_TEST_DB_URL")),
    reason="the faults are simulated with SQLite pragmas and file locks",
)

HEALTHY = (
    "PRAGMA query_only=0",
    "PRAGMA max_page_count=1073741823",
    "PRAGMA busy_timeout=10000",
)
LONG = "，已经报过好几次了" * 500  # needs new pages: a full database cannot take it


class Sickness:
    """Makes every connection the bot checks out behave like a sick database."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.pragmas: tuple[str, ...] = HEALTHY
        self.path = sqlite_path(app.services.db.url)
        event.listen(app.services.db.engine.sync_engine.pool, "checkout", self._apply)

    def _apply(self, dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        for pragma in self.pragmas:
            cursor.execute(pragma)
        cursor.close()

    def read_only(self) -> None:
        self.pragmas = ("PRAGMA query_only=1",)

    def full(self) -> None:
        with sqlite3.connect(self.path) as conn:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
        self.pragmas = (f"PRAGMA max_page_count={pages}",)

    def heal(self) -> None:
        self.pragmas = HEALTHY


@pytest.fixture
def sick(app) -> Iterator[Sickness]:  # type: ignore[no-untyped-def]
    app.pipeline.intake.delays = (3600.0,)  # the test drives the retries itself
    yield Sickness(app)


async def count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with app.services.db.session() as session:
        return int(
            await session.scalar(select(func.count()).select_from(model).where(*where))
        )


async def staff_notes(app) -> list[str]:  # type: ignore[no-untyped-def]
    async with app.services.db.session() as session:
        return list(
            await session.scalars(
                select(OutboundMessage.text)
                .where(OutboundMessage.source == "system:database")
                .order_by(OutboundMessage.id)
            )
        )


def errors(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and text in r.getMessage()
    ]


async def deliver_petitions(app, clock, n: int, text: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    outcomes = []
    for i in range(n):
        message = make_message(
            f"{i + 1}号楼楼道灯坏了好几天了{text}",
            at=clock.now(),
            message_id=f"sick-{i}",
        )
        outcomes.append(await app.pipeline.deliver(message))
    return outcomes


@pytest.mark.parametrize("fault", ["read_only", "full"])
async def test_messages_are_held_then_handled_and_staff_told_once(
    app, clock, sick, caplog, fault
):
    getattr(sick, fault)()

    outcomes = await deliver_petitions(app, clock, 3, LONG if fault == "full" else "")

    assert outcomes == ["held"] * 3
    assert len(errors(caplog, "database cannot store incoming messages")) == 1
    if fault == "read_only":
        assert errors(caplog, "outbox cannot store a staff notice")  # kept in memory
    assert not any(
        LONG[:20] in r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG
    ), "residents' words only at DEBUG"
    assert not await app.pipeline.drain_intake()  # still sick: nothing moves
    health = app.health()["database"]  # what /health tells the operator
    assert not health["ok"] and health["held_messages"] == 3 and health["problem"]

    sick.heal()
    assert await app.pipeline.drain_intake()
    assert app.health()["database"] == {"ok": True, "problem": "", "held_messages": 0}

    assert await count(app, InboundMessage) == 3
    assert await count(app, Petition) == 3
    notes = await staff_notes(app)
    assert notes == [
        TROUBLE_NOTICE.format(capacity=app.pipeline.intake.capacity),
        "【系统提示】数据库已恢复，暂存的3条消息已补处理。",
    ]
    async with app.services.db.session() as session:
        texts = list(await session.scalars(select(InboundMessage.text)))
    assert all(t.endswith(LONG) for t in texts) or fault != "full"  # stored whole


async def test_a_locked_database_holds_messages_until_the_lock_goes(
    app, clock, sick, caplog
):
    sick.pragmas = ("PRAGMA busy_timeout=50",)
    blocker = sqlite3.connect(sick.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        assert await deliver_petitions(app, clock, 2) == ["held", "held"]
        assert errors(caplog, "database is locked")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    # The outbox worker may hold the write lock for a moment (busy timeout 50 ms
    # here): the pipeline retries, as it does live, until it gets through.
    for _ in range(50):
        if await app.pipeline.drain_intake():
            break
        await asyncio.sleep(0.1)
    assert await count(app, Petition) == 2


async def test_a_full_buffer_says_so_in_the_log_and_to_staff(app, clock, sick, caplog):
    app.pipeline.intake.capacity = 2
    sick.read_only()

    outcomes = await deliver_petitions(app, clock, 5)

    assert outcomes == ["held", "held", "dropped", "dropped", "dropped"]
    dropped = errors(caplog, "intake buffer full; message dropped")
    assert [m.split("message_id=")[1].split()[0] for m in dropped] == [
        "sick-2",
        "sick-3",
        "sick-4",
    ]
    sick.heal()
    assert await app.pipeline.drain_intake()
    notes = await staff_notes(app)
    assert notes.count(FULL_NOTICE) == 1
    assert notes[-1].endswith("另有3条因暂存已满未能保存，消息编号见日志。")
    assert await count(app, Petition) == 2


async def test_a_failure_while_handling_is_retried_not_marked_failed(
    app, clock, sick, monkeypatch
):
    router = app.services.router
    real = router.classify
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("UPDATE", {}, Exception("disk I/O error"))
        return real(*args, **kwargs)

    monkeypatch.setattr(router, "classify", flaky)

    assert await deliver_petitions(app, clock, 1) == ["deferred"]
    assert await count(app, InboundMessage, InboundMessage.status == "pending") == 1

    assert await app.pipeline.drain_intake()
    assert await count(app, InboundMessage, InboundMessage.status == "done") == 1
    assert await count(app, Petition) == 1


async def test_stopping_while_sick_names_every_held_message(app, clock, sick, caplog):
    sick.read_only()
    await deliver_petitions(app, clock, 2)

    await app.pipeline.stop()

    lost = errors(caplog, "stopping with messages the database never took")
    assert lost and "sick-0,sick-1" in lost[0]
    assert errors(caplog, "staff notice never stored")
    sick.heal()  # the fixture's app.stop() must still close cleanly


async def test_health_names_a_vanished_database_file(app):
    from models.db import sqlite_path

    path = sqlite_path(app.config.db_url)
    if path is None:
        pytest.skip("a SQLite file only")
    assert app.health()["database"]["ok"]
    path.rename(path.with_name("moved-away.db"))  # an operator's mistake while it runs
    report = app.health()
    assert not report["ok"] and "database file missing" in report["database"]["problem"]
