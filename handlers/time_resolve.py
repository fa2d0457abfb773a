"""Resolving scanned time words into due times and recurrences, by the product's rules.

The conventions (parts of day, bare clock hours, past times, next occurrences) are
described in docs/time-parsing.md.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from handlers.time_grammar import (
    _DAYPART_KEY,
    _REL_DAY,
    _WD_VALUE,
    _WEEK,
    _YEAR_WORD,
    cn_number,
)
from handlers.time_types import (
    DEFAULT_DAYPARTS,
    WEEKDAY_NAMES,
    Recurrence,
    describe_when,
)

# the time a recurrence or a date without any time of day gets
_DATE_ONLY_KEY = "上午"


class _Answer(Exception):
    """Raised inside resolution to return a non-ok status with a reply."""

    def __init__(self, status: str, question: str) -> None:
        super().__init__(status)
        self.status = status
        self.question = question


def _month_add(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _checked_date(year: int, month: int, day: int) -> date:
    if not 1 <= month <= 12:
        raise _Answer("invalid", f"没有{month}月这个月份，请再确认一下日期。")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise _Answer("invalid", f"{month}月没有{day}号，请再确认一下日期。")
    return date(year, month, day)


@dataclass
class _Day:
    """A resolved calendar day and how it was said."""

    value: date
    explicit: bool  # a day word was said: a past result is refused, not moved
    step: str | None = None  # how to move to the next occurrence when none was said


def _resolve_day(name: str, found: re.Match[str], today: date) -> _Day:
    if name == "rel_day":
        return _Day(today + timedelta(days=_REL_DAY[found.group(0)]), True)
    if name == "rel_days":
        n = cn_number(found["n"]) * (-1 if "前" in (found["suf"] or "") else 1)
        unit = found["unit"]
        if unit == "个月":
            year, month = _month_add(today.year, today.month, n)
            last = calendar.monthrange(year, month)[1]
            return _Day(date(year, month, min(today.day, last)), True)
        days = n if unit in ("天", "日") else 7 * n
        return _Day(today + timedelta(days=days), True)
    if name in ("abs_date", "num_date", "md_slash"):
        month, day = cn_number(found["m"]), cn_number(found["d"])
        year = _year(found, today)
        if year is not None:
            return _Day(_checked_date(year, month, day), True)
        _checked_date(2000, month, day)  # a leap year: only impossible dates fail
        return _Day(_this_or_next_year(month, day, today), True)
    if name == "month_end":
        offset = _month_offset(found["rel"])
        if found["mon"]:
            month = cn_number(found["mon"])
            year = today.year if month >= today.month else today.year + 1
        else:
            year, month = _month_add(today.year, today.month, offset)
        value = date(year, month, calendar.monthrange(year, month)[1])
        return _Day(value, offset > 0 or bool(found["mon"]), step="month_end")
    if name == "month_dom":
        year, month = _month_add(today.year, today.month, _month_offset(found["rel"]))
        return _Day(_checked_date(year, month, cn_number(found["d"])), True)
    if name == "dom":
        day = cn_number(found["d"] or found["dd"])
        if not 1 <= day <= 31:
            raise _Answer("invalid", f"没有{day}号这一天，请再确认一下日期。")
        year, month = today.year, today.month
        if day < today.day:
            year, month = _month_add(year, month, 1)
        while day > calendar.monthrange(year, month)[1]:  # 31号 said in June: July
            year, month = _month_add(year, month, 1)
        return _Day(date(year, month, day), False, step="month")
    if name == "weekday":
        return _resolve_weekday(found, today)
    raise AssertionError(name)


def _this_or_next_year(month: int, day: int, today: date) -> date:
    """A month and day without a year: this year's, or next year's when long gone."""
    for year in range(today.year, today.year + 9):
        if month == 2 and day == 29 and not calendar.isleap(year):
            continue
        value = date(year, month, day)
        if value >= today or (today - value).days <= 31:
            return value
    raise _Answer("invalid", f"{month}月没有{day}号，请再确认一下日期。")


def _year(found: re.Match[str], today: date) -> int | None:
    """The year said with a date (2025, 25, 二零二五, 明年), or None."""
    if "yw" in found.re.groupindex and found["yw"]:
        return today.year + _YEAR_WORD[found["yw"]]
    text = found["y"] if "y" in found.re.groupindex else None
    if not text:
        return None
    year = cn_number(text)
    if len(text) == 2:  # 25年: this century unless that is more than 10 years ahead
        year += 2000 if 2000 + year <= today.year + 10 else 1900
    return year


def _month_offset(rel: str | None) -> int:
    if not rel or rel.startswith(("本", "这", "今")):
        return 0
    if rel.startswith("上"):
        return -2 if rel.startswith("上上") else -1
    return 2 if rel.startswith("下下") else 1


def _resolve_weekday(found: re.Match[str], today: date) -> _Day:
    pre = found["pre"] or ""
    wd_text = found["wd"]
    weekday = 5 if wd_text == "末" else _WD_VALUE[wd_text]
    monday = today - timedelta(days=today.weekday())
    if not pre:
        ahead = (weekday - today.weekday()) % 7
        return _Day(today + timedelta(days=ahead), False, step="week")
    if pre.startswith("下下"):
        weeks = 2
    elif pre.startswith("下"):
        weeks = 1
    elif pre.startswith("上上"):
        weeks = -2
    elif pre.startswith("上"):
        weeks = -1
    else:
        weeks = 0
    return _Day(monday + timedelta(days=7 * weeks + weekday), True)


def _daypart_word(parts: dict[str, tuple[str, re.Match[str]]]) -> str | None:
    if "part" in parts:
        return parts["part"][1].group(0)
    if "rec" in parts and parts["rec"][0] == "daily_part":
        word = parts["rec"][1]["dp"]
        return {"晚": "晚上", "早": "早上", "夜里": "晚上"}.get(word, word)
    if "day" in parts and parts["day"][0] == "rel_day":
        word = parts["day"][1].group(0)
        if word[-1] in "早晨晚夜":
            return word
    return None


def _clock(
    parts: dict[str, tuple[str, re.Match[str]]],
) -> tuple[int, int, str, bool] | None:
    """Hour and minute as said, the words, and whether am/pm already fixed the hour."""
    if "clock" not in parts:
        return None
    name, found = parts["clock"]
    hour = cn_number(found["h"])
    if name in ("hhmm", "ampm") and found["ampm"]:
        if not 1 <= hour <= 12:
            raise _Answer("invalid", f"没有“{found.group(0)}”这个时间，请再确认一下。")
        hour = hour % 12 + (12 if found["ampm"] in "pP" else 0)
        hour = hour or 24  # 12am: midnight, like 半夜12点
    if name == "ampm":
        minute = 0
    elif name == "hhmm":
        minute = int(found["m"])
    elif found["unit"] == "时" and not found["h"].isdigit() and not found["m"]:
        minute = 0
    elif found["half"]:
        minute = 30
    elif found["q"]:
        minute = 15 if found["q"] in "一1" else 45
    elif found["m"]:
        minute = cn_number(found["m"])
    else:
        minute = 0
    if hour > 24 or minute > 59 or (hour == 24 and minute):
        raise _Answer("invalid", f"没有“{found.group(0)}”这个时间，请再确认一下。")
    return hour, minute, found.group(0), bool(name != "clock" and found["ampm"])


def _apply_daypart(hour: int, word: str | None) -> tuple[int, int]:
    """Hour on the 24-hour clock and days to add, for a clock said with a part of day."""
    key = _DAYPART_KEY.get(word or "", "")
    if hour in (0, 24):
        return 0, 1
    if key == "凌晨":
        return (0, 1) if hour == 12 else (hour, 0)
    if key in ("早上", "上午") or hour >= 13:
        return hour, 0
    if key == "中午":
        return (hour + 12, 0) if hour <= 5 else (hour, 0)
    if key in ("下午", "傍晚"):
        return (hour + 12, 0) if hour < 12 else (hour, 0)
    if key == "晚上":
        if hour == 12 or hour <= 4:
            return (0 if hour == 12 else hour), 1
        return hour + 12, 0
    if key == "半夜":
        if hour == 12 or hour <= 5:
            return (0 if hour == 12 else hour), 1
        return hour + 12, 0
    raise AssertionError(word)


def _daypart_time(word: str, dayparts: dict[str, time]) -> tuple[time, int]:
    if word in dayparts:
        return dayparts[word], 0
    key = _DAYPART_KEY[word]
    if key == "半夜":
        return time(0, 0), 1
    return dayparts.get(key, DEFAULT_DAYPARTS[key]), 0


def _bare_hours(hour: int) -> tuple[int, ...]:
    """24-hour readings of a clock said without a part of day (12 is asked about)."""
    if hour == 12:
        return ()
    if 1 <= hour <= 6:
        return (hour + 12,)
    if 7 <= hour <= 11:
        return (hour, hour + 12)
    return (hour,)


def _ask_noon_or_midnight(words: str) -> _Answer:
    return _Answer(
        "ambiguous",
        f"您说的{words}是中午还是半夜？请说“中午{words}”或“晚上{words}”。",
    )


def _resolve_recurrence(
    parts: dict[str, tuple[str, re.Match[str]]],
    now: datetime,
    tz: ZoneInfo,
    dayparts: dict[str, time],
) -> tuple[Recurrence, datetime]:
    name, found = parts["rec"]
    word = _daypart_word(parts)
    clock = _clock(parts)
    if clock is not None:
        hour, minute, words, fixed = clock
        if fixed:
            hour %= 24
        elif word is None:
            readings = _bare_hours(hour)
            if not readings:
                raise _ask_noon_or_midnight(words)
            hour = readings[0] % 24
        else:
            hour, _ = _apply_daypart(hour, word)
    elif word is not None:
        at, _ = _daypart_time(word, dayparts)
        hour, minute = at.hour, at.minute
    else:
        at = dayparts.get(_DATE_ONLY_KEY, DEFAULT_DAYPARTS[_DATE_ONLY_KEY])
        hour, minute = at.hour, at.minute

    if name == "workdays":
        rec = Recurrence("workdays", hour, minute)
    elif name == "weekend":
        rec = Recurrence("weekly", hour, minute, ("sat", "sun"))
    elif name == "weekly":
        rec = Recurrence("weekly", hour, minute, _weekday_names(found["wds"]))
    elif name == "monthly":
        day = cn_number(found["d"])
        if not 1 <= day <= 31:
            raise _Answer("invalid", f"每月没有{day}号，请再确认一下日期。")
        rec = Recurrence("monthly", hour, minute, month_day=day)
    else:
        rec = Recurrence("daily", hour, minute)

    start = now
    if "day" in parts:
        first = _resolve_day(*parts["day"], now.astimezone(tz).date())
        start = max(
            now, datetime.combine(first.value, time(0), tz) - timedelta(seconds=1)
        )
    return rec, rec.next_after(start, tz)


def _weekday_names(chain: str) -> tuple[str, ...]:
    chain = re.sub(_WEEK, "", chain)
    indexes: set[int] = set()
    for ch in chain:
        if ch in _WD_VALUE:
            indexes.add(_WD_VALUE[ch])
    return tuple(WEEKDAY_NAMES[i] for i in sorted(indexes))


def _resolve_once(
    parts: dict[str, tuple[str, re.Match[str]]],
    now: datetime,
    tz: ZoneInfo,
    dayparts: dict[str, time],
) -> datetime:
    local_now = now.astimezone(tz)
    today = local_now.date()

    if "rel" in parts:
        found = parts["rel"][1]
        hours = (
            0.5 if found["h"] == "半" else cn_number(found["h"]) if found["h"] else 0
        )
        hours += 0.5 if found["hh"] else 0
        minutes = cn_number(found["m"]) if found["m"] else 0
        minutes += 15 * cn_number(found["qk"]) if found["qk"] else 0
        if "前" in (found["suf"] or ""):
            raise _Answer("past", "这个时间已经过去了，请说一个以后的时间。")
        return local_now.replace(microsecond=0) + timedelta(
            hours=hours, minutes=minutes
        )

    day = _resolve_day(*parts["day"], today) if "day" in parts else None
    word = _daypart_word(parts)
    clock = _clock(parts)

    if clock is not None:
        hour, minute, words, fixed = clock
        if fixed:
            candidates = [(hour % 24, hour // 24)]
        elif word is not None or hour in (0, 24):
            hour, extra = _apply_daypart(hour, word)
            candidates = [(hour, extra)]
        else:
            readings = _bare_hours(hour)
            if not readings:
                raise _ask_noon_or_midnight(words)
            candidates = [(h % 24, h // 24) for h in readings]
    elif word is not None:
        at, extra = _daypart_time(word, dayparts)
        hour, minute, candidates = at.hour, at.minute, [(at.hour, extra)]
    elif day is not None and day.explicit and day.value == today:
        raise _Answer("ambiguous", "今天几点提醒您？请说具体时间，比如“今天下午3点”。")
    elif "rel" not in parts and day is not None:
        at = dayparts.get(_DATE_ONLY_KEY, DEFAULT_DAYPARTS[_DATE_ONLY_KEY])
        minute, candidates = at.minute, [(at.hour, 0)]
    else:
        raise AssertionError(parts)

    base = day.value if day is not None else today
    options = sorted(
        datetime.combine(base + timedelta(days=extra), time(h, minute), tz)
        for h, extra in candidates
    )
    upcoming = [when for when in options if when > now]
    if upcoming and (day is None or len(options) > 1 or not day.explicit):
        return upcoming[0]
    if day is not None and day.explicit:
        if options[0] > now:
            return options[0]
        raise _Answer(
            "past",
            f"这个时间已经过去了（{describe_when(options[0], tz)}），"
            "请说一个以后的时间。",
        )
    # no day word, or a bare weekday / day of month: its next occurrence
    step = day.step if day is not None else "day"
    for n in range(1, 40):
        for when in options:
            moved = _step(when, step, n, tz)
            if moved is not None and moved > now:
                return moved
    raise AssertionError(parts)


def _step(when: datetime, step: str | None, n: int, tz: ZoneInfo) -> datetime | None:
    local = when.astimezone(tz)
    if step == "month_end":
        year, month = _month_add(local.year, local.month, n)
        last = date(year, month, calendar.monthrange(year, month)[1])
        return datetime.combine(last, local.time(), tz)
    if step == "month":
        year, month = _month_add(local.year, local.month, n)
        if local.day > calendar.monthrange(year, month)[1]:
            return None
        return datetime.combine(
            local.date().replace(year=year, month=month), local.time(), tz
        )
    days = 7 * n if step == "week" else n
    return datetime.combine(local.date() + timedelta(days=days), local.time(), tz)
