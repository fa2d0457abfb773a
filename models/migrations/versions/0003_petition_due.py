"""petitions: the deadline watched now (due_at, due_kind) for nudges and escalation

Revision ID: 0003_petition_due
Revises: 0002_points
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0003_petition_due"
down_revision = "0002_points"
branch_labels = None
depends_on = None

OPEN = "('reported', 'accepted', 'in_progress', 'transferred', 'reopened')"
AWAITING = "('reported', 'transferred', 'reopened')"


def upgrade() -> None:
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("due_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "due_kind", sa.String(length=16), nullable=False, server_default=""
            )
        )
        batch_op.create_index(
            batch_op.f("ix_petitions_due_at"), ["due_at"], unique=False
        )
    # Open petitions keep being watched: the response deadline until someone responds.
    op.execute(
        f"UPDATE petitions SET due_at = response_due, due_kind = 'response' "
        f"WHERE status IN {AWAITING}"
    )
    op.execute(
        f"UPDATE petitions SET due_at = resolve_due, due_kind = 'resolve' "
        f"WHERE status IN {OPEN} AND due_at IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("petitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_petitions_due_at"))
        batch_op.drop_column("due_kind")
        batch_op.drop_column("due_at")
