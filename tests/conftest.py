"""Shared fixtures: a real SQLite file per test, a manual clock, a recording channel."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.app import App
from bot.clock import ManualClock
from bot.config import Config, demo_config
from tests.fakes import RecordingChannel

TZ = ZoneInfo("Asia/Shanghai")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Staff ids of the built-in demo community.
GM_1 = "wxid_gm_zhao"
PROPERTY = "wxid_wy_wang"
COMMITTEE = "wxid_jwh_li"
ADMIN = "wxid_admin"


def local(*args: int) -> datetime:
    """An aware datetime in the community's zone."""
    return datetime(*args, tzinfo=TZ)


def database_url_for(tmp_path: Path) -> str:
    """SQLite in tmp_path, or the PostgreSQL server named by WEIZHILI_TEST_DB_URL."""
    return os.environ.get("WEIZHILI_TEST_DB_URL") or f"sqlite+aiosqlite:///{tmp_path}/test.db"


@pytest.fixture(autouse=True)
async def _fresh_postgres_schema() -> None:
    """On PostgreSQL every test starts from an empty schema, as it does on a new SQLite file."""
    url = os.environ.get("WEIZHILI_TEST_DB_URL", "")
    if not url.startswith("postgresql"):
        return
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def shared_router(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One router for the whole run: building jieba's dictionary costs most of a second."""
    from handlers.router import Router

    return Router(cache_dir=tmp_path_factory.mktemp("jieba"))


@pytest.fixture(autouse=True)
def _reuse_router(monkeypatch: pytest.MonkeyPatch, shared_router) -> None:  # type: ignore[no-untyped-def]
    import bot.app

    real = bot.app.build_router  # a community lexicon needs a router of its own
    monkeypatch.setattr("bot.app.build_router", lambda config: (
        real(config) if config.community.lexicon_dir else shared_router))


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test starts from a copy (migrations are tested apart)."""
    from models.db import upgrade_sync

    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def config(tmp_path: Path, migrated_template: Path) -> Config:
    import shutil

    if not os.environ.get("WEIZHILI_TEST_DB_URL"):
        shutil.copyfile(migrated_template, tmp_path / "test.db")
    base = demo_config(tmp_path / "data")
    return replace(
        base,
        database_url=database_url_for(tmp_path),
        outbox=replace(base.outbox, room_interval_seconds=0.0, global_interval_seconds=0.0),
        web=replace(base.web, port=0),
    )


@pytest.fixture
def clock() -> ManualClock:
    # A Friday afternoon inside office hours.
    return ManualClock(local(2026, 12, 4, 15, 0))


@pytest.fixture
def channel() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
async def app(config: Config, clock: ManualClock, channel: RecordingChannel) -> AsyncIterator[App]:
    bot = App(config, channel=channel, clock=clock, web_enabled=False, scheduler_enabled=False)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()


async def drain(app: App) -> None:
    """Send whatever the outbox holds, now: pass after pass, as the worker does."""
    assert app.services is not None
    while await app.services.outbox.send_due():
        pass
