"""Looking after the data: copy between databases, backup, restore, journal purge.

    weizhili db copy SRC_URL DST_URL [--force]   every row, in dependency order
    weizhili backup PATH                          SQLite online backup, or pg_dump
    weizhili restore PATH [--force]               the reverse

The copy migrates the destination first, copies each table in batches inside one
transaction, moves PostgreSQL's id sequences past the copied ids and compares the
row count of every table; any difference is an error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, MetaData, Table, func, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from models.base import Base
from models.db import create_engine, is_sqlite, sqlite_path, upgrade_sync

log = logging.getLogger(__name__)

SKIP_TABLES = {"alembic_version"}
# Journal outcomes of messages that asked nothing of anyone: their words may go.
CASUAL_OUTCOMES = ("none", "help", "own", "stale", "not-text")


class MaintenanceError(Exception):
    """A maintenance command cannot go on; the message says why."""


# --- db copy ------------------------------------------------------------------------


def _tables(reflected: MetaData) -> list[Table]:
    """The tables to copy, parents before children, typed by the models where known."""
    models = Base.metadata.tables
    order = [t.name for t in reflected.sorted_tables if t.name not in SKIP_TABLES]
    tables = []
    for name in order:
        model = models.get(name)
        columns = {c.name for c in reflected.tables[name].columns}
        if model is None:
            tables.append(reflected.tables[name])
            continue
        # The model's column types convert times and JSON the same way on both ends.
        keep = [
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in model.columns
            if c.name in columns
        ]
        tables.append(Table(name, MetaData(), *keep))
    return tables


async def _reflect(conn: AsyncConnection) -> MetaData:
    meta = MetaData()
    await conn.run_sync(meta.reflect)
    return meta


async def _count(conn: AsyncConnection, table: Table) -> int:
    return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def copy_database(
    src_url: str, dst_url: str, *, force: bool = False, batch: int = 500
) -> list[tuple[str, int, int]]:
    """Copy every row from ``src_url`` to ``dst_url``; returns (table, source, copied)."""
    if make_url(src_url) == make_url(dst_url):
        raise MaintenanceError("source and destination are the same database")
    await asyncio.to_thread(upgrade_sync, dst_url)
    src = create_engine(src_url)
    dst = create_engine(dst_url)
    try:
        async with src.connect() as sconn:
            source_meta = await _reflect(sconn)
        async with dst.begin() as dconn:
            tables = _tables(await _reflect(dconn))
            missing = [t.name for t in tables if t.name not in source_meta.tables]
            if missing:
                raise MaintenanceError(
                    f"source lacks tables {missing}: run `weizhili db upgrade --url SRC` first"
                )
            filled = [t.name for t in tables if await _count(dconn, t)]
            if filled and not force:
                raise MaintenanceError(
                    f"destination is not empty ({', '.join(filled)}); use --force to replace"
                )
            for table in reversed(tables):
                await dconn.execute(table.delete())

            for table in tables:
                await _copy_table(src, dconn, table, batch)
            if dst.dialect.name == "postgresql":
                await _reset_sequences(dconn, tables)

            result = []
            async with src.connect() as sconn:
                for table in tables:
                    result.append(
                        (
                            table.name,
                            await _count(sconn, table),
                            await _count(dconn, table),
                        )
                    )
            wrong = [name for name, a, b in result if a != b]
            if wrong:
                raise MaintenanceError(
                    f"row counts differ for {wrong}; nothing was kept"
                )
        return result
    finally:
        await src.dispose()
        await dst.dispose()


async def _copy_table(
    src: Any, dconn: AsyncConnection, table: Table, batch: int
) -> None:
    key = list(table.primary_key.columns) or list(table.columns)
    async with src.connect() as sconn:
        result = await sconn.stream(select(table).order_by(*key))
        async for rows in result.partitions(batch):
            await dconn.execute(insert(table), [dict(row._mapping) for row in rows])


async def _reset_sequences(dconn: AsyncConnection, tables: list[Table]) -> None:
    for table in tables:
        for column in table.primary_key.columns:
            sequence = await dconn.scalar(
                text("SELECT pg_get_serial_sequence(:t, :c)"),
                {"t": table.name, "c": column.name},
            )
            if sequence:
                await dconn.execute(
                    text(
                        f'SELECT setval(:s, COALESCE((SELECT MAX("{column.name}") FROM '
                        f'"{table.name}"), 1), (SELECT COUNT(*) > 0 FROM "{table.name}"))'
                    ),
                    {"s": sequence},
                )


def main_copy(argv: list[str]) -> int:
    """``weizhili db copy SRC_URL DST_URL [--force]``."""
    parser = argparse.ArgumentParser(
        prog="weizhili db copy", description="copy every row to another database"
    )
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the rows of a destination that is not empty",
    )
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args(argv)
    try:
        rows = asyncio.run(
            copy_database(args.src, args.dst, force=args.force, batch=args.batch)
        )
    except MaintenanceError as exc:
        print(f"db copy: {exc}", file=sys.stderr)
        return 1
    width = max(len(name) for name, _, _ in rows)
    print(f"{'table'.ljust(width)}  {'source':>8}  {'copied':>8}")
    for name, source, copied in rows:
        print(f"{name.ljust(width)}  {source:>8}  {copied:>8}")
    print(
        f"copied {sum(c for _, _, c in rows)} rows in {len(rows)} tables: counts match"
    )
    return 0


# --- backup and restore ---------------------------------------------------------------


def _pg_command(url: str) -> tuple[list[str], dict[str, str]]:
    """libpq connection options and environment; the password goes in the environment."""
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432)]
    if parsed.username:
        args += ["-U", parsed.username]
    args += ["-d", parsed.database or "postgres"]
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return args, env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MaintenanceError(f"{name} not found: install the PostgreSQL client tools")
    return found


def backup(url: str, path: Path) -> None:
    """Write a consistent copy of the database to ``path`` while the bot may run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if is_sqlite(url):
        source = sqlite_path(url)
        if source is None or not source.is_file():
            raise MaintenanceError(f"no SQLite database at {source}")
        with sqlite3.connect(source) as src, sqlite3.connect(path) as dst:
            src.backup(
                dst
            )  # SQLite's online backup: consistent under concurrent writes
        path.chmod(0o600)
        return
    args, env = _pg_command(url)
    subprocess.run(
        [
            _tool("pg_dump"),
            *args,
            "--clean",
            "--if-exists",
            "--no-owner",
            "-f",
            str(path),
        ],
        env=env,
        check=True,
    )
    path.chmod(0o600)


