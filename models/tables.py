"""Every table of the bot. Times are aware UTC; ids of people are WeChat ids."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime


class Grid(Base):
    __tablename__ = "grids"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    room_id: Mapped[str] = mapped_column(String(128), default="")
    room_topic: Mapped[str] = mapped_column(String(256), default="")
    manager_id: Mapped[str] = mapped_column(String(128), default="")


class Member(Base):
    """Anyone seen in a group, by WeChat id."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class StaffRole(Base):
    """A member's staff role; rights follow the WeChat id, never the display name."""

    __tablename__ = "staff_roles"

    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    role: Mapped[str] = mapped_column(String(16))  # 网格员 居委会 物业 管理员
    grids: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: all grids
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # "config": listed in the config file, which wins at every start;
    # "dashboard": given by an admin in the dashboard, kept across restarts.
    origin: Mapped[str] = mapped_column(String(16), default="config",
                                        server_default="config")
    # Dashboard sessions signed before this moment (Unix milliseconds) are refused:
    # set by logging out and by a new password, so a copied cookie dies with them.
    sessions_from: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class InboundMessage(Base):
    """The journal: every incoming message, stored before it is acted on."""

    __tablename__ = "inbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(128), unique=True)
    channel: Mapped[str] = mapped_column(String(32), default="")
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    talker_id: Mapped[str] = mapped_column(String(128))
    talker_name: Mapped[str] = mapped_column(String(128), default="")
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # purged for chit-chat
    mention_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    mentions_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    outcome: Mapped[str] = mapped_column(String(64), default="")
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    # a sender's recent messages (the praise repeat check) without scanning the journal
    __table_args__ = (Index("ix_inbound_talker_received", "talker_id", "received_at"),)


class Petition(Base):
    """诉求: one matter raised by a resident, with its routing and deadlines."""

    __tablename__ = "petitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reporter_id: Mapped[str] = mapped_column(String(128), index=True)
    reporter_name: Mapped[str] = mapped_column(String(128), default="")
    source_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), default="其他", index=True)
    party: Mapped[str] = mapped_column(String(16), default="网格员", index=True)
    assignee_id: Mapped[str] = mapped_column(String(128), default="")
    location: Mapped[str] = mapped_column(String(64), default="")
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # 纠纷: no details in group
    status: Mapped[str] = mapped_column(String(16), default="reported", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    response_due: Mapped[datetime] = mapped_column(UTCDateTime())
    resolve_due: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duplicate_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    escalation: Mapped[int] = mapped_column(Integer, default=0)  # 0 none, 1 nudged, 2 gm, 3 居委会
    # The deadline being watched now (response, then same-day); escalation counts for it.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    due_kind: Mapped[str] = mapped_column(String(16), default="")  # response | resolve
    followers: Mapped[list[str]] = mapped_column(JSON, default=list)  # 同问 +1 ids

    events: Mapped[list[PetitionEvent]] = relationship(
        back_populates="petition", lazy="raise", order_by="PetitionEvent.id"
    )

    __table_args__ = (Index("ix_petitions_status_due", "status", "response_due"),)


class PetitionEvent(Base):
    """One change in a petition's life: who, when, from, to, note."""

    __tablename__ = "petition_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str] = mapped_column(String(16), default="")
    to_status: Mapped[str] = mapped_column(String(16), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    petition: Mapped[Petition] = relationship(back_populates="events", lazy="raise")


class Followup(Base):
    """回访: the questions asked after a resolution and the reporter's answers."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    petition_id: Mapped[int] = mapped_column(ForeignKey("petitions.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(128), index=True)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    contacted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    solved: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    satisfied: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    answer: Mapped[str] = mapped_column(Text, default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Praise(Base):
    """表扬: a commendation from one member of another."""

    __tablename__ = "praise"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    giver_id: Mapped[str] = mapped_column(String(128), index=True)
    target_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    target_name: Mapped[str] = mapped_column(String(128), default="")
    target_is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text, default="")
    source_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    note: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    confirmed_by: Mapped[str] = mapped_column(String(128), default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PointEntry(Base):
    """积分: one line of the ledger; a mistake is reversed by a new negative line."""

    __tablename__ = "point_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128), index=True)
    grid_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    delta: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))  # praise volunteer hazard suggestion award reversal
    ref: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
    reverses: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        Index("ix_points_member_time", "member_id", "created_at"),
        # an entry is reversed at most once, and one cause (a praise, a petition) pays once
        Index("uq_points_reverses", "reverses", unique=True),
        Index("uq_points_ref", "ref", unique=True, sqlite_where=text("ref != ''"),
              postgresql_where=text("ref != ''")),
    )


class Reminder(Base):
    """提醒 or 通知: a row is the truth; the scheduler only wakes the bot up."""

    __tablename__ = "reminders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), default="reminder")  # reminder | notice
    creator_id: Mapped[str] = mapped_column(String(128), index=True)
    room_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    target_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # @ these; empty: all
    target_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    content: Mapped[str] = mapped_column(Text)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    recurrence: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    personal_time: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    rollcall_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rollcall_done: Mapped[bool] = mapped_column(Boolean, default=False)
    # the bot account it was asked of: a private chat's reminder goes back through it
    account: Mapped[str] = mapped_column(String(128), default="", server_default="")


class RollcallAnswer(Base):
    """Who answered 收到 to a notice that asked for it."""

    __tablename__ = "rollcall_answers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    reminder_id: Mapped[int] = mapped_column(ForeignKey("reminders.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("reminder_id", "member_id"),)


class OutboundMessage(Base):
    """The outbox: every message the bot sends, stored before it is sent."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(128), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    mention_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    mention_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    image_path: Mapped[str] = mapped_column(String(512), default="")
    source: Mapped[str] = mapped_column(String(64), default="")  # what caused it
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(256), default="")
    platform_id: Mapped[str] = mapped_column(String(128), default="")
    # the bot account whose WeChat sends it ("" : any); several accounts share a database
    account: Mapped[str] = mapped_column(String(128), default="", server_default="")

    __table_args__ = (Index("ix_outbound_status_account", "status", "account"),)


class AuditEntry(Base):
    """Every state change and every refused command: who, what, when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    actor_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128), default="")
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[str] = mapped_column(Text, default="")


class JobRun(Base):
    """A once-only job (an honor roll, a digest) keyed by what and when it covers."""

    __tablename__ = "job_runs"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(String(256), default="")


class LoginToken(Base):
    """A one-time dashboard login code sent to staff by private message."""

    __tablename__ = "login_tokens"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used: Mapped[bool] = mapped_column(Boolean, default=False)
