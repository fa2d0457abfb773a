"""Public types of the time parser: recurrences, parse results, dates in Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_CN: tuple[str, ...] = ("一", "二", "三", "四", "五", "六", "日")
KINDS = ("daily", "weekly", "workdays", "monthly")

DEFAULT_DAYPARTS: dict[str, time] = {
    "早上": time(8, 0),
    "上午": time(9, 0),
    "中午": time(12, 0),
    "下午": time(15, 0),
    "傍晚": time(18, 0),
    "晚上": time(19, 0),
    "凌晨": time(6, 0),
}


@dataclass(frozen=True)
class Recurrence:
    """A repeating reminder time, in the community's zone."""

    kind: str
    hour: int
    minute: int
    weekdays: tuple[str, ...] = ()
    month_day: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown recurrence kind {self.kind!r}")
        if not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(f"bad time {self.hour}:{self.minute}")
        if self.kind == "weekly":
            if not self.weekdays or any(w not in WEEKDAY_NAMES for w in self.weekdays):
                raise ValueError(f"bad weekdays {self.weekdays!r}")
        if self.kind == "monthly" and not (
            self.month_day is not None and 1 <= self.month_day <= 31
        ):
            raise ValueError(f"bad month day {self.month_day!r}")

    def _runs_on(self, day: date) -> bool:
        if self.kind == "daily":
            return True
        if self.kind == "workdays":
            return day.weekday() < 5
        if self.kind == "weekly":
            return WEEKDAY_NAMES[day.weekday()] in self.weekdays
        return day.day == self.month_day

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime:
        """First occurrence strictly after ``moment``, aware, in ``tz``."""
        local = moment.astimezone(tz)
        day = local.date()
        for _ in range(400):
            if self._runs_on(day):
                candidate = datetime.combine(day, time(self.hour, self.minute), tz)
                if candidate > moment:
                    return candidate
            day += timedelta(days=1)
        raise ValueError(f"no occurrence of {self!r} within 400 days")

    def describe(self) -> str:
        """Chinese summary, e.g. '每周二、周四 09:00'."""
        clock = f"{self.hour:02d}:{self.minute:02d}"
        if self.kind == "daily":
            return f"每天 {clock}"
        if self.kind == "workdays":
            return f"工作日 {clock}"
        if self.kind == "monthly":
            return f"每月{self.month_day}号 {clock}"
        names = "、".join(
            f"周{WEEKDAY_CN[WEEKDAY_NAMES.index(w)]}" for w in self.weekdays
        )
        return f"每{names} {clock}"

    def to_json(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "kind": self.kind,
            "hour": self.hour,
            "minute": self.minute,
            "weekdays": list(self.weekdays),
            "month_day": self.month_day,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recurrence:
        """Rebuild from ``to_json`` output; raises ValueError on bad data."""
        return cls(
            kind=str(data["kind"]),
            hour=int(data["hour"]),
            minute=int(data["minute"]),
            weekdays=tuple(str(w) for w in data.get("weekdays") or ()),
            month_day=None if data.get("month_day") is None else int(data["month_day"]),
        )

    def cron_fields(self) -> dict[str, Any]:
        """Keyword arguments for APScheduler's CronTrigger (weekday names, no numbers)."""
        fields: dict[str, Any] = {"hour": self.hour, "minute": self.minute}
        if self.kind == "weekly":
            fields["day_of_week"] = ",".join(self.weekdays)
        elif self.kind == "workdays":
            fields["day_of_week"] = "mon-fri"
        elif self.kind == "monthly":
            fields["day"] = self.month_day
        return fields


@dataclass(frozen=True)
class TimeParse:
    """What the time words of one message mean."""

    status: str  # 'ok' | 'ambiguous' | 'past' | 'invalid' | 'none'
    when: datetime | None
    recurrence: Recurrence | None
    question: str | None
    matched: str
    rest: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (ISO times)."""
        return {
            "status": self.status,
            "when": self.when.isoformat() if self.when else None,
            "recurrence": self.recurrence.to_json() if self.recurrence else None,
            "question": self.question,
            "matched": self.matched,
            "rest": self.rest,
        }


def describe_when(when: datetime, tz: ZoneInfo) -> str:
    """Chinese date and time for confirmations, e.g. '12月5日（周六）15:00'."""
    local = when.astimezone(tz)
    weekday = WEEKDAY_CN[local.weekday()]
    return f"{local.month}月{local.day}日（周{weekday}）{local:%H:%M}"