def restore(url: str, path: Path, *, force: bool = False) -> None:
    """Replace the database's contents with a backup made by :func:`backup`."""
    if not path.is_file():
        raise MaintenanceError(f"no backup at {path}")
    if is_sqlite(url):
        target = sqlite_path(url)
        if target is None:
            raise MaintenanceError(
                "restore needs a SQLite file, not an in-memory database"
            )
        with sqlite3.connect(path) as src:
            if src.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise MaintenanceError(f"{path} is not a sound SQLite database")
            if target.is_file() and not force and _sqlite_has_rows(target):
                raise MaintenanceError(
                    f"{target} holds data; use --force to replace it"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(target) as dst:
                src.backup(dst)
        return
    if not force:
        raise MaintenanceError(
            "restoring into PostgreSQL replaces every table; add --force"
        )
    args, env = _pg_command(url)
    subprocess.run(
        [_tool("psql"), *args, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _sqlite_has_rows(path: Path) -> bool:
    with sqlite3.connect(path) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return any(
            conn.execute(f'SELECT 1 FROM "{n}" LIMIT 1').fetchone()
            for n in names
            if n not in SKIP_TABLES
        )


def _url_from_config(explicit: str | None) -> str:
    if explicit:
        return explicit
    from bot.config import load_config

    return load_config(os.environ.get("WEIZHILI_CONFIG") or None).db_url


def main_backup(argv: list[str]) -> int:
    """``weizhili backup PATH [--url URL]``."""
    parser = argparse.ArgumentParser(
        prog="weizhili backup", description="write a consistent copy of the database"
    )
    parser.add_argument("path")
    parser.add_argument("--url", help="database URL (default: from the config)")
    args = parser.parse_args(argv)
    try:
        backup(_url_from_config(args.url), Path(args.path))
    except (MaintenanceError, subprocess.CalledProcessError, sqlite3.Error) as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    print(f"backup written: {args.path}")
    return 0


def main_restore(argv: list[str]) -> int:
    """``weizhili restore PATH [--url URL] [--force]`` (stop the bot first)."""
    parser = argparse.ArgumentParser(
        prog="weizhili restore", description="replace the database with a backup"
    )
    parser.add_argument("path")
    parser.add_argument("--url", help="database URL (default: from the config)")
    parser.add_argument(
        "--force", action="store_true", help="replace a database that holds data"
    )
    args = parser.parse_args(argv)
    try:
        restore(_url_from_config(args.url), Path(args.path), force=args.force)
    except (MaintenanceError, subprocess.CalledProcessError, sqlite3.Error) as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored from {args.path}")
    return 0


# --- journal purge ------------------------------------------------------------------


async def purge_journal(services: Any) -> int:
    """Forget the words of casual messages older than ``journal_keep_days``."""
    from models.tables import InboundMessage

    cutoff = services.now() - timedelta(days=services.config.journal_keep_days)
    async with services.db.session() as session:
        result = await session.execute(
            update(InboundMessage)
            .where(
                InboundMessage.received_at < cutoff,
                InboundMessage.text.is_not(None),
                InboundMessage.status.in_(("done", "ignored")),
                InboundMessage.outcome.in_(CASUAL_OUTCOMES),
            )
            .values(text=None)
        )
    purged = int(result.rowcount or 0)
    log.info(
        "journal purged count=%d keep_days=%d",
        purged,
        services.config.journal_keep_days,
    )
    return purged
