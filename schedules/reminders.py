"""Sending reminders and notices that have fallen due.

The ``reminders`` table is the truth: this job reads what is due and sends it. A
reminder missed while the bot was down goes out once, late, marked （补发）, if it is
within ``reminders.grace_minutes``; older ones are reported to staff instead. A
recurring reminder is moved to its next occurrence after now, so an outage of
several periods fires it once, not once per missed run (field report B08).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Services
from handlers.timeparse import Recurrence, describe_when
from models.tables import Reminder

log = logging.getLogger(__name__)

LATE_AFTER = timedelta(minutes=2)


async def fire_due_reminders(services: Services, session: AsyncSession | None = None) -> int:
    """Send every reminder due now; returns how many were sent."""
    now = services.now()
    config = services.config
    grace = timedelta(minutes=config.reminders.grace_minutes)
    sent = 0
    async with services.transaction(session) as session:
        due = list(await session.scalars(
            select(Reminder).where(Reminder.status == "pending", Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id)
        ))
        for reminder in due:
            late = now - reminder.due_at
            if not reminder.personal_time and config.in_quiet_hours(now) and late < grace:
                # A group post waits for the morning; it is not late when it goes then.
                reminder.due_at = config.quiet_end_after(now)
                log.info("group post held for quiet hours reminder=%s", reminder.id)
                continue
            if late > grace and not reminder.recurrence:
                reminder.status = "missed"
                services.outbox.add(
                    session, config.community.staff_room,
                    f"提醒 #{reminder.id}（{describe_when(reminder.due_at, config.tz)}"
                    f" {reminder.content}）因系统停机未能按时发送，请人工跟进。",
                    source=f"reminder-missed:{reminder.id}")
                log.warning("reminder missed beyond grace reminder=%s", reminder.id)
                continue
            mark = "（补发）" if late > LATE_AFTER else ""
            prefix = "通知" if reminder.kind == "notice" else "提醒"
            text = f"【{prefix}】{reminder.content}{mark}"
            for room_id in reminder.room_ids or []:
                # a grid's group is posted to by its account; a private chat's reminder
                # by the account it was asked of
                private = reminder.account and config.grid_for_room(room_id) is None
                services.outbox.add(session, room_id, text,
                                    mention_ids=reminder.target_ids or [],
                                    mention_names=reminder.target_names or [],
                                    source=f"reminder:{reminder.id}",
                                    account=reminder.account if private else None)
            reminder.last_sent_at = now
            reminder.sent_count += 1
            sent += 1
            if reminder.recurrence:
                rule = Recurrence.from_json(reminder.recurrence)
                reminder.due_at = rule.next_after(now, config.tz)
            else:
                reminder.status = "sent"
            log.info("reminder sent reminder=%s late=%s", reminder.id, bool(mark))
    if sent:
        services.outbox.wake()
    return sent
