"""Alembic environment: runs the migrations on the async engine of the given URL."""

from __future__ import annotations

import asyncio

from alembic import context

import models.tables  # noqa: F401 - registers every table on the metadata
from models.base import Base
from models.db import create_engine

target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    # The bot's own engine: on SQLite it opens every transaction with BEGIN IMMEDIATE,
    # so a migration's DDL and its version stamp commit together. The driver's default
    # runs each CREATE on its own, and a crash half-way left a schema that no upgrade
    # could finish ("table already exists").
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
