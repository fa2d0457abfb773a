"""inbound_messages: index a sender's messages by time (praise repeat check)

Revision ID: 0004_inbound_talker
Revises: 0003_petition_due
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0004_inbound_talker"
down_revision = "0003_petition_due"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbound_talker_received", "inbound_messages",
                    ["talker_id", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_inbound_talker_received", table_name="inbound_messages")
