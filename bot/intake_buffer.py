"""Holding incoming messages while the database cannot write them.

A read-only file, a full disk or a lock that never clears makes the journal write
fail. The pipeline then keeps each new message here, in arrival order, and retries
with back-off; staff hear of it once per episode. The buffer is bounded
(``intake.buffer_size``): a message that does not fit is logged at ERROR with its id,
never dropped silently. Each held message is also written to a spool file
(:mod:`bot.intake_spool`) before its sender hears "held", so a crash loses none.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bot.channels.base import IncomingMessage
from bot.db_trouble import DB_TROUBLE, db_reason, is_db_trouble

__all__ = ["DB_TROUBLE", "IntakeBuffer", "db_reason", "is_db_trouble"]

DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

TROUBLE_NOTICE = (
    "【系统提示】数据库暂时无法写入，新消息先暂存起来（最多{capacity}条），"
    "恢复后会自动补处理。请尽快联系管理员检查磁盘和数据库。"
)
FULL_NOTICE = "【系统提示】暂存已满，从现在起新消息无法保存，已记录在日志中。请立即处理数据库故障。"
RECOVERED_NOTICE = "【系统提示】数据库已恢复，暂存的{held}条消息已补处理。"
LOST_NOTE = "另有{dropped}条因暂存已满未能保存，消息编号见日志。"


@dataclass
class IntakeBuffer:
    """The held messages of one episode of database trouble, and what staff were told."""

    capacity: int = 10_000
    delays: tuple[float, ...] = DELAYS
    messages: deque[IncomingMessage] = field(default_factory=deque)
    # journalled, but their handling failed on the database: handled again later
    deferred: list[tuple[int, IncomingMessage]] = field(default_factory=list)
    notices: list[str] = field(
        default_factory=list
    )  # for staff, once the outbox writes
    in_trouble: bool = False
    told_full: bool = False
    held_total: int = 0
    dropped: list[str] = field(default_factory=list)

    def push(self, message: IncomingMessage) -> bool:
        """Hold a message; False when the buffer is full (the caller logs the loss)."""
        if len(self.messages) >= self.capacity:
            self.dropped.append(message.message_id)
            return False
        self.messages.append(message)
        self.held_total += 1
        return True

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        return self.delays[min(attempt, len(self.delays) - 1)]

    @property
    def waiting(self) -> bool:
        """Whether anything still waits for the database."""
        return bool(self.messages or self.deferred or self.notices)

    def recovered_notice(self) -> str:
        """The note to staff at the end of an episode."""
        text = RECOVERED_NOTICE.format(held=self.held_total)
        if self.dropped:
            text += LOST_NOTE.format(dropped=len(self.dropped))
        return text

    def reset(self) -> None:
        """The episode is over."""
        self.in_trouble = self.told_full = False
        self.held_total = 0
        self.dropped = []
