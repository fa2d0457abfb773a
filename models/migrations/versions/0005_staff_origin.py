"""staff_roles.origin: roles given in the dashboard survive a restart

Revision ID: 0005_staff_origin
Revises: 0004_inbound_talker
Create Date: 2026-12-04 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_staff_origin"
down_revision = "0004_inbound_talker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_roles") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=16), nullable=False,
                                   server_default="config"))


def downgrade() -> None:
    with op.batch_alter_table("staff_roles") as batch:
        batch.drop_column("origin")
