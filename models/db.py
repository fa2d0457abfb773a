"""Opening the database: one engine, one session factory, migrations at start-up.

SQLite (the default) runs in WAL mode with a busy timeout, and every transaction
starts with ``BEGIN IMMEDIATE`` so that a read never has to upgrade to a write lock
half-way (field report B14). On PostgreSQL (asyncpg) every connection has a
``lock_timeout`` of the same length, so a lock that never clears fails the statement
instead of hanging the bot; pooled connections are pinged before use, so a server that
restarted is reconnected to. A driver error that means the database is sick is raised
by :meth:`Database.session` as :class:`bot.db_trouble.DatabaseSickError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.db_trouble import sick_error, sqlstate

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


class DatabaseError(Exception):
    """The database cannot be opened or used; the message says why."""


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_engine(url: str, *, busy_timeout_ms: int = 10_000) -> AsyncEngine:
    """An async engine with the SQLite pragmas or PostgreSQL lock wait the bot needs.

    ``busy_timeout_ms`` bounds how long a statement waits for another's lock: SQLite's
    busy timeout, PostgreSQL's ``lock_timeout``.
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    connect_args: dict[str, object] = {}
    if make_url(url).get_driver_name() == "asyncpg":
        connect_args["server_settings"] = {"lock_timeout": str(int(busy_timeout_ms))}
    engine = create_async_engine(
        url, pool_pre_ping=not is_sqlite(url), connect_args=connect_args,
        hide_parameters=True,  # a failed statement's message names no resident's words
    )
    if is_sqlite(url):
        _tune_sqlite(engine, busy_timeout_ms)
    else:
        event.listen(engine.sync_engine, "handle_error", _reopen_when_read_only)
    return engine


def _reopen_when_read_only(context: ExceptionContext) -> None:
    """Drop the pool on a read-only error, so the retry reads the setting as it is now.

    A connection keeps the ``default_transaction_read_only`` it opened with: once the
    database is writable again, only new connections would see it.
    """
    if sqlstate(context.original_exception) == "25006":
        context.is_disconnect = True


def _tune_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-65536")  # 64 MiB: keeps big journals' indexes hot
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The engine and its session factory, opened and closed as a pair."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed on success, rolled back on error."""
        try:
            async with self.sessions() as session, session.begin():
                yield session
        except DBAPIError as exc:
            sick = sick_error(exc)  # read-only, full, locked, gone: not a bug
            if sick is None:
                raise
            raise sick from exc

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _alembic_config(url: str):  # type: ignore[no-untyped-def]
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (blocking; run it in a thread)."""
    from alembic import command

    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(_alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations without blocking the event loop."""
    try:
        await asyncio.to_thread(upgrade_sync, url, revision)
    except Exception as exc:  # noqa: BLE001 - every cause ends in one clear message
        raise DatabaseError(f"could not migrate the database at {_safe(url)}: {exc}") from exc


async def current_revision(url: str) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def current_revision_sync(url: str) -> str | None:
    """Blocking form of :func:`current_revision`, for the command line."""
    return asyncio.run(current_revision(url))


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
