"""Petition deadlines in office time: the response deadline and the same-day one.

A response is due two office hours after the report (a report at night: two hours
after the next opening); an urgent matter in 30 minutes at any hour. The same-day
(矛盾不过夜) deadline is tonight's ``deadlines.same_day`` time, or tomorrow's when
less than an hour of today is left.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from bot.config import Config

WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def in_office(config: Config, moment: datetime) -> bool:
    """Whether ``moment`` falls inside the community's office hours."""
    local = moment.astimezone(config.tz)
    c = config.community
    return (
        WEEKDAY_KEYS[local.weekday()] in c.office_days
        and c.office_open <= local.time() < c.office_close
    )


def add_office_minutes(config: Config, start: datetime, minutes: int) -> datetime:
    """``start`` plus ``minutes`` counted only inside office hours."""
    tz = config.tz
    c = config.community
    local = start.astimezone(tz)
    remaining = timedelta(minutes=minutes)
    for _ in range(30):  # at most a month of closed days
        day_open = datetime.combine(local.date(), c.office_open, tz)
        day_close = datetime.combine(local.date(), c.office_close, tz)
        if WEEKDAY_KEYS[local.weekday()] in c.office_days and local < day_close:
            begin = max(local, day_open)
            available = day_close - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        local = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tz)
    return start + timedelta(minutes=minutes)



def response_deadline(config: Config, start: datetime, urgent: bool) -> datetime:
    """Two office hours from ``start`` (30 minutes at any hour when urgent)."""
    d = config.deadlines
    if urgent:
        return start + timedelta(minutes=d.urgent_response_minutes)
    return add_office_minutes(config, start, d.response_minutes)


def same_day_deadline(
    config: Config, start: datetime, *, next_day: bool = False
) -> datetime:
    """Tonight's same-day time, or tomorrow's when less than an hour is left."""
    local = start.astimezone(config.tz)
    deadline = datetime.combine(local.date(), config.deadlines.same_day, config.tz)
    if next_day or local >= deadline - timedelta(hours=1):
        deadline += timedelta(days=1)
    return deadline


def deadlines(
    config: Config, created: datetime, urgent: bool
) -> tuple[datetime, datetime]:
    """The response deadline and the same-day (矛盾不过夜) deadline."""
    response = response_deadline(config, created, urgent)
    return response, max(same_day_deadline(config, created), response)
