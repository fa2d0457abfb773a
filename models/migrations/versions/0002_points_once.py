"""points: a ledger entry is reversed at most once; one cause pays once

Revision ID: 0002_points
Revises: 0001
Create Date: 2026-12-04 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_points"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.create_index("uq_points_reverses", ["reverses"], unique=True)
        batch_op.create_index(
            "uq_points_ref",
            ["ref"],
            unique=True,
            sqlite_where=sa.text("ref != ''"),
            postgresql_where=sa.text("ref != ''"),
        )


def downgrade() -> None:
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_points_ref")
        batch_op.drop_index("uq_points_reverses")
