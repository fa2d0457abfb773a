"""The migrations build exactly the schema the models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import models.tables  # noqa: F401 - registers every table on the metadata
from models.base import Base
from models.db import Database, upgrade
from tests.conftest import database_url_for


async def test_migrations_build_the_schema_the_models_describe(tmp_path):
    url = database_url_for(tmp_path)
    await upgrade(url)
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            differences = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata))
    finally:
        await db.close()
    assert differences == []
