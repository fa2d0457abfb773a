"""What an honor roll is: the period it covers and what it says.

Periods are ISO weeks (Monday first) and calendar months, computed in the
community's time zone, never the machine's; ``end`` is exclusive. The roll's
dataclasses are filled by :mod:`handlers.honor_queries`; everything here is
re-exported by :mod:`handlers.honor_roll`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# --- periods ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A week (ISO, Monday first) or a calendar month, in the community's zone."""

    kind: str  # week | month
    label: str  # 2026-W49 | 2026-11
    start: datetime
    end: datetime  # exclusive

    @property
    def noun(self) -> str:
        return "本周" if self.kind == "week" else "本月"

    def dates(self) -> str:
        """``11月30日—12月6日``"""
        last = self.end - timedelta(days=1)
        return f"{self.start.month}月{self.start.day}日—{last.month}月{last.day}日"

    def heading(self) -> str:
        """``2026年第49周（11月30日—12月6日）`` or ``2026年11月``."""
        if self.kind == "week":
            week = int(self.label.split("-W")[1])
            return f"{self.start.year}年第{week}周（{self.dates()}）"
        return f"{self.start.year}年{self.start.month}月"


def week_period(year: int, week: int, tz: ZoneInfo) -> Period:
    """The ISO week ``year-Wweek``."""
    monday = date.fromisocalendar(year, week, 1)
    start = datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    return Period("week", f"{year}-W{week:02d}", start, start + timedelta(days=7))


def week_of(moment: datetime, tz: ZoneInfo) -> Period:
    """The ISO week that holds ``moment``."""
    iso = moment.astimezone(tz).isocalendar()
    return week_period(iso.year, iso.week, tz)


def previous_week(moment: datetime, tz: ZoneInfo) -> Period:
    """The last complete week before the week that holds ``moment``."""
    return week_of(week_of(moment, tz).start - timedelta(days=1), tz)


def month_period(year: int, month: int, tz: ZoneInfo) -> Period:
    """The calendar month ``year-month``."""
    start = datetime(year, month, 1, tzinfo=tz)
    nxt = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return Period("month", f"{year}-{month:02d}", start, nxt)


def previous_month(moment: datetime, tz: ZoneInfo) -> Period:
    """The calendar month before the one that holds ``moment``."""
    local = moment.astimezone(tz)
    first = local.replace(day=1) - timedelta(days=1)
    return month_period(first.year, first.month, tz)


def parse_week(text: str, tz: ZoneInfo) -> Period:
    """``2026-W49`` → that week; ValueError otherwise."""
    match = re.fullmatch(r"(\d{4})-?W(\d{1,2})", text.strip(), re.I)
    if not match:
        raise ValueError(f"not an ISO week like 2026-W49: {text!r}")
    return week_period(int(match.group(1)), int(match.group(2)), tz)


# --- the roll ---------------------------------------------------------------------------


@dataclass
class RollEntry:
    """One resident on the roll."""

    rank: int
    member_id: str
    name: str
    points: int
    reasons: list[str] = field(default_factory=list)

    def reason_text(self, limit: int = 60) -> str:
        text = "；".join(self.reasons) or "热心助人"
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class StaffThanks:
    """A staff member residents praised in the period."""

    name: str
    times: int
    example: str = ""


@dataclass
class Roll:
    """Everything one honor roll says."""

    community: str
    grid_id: str | None  # None: the whole community
    grid_name: str
    period: Period
    entries: list[RollEntry]
    staff: list[StaffThanks]
    same_day_resolved: int
    praise_count: int

    @property
    def empty(self) -> bool:
        return not self.entries and not self.staff and not self.same_day_resolved


def public_reason(note: str) -> str:
    """A praise reason as the public reads it: "帮我拿快递" → "帮邻居拿快递"."""
    text = re.sub(r"\s+", " ", note).strip(" ，。,.!！")
    text = text.replace("我们", "大家").replace("我家", "邻居家").replace("我", "邻居")
    return text[:24]
