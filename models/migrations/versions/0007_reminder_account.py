"""reminders.account: the bot account a personal reminder was asked of

Revision ID: 0007_reminder_account
Revises: 0006_outbox_account
Create Date: 2026-12-04 18:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_reminder_account"
down_revision = "0006_outbox_account"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.add_column(sa.Column("account", sa.String(length=128), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch:
        batch.drop_column("account")
