"""staff_roles.sessions_from: dashboard sessions signed before it are refused

Revision ID: 0008_staff_sessions_from
Revises: 0007_reminder_account
Create Date: 2026-12-04 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_staff_sessions_from"
down_revision = "0007_reminder_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_roles") as batch:
        batch.add_column(sa.Column("sessions_from", sa.BigInteger(), nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("staff_roles") as batch:
        batch.drop_column("sessions_from")
