"""outbound_messages.account: the bot account that sends a row

Revision ID: 0006_outbox_account
Revises: 0005_staff_origin
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_account"
down_revision = "0005_staff_origin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbound_messages") as batch:
        batch.add_column(sa.Column("account", sa.String(length=128), nullable=False,
                                   server_default=""))
    op.create_index("ix_outbound_status_account", "outbound_messages",
                    ["status", "account"])


def downgrade() -> None:
    op.drop_index("ix_outbound_status_account", table_name="outbound_messages")
    with op.batch_alter_table("outbound_messages") as batch:
        batch.drop_column("account")
