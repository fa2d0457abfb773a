"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 15:29:05.656565
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=128), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_at'), ['at'], unique=False)

    op.create_table('grids',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('room_topic', sa.String(length=256), nullable=False),
    sa.Column('manager_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_grids'))
    )
    op.create_table('inbound_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=128), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('grid_id', sa.String(length=64), nullable=True),
    sa.Column('talker_id', sa.String(length=128), nullable=False),
    sa.Column('talker_name', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('mention_ids', sa.JSON(), nullable=False),
    sa.Column('mentions_bot', sa.Boolean(), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=64), nullable=False),
    sa.Column('processed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_messages')),
    sa.UniqueConstraint('message_id', name=op.f('uq_inbound_messages_message_id'))
    )
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_messages_status'), ['status'], unique=False)

    op.create_table('job_runs',
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('ran_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.String(length=256), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_job_runs'))
    )
    op.create_table('login_tokens',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('expires_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_login_tokens'))
    )
    op.create_table('members',
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('grid_id', sa.String(length=64), nullable=True),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('first_seen', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_seen', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_members'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_members_grid_id'), ['grid_id'], unique=False)

    op.create_table('outbound_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('mention_ids', sa.JSON(), nullable=False),
    sa.Column('mention_names', sa.JSON(), nullable=False),
    sa.Column('image_path', sa.String(length=512), nullable=False),
    sa.Column('source', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('not_before', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=256), nullable=False),
    sa.Column('platform_id', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbound_messages'))
    )
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbound_messages_room_id'), ['room_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbound_messages_status'), ['status'], unique=False)

    op.create_table('petitions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('grid_id', sa.String(length=64), nullable=True),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('reporter_id', sa.String(length=128), nullable=False),
    sa.Column('reporter_name', sa.String(length=128), nullable=False),
    sa.Column('source_message_id', sa.String(length=128), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('party', sa.String(length=16), nullable=False),
    sa.Column('assignee_id', sa.String(length=128), nullable=False),
    sa.Column('location', sa.String(length=64), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('response_due', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolve_due', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('accepted_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duplicate_of', sa.Integer(), nullable=True),
    sa.Column('reopen_count', sa.Integer(), nullable=False),
    sa.Column('escalation', sa.Integer(), nullable=False),
    sa.Column('followers', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_petitions'))
    )
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_petitions_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_party'), ['party'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_reporter_id'), ['reporter_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_petitions_status'), ['status'], unique=False)
        batch_op.create_index('ix_petitions_status_due', ['status', 'response_due'], unique=False)

    op.create_table('point_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('grid_id', sa.String(length=64), nullable=True),
    sa.Column('delta', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('reverses', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_entries'))
    )
    with op.batch_alter_table('point_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_point_entries_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_point_entries_member_id'), ['member_id'], unique=False)
        batch_op.create_index('ix_points_member_time', ['member_id', 'created_at'], unique=False)

    op.create_table('praise',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('grid_id', sa.String(length=64), nullable=True),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('giver_id', sa.String(length=128), nullable=False),
    sa.Column('target_id', sa.String(length=128), nullable=True),
    sa.Column('target_name', sa.String(length=128), nullable=False),
    sa.Column('target_is_staff', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('source_message_id', sa.String(length=128), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.String(length=128), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_by', sa.String(length=128), nullable=False),
    sa.Column('confirmed_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_praise'))
    )
    with op.batch_alter_table('praise', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_praise_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_praise_giver_id'), ['giver_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_praise_grid_id'), ['grid_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_praise_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_praise_target_id'), ['target_id'], unique=False)

    op.create_table('reminders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('creator_id', sa.String(length=128), nullable=False),
    sa.Column('room_ids', sa.JSON(), nullable=False),
    sa.Column('target_ids', sa.JSON(), nullable=False),
    sa.Column('target_names', sa.JSON(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('recurrence', sa.JSON(), nullable=True),
    sa.Column('personal_time', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sent_count', sa.Integer(), nullable=False),
    sa.Column('rollcall_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('rollcall_done', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminders'))
    )
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reminders_creator_id'), ['creator_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminders_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_reminders_status'), ['status'], unique=False)

    op.create_table('staff_roles',
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('grids', sa.JSON(), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_staff_roles'))
    )
    op.create_table('followups',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('petition_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('room_id', sa.String(length=128), nullable=True),
    sa.Column('due_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('asked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('contacted', sa.Boolean(), nullable=True),
    sa.Column('solved', sa.Boolean(), nullable=True),
    sa.Column('satisfied', sa.Boolean(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('answered_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], name=op.f('fk_followups_petition_id_petitions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_followups'))
    )
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_followups_due_at'), ['due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_followups_member_id'), ['member_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_followups_petition_id'), ['petition_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_followups_status'), ['status'], unique=False)

    op.create_table('petition_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('petition_id', sa.Integer(), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=128), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['petition_id'], ['petitions.id'], name=op.f('fk_petition_events_petition_id_petitions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_petition_events'))
    )
    with op.batch_alter_table('petition_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_petition_events_petition_id'), ['petition_id'], unique=False)

    op.create_table('rollcall_answers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reminder_id', sa.Integer(), nullable=False),
    sa.Column('member_id', sa.String(length=128), nullable=False),
    sa.Column('at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['reminder_id'], ['reminders.id'], name=op.f('fk_rollcall_answers_reminder_id_reminders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rollcall_answers')),
    sa.UniqueConstraint('reminder_id', 'member_id', name=op.f('uq_rollcall_answers_reminder_id'))
    )
    with op.batch_alter_table('rollcall_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rollcall_answers_reminder_id'), ['reminder_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('rollcall_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rollcall_answers_reminder_id'))

    op.drop_table('rollcall_answers')
    with op.batch_alter_table('petition_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_petition_events_petition_id'))

    op.drop_table('petition_events')
    with op.batch_alter_table('followups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_followups_status'))
        batch_op.drop_index(batch_op.f('ix_followups_petition_id'))
        batch_op.drop_index(batch_op.f('ix_followups_member_id'))
        batch_op.drop_index(batch_op.f('ix_followups_due_at'))

    op.drop_table('followups')
    op.drop_table('staff_roles')
    with op.batch_alter_table('reminders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reminders_status'))
        batch_op.drop_index(batch_op.f('ix_reminders_due_at'))
        batch_op.drop_index(batch_op.f('ix_reminders_creator_id'))

    op.drop_table('reminders')
    with op.batch_alter_table('praise', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_praise_target_id'))
        batch_op.drop_index(batch_op.f('ix_praise_status'))
        batch_op.drop_index(batch_op.f('ix_praise_grid_id'))
        batch_op.drop_index(batch_op.f('ix_praise_giver_id'))
        batch_op.drop_index(batch_op.f('ix_praise_created_at'))

    op.drop_table('praise')
    with op.batch_alter_table('point_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_points_member_time')
        batch_op.drop_index(batch_op.f('ix_point_entries_member_id'))
        batch_op.drop_index(batch_op.f('ix_point_entries_created_at'))

    op.drop_table('point_entries')
    with op.batch_alter_table('petitions', schema=None) as batch_op:
        batch_op.drop_index('ix_petitions_status_due')
        batch_op.drop_index(batch_op.f('ix_petitions_status'))
        batch_op.drop_index(batch_op.f('ix_petitions_reporter_id'))
        batch_op.drop_index(batch_op.f('ix_petitions_party'))
        batch_op.drop_index(batch_op.f('ix_petitions_grid_id'))
        batch_op.drop_index(batch_op.f('ix_petitions_created_at'))
        batch_op.drop_index(batch_op.f('ix_petitions_category'))

    op.drop_table('petitions')
    with op.batch_alter_table('outbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbound_messages_status'))
        batch_op.drop_index(batch_op.f('ix_outbound_messages_room_id'))

    op.drop_table('outbound_messages')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_grid_id'))

    op.drop_table('members')
    op.drop_table('login_tokens')
    op.drop_table('job_runs')
    with op.batch_alter_table('inbound_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_messages_status'))

    op.drop_table('inbound_messages')
    op.drop_table('grids')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_at'))

    op.drop_table('audit_log')
