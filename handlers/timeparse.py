"""Chinese time expressions in reminders: one-off due times and recurrences.

A small grammar of our own reads the forms residents use for reminders (day words,
weekdays, dates, parts of the day, clock times, relative times, recurrences) and
applies the product's conventions (see docs/time-parsing.md). Text the grammar
finds nothing in goes to JioNLP (holidays, lunar dates and other rarer forms),
whose answer is put through the same conventions. Pure functions: no database and
no I/O besides loading JioNLP once.
"""

from __future__ import annotations

import calendar
import contextlib
import io
import logging
import os
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

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
# every part-of-day word → the key whose default time it takes
_DAYPART_KEY: dict[str, str] = {
    "早上": "早上", "早晨": "早上", "清晨": "早上", "早": "早上", "明早": "早上",
    "今早": "早上", "明晨": "早上", "今晨": "早上",
    "上午": "上午",
    "中午": "中午", "正午": "中午",
    "下午": "下午", "午后": "下午",
    "傍晚": "傍晚",
    "晚上": "晚上", "晚间": "晚上", "晚": "晚上", "夜里": "晚上", "夜间": "晚上",
    "夜": "晚上", "今晚": "晚上", "明晚": "晚上", "昨晚": "晚上", "今夜": "晚上", "明夜": "晚上",
    "深夜": "半夜", "半夜": "半夜", "午夜": "半夜",
    "凌晨": "凌晨",
}  # fmt: skip
# the time a recurrence or a date without any time of day gets
_DATE_ONLY_KEY = "上午"

_TRADITIONAL = str.maketrans(
    "點週禮號鐘時後個兩這裡從淩晝臘於節慶",
    "点周礼号钟时后个两这里从凌昼腊于节庆",
)
_EDGE_PUNCT = " \t\r\n，。！？、,.!?;；:：~～…—-「」“”\"'（）()【】[]"

# ---------------------------------------------------------------- public types


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


# ---------------------------------------------------------------- JioNLP loader

_jio: Any = None
_jio_lock = threading.Lock()


class _JioNLPNoise(logging.Filter):
    """Drop the tracebacks JioNLP logs on the root logger for strings it cannot parse."""

    def filter(self, record: logging.LogRecord) -> bool:
        return f"{_SEP}jionlp{_SEP}" not in record.pathname


_SEP = os.sep


def _jionlp() -> Any:
    """Import JioNLP once, with its start-up banner kept off stdout."""
    global _jio
    if _jio is None:
        with _jio_lock:
            if _jio is None:
                with contextlib.redirect_stdout(io.StringIO()):
                    import jionlp

                logging.getLogger().addFilter(_JioNLPNoise())
                _jio = jionlp
    return _jio


def warm_up() -> None:
    """Load JioNLP and its dictionaries ahead of the first message."""
    jio = _jionlp()
    with contextlib.redirect_stdout(io.StringIO()):
        jio.ner.extract_time("明天下午3点", time_base=0)
    parse_time("明天下午3点", datetime(2025, 1, 1, tzinfo=SHANGHAI))


# ---------------------------------------------------------------- numbers

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_N = r"(?:\d{1,4}|[零〇一二两三四五六七八九十廿卅]{1,4})"
_N2 = r"(?:\d{1,2}|[零〇一二两三四五六七八九十廿卅]{1,3})"


_CN_NUMBER = re.compile(
    r"[一二两三四五六七八九]?十[一二三四五六七八九]?|[零〇一二两三四五六七八九]+"
    r"|廿[一二三四五六七八九]?|卅一?"
)


def cn_number(text: str) -> int:
    """Arabic or Chinese numeral (up to 9999) → int; raises ValueError."""
    if text.isdigit():
        return int(text)
    if not _CN_NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    if text[0] in "廿卅":
        units = _CN_DIGITS[text[1]] if text[1:] else 0
        return (20 if text[0] == "廿" else 30) + units
    if "十" in text:
        tens, _, units = text.partition("十")
        value = (_CN_DIGITS[tens] if tens else 1) * 10
        return value + (_CN_DIGITS[units] if units else 0)
    value = 0
    for ch in text:
        value = value * 10 + _CN_DIGITS[ch]
    return value


# ---------------------------------------------------------------- grammar

_WEEK = r"(?:周|星期|礼拜)"
_WD = r"[一二三四五六七日天1-7]"
_WD_VALUE = {**{c: i for i, c in enumerate("一二三四五六")}, "七": 6, "日": 6, "天": 6,
             **{str(i + 1): i for i in range(7)}}  # fmt: skip
_DAYPART_RE = (
    r"早上|早晨|清晨|上午|中午|正午|午后|下午|傍晚|晚上|晚间|夜里|夜间|深夜|半夜|午夜|凌晨"
    r"|[早晚夜](?=\d|[二两三四五六七八九十]+[点时])"
)
_REL_DAY = {
    "大大后天": 4, "大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明儿": 1,
    "今天": 0, "今日": 0, "今儿": 0, "昨天": -1, "前天": -2, "大前天": -3,
    "明早": 1, "明晨": 1, "明晚": 1, "明夜": 1, "今早": 0, "今晨": 0, "今晚": 0,
    "今夜": 0, "昨晚": -1, "昨日": -1, "前日": -2, "后日": 2, "大后日": 3, "本日": 0,
}  # fmt: skip
_YEAR_WORD = {"前年": -2, "去年": -1, "今年": 0, "明年": 1, "后年": 2}
_NOT_DAY_OF_MONTH = "楼门线院房室单元床窗口车位机桥栋层排座期届次份路号文人件"


def _alt(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def _rx(pattern: str) -> re.Pattern[str]:
    """Compile a rule, expanding «WEEK», «WD», «N» and «N2»."""
    macros = {"WEEK": _WEEK, "WD": _WD, "N": _N, "N2": _N2}
    return re.compile(re.sub(r"«(\w+)»", lambda m: macros[m[1]], pattern))


_MONTH_REL = r"(?P<rel>下下个?月|下个?月|上上个?月|上个?月|本月|这个?月|今个月)"
# tried in this order at each position; the first that matches wins
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("workdays", _rx(
        r"(?:每个?|所有)?工作日(?:每天)?|每个?«WEEK»一(?:到|至|-|~)«WEEK»?五"
        r"|«WEEK»一(?:到|至)«WEEK»?五每天"
    )),
    ("weekend", _rx(r"每个?(?:周末|«WEEK»六[和、]?«WEEK»?[日天])")),
    ("weekly", _rx(r"每个?«WEEK»(?P<wds>«WD»(?:(?:[、,，/和及与跟]|以及)?«WEEK»?«WD»)*)")),
    ("monthly", _rx(r"每个?月的?(?P<d>«N2»)[号日]")),
    ("daily_part", _rx(r"每个?(?P<dp>晚上?|早上?|早晨|夜里)")),
    ("daily", _rx(r"每一?[天日]的?|天天|日日")),
    ("rel_hm", _rx(
        r"(?P<pre>再?过)?(?:(?P<h>«N»|半)个?(?P<hh>半)?(?:小时|钟头))?"
        r"(?:(?P<m>«N»)分钟?|(?P<qk>[一两三])刻钟)?(?P<suf>以后|之后|过后|后|以前|之前|前)?"
    )),
    ("rel_days", _rx(
        r"(?P<pre>再?过)?(?P<n>«N»)(?P<unit>天|日|个?星期|个?礼拜|周|个月)"
        r"(?P<suf>以后|之后|过后|后|以前|之前|前)?"
    )),
    ("abs_date", _rx(
        r"(?:(?P<y>\d{4}|\d{2}|[零〇一二三四五六七八九]{4}|[零〇一二三四五六七八九]{2})年"
        r"|(?P<yw>前年|去年|今年|明年|后年))?(?P<m>«N2»)月份?(?P<d>«N2»)"
        r"(?:[号日]|(?![点时:：分个天年月周\d零〇一二两三四五六七八九十]))"
    )),
    ("num_date", _rx(r"(?P<y>\d{4})(?P<sep>[-/. ])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\d:])[日号]?")),
    ("md_slash", _rx(r"(?<![\d/])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])[日号]?")),
    ("month_end", _rx(_MONTH_REL + r"?(?P<mon>«N2»)?月?的?(?:月底|(?<=月)底)")),
    ("month_dom", _rx(_MONTH_REL + r"的?(?P<d>«N2»)[号日]")),
    ("rel_day", _rx(_alt(_REL_DAY))),
    ("weekday", _rx(
        r"(?P<pre>下下个?|下一?个?|这一?个?|本|今个|上上个?|上一?个?)?«WEEK»(?:的?«WEEK»)?"
        r"(?P<wd>«WD»|末)"
    )),
    ("dom", _rx(r"(?:(?P<d>«N2»)号|(?P<dd>\d{1,2})日)(?![" + _NOT_DAY_OF_MONTH + r"])")),
    ("daypart", _rx(_DAYPART_RE)),
    ("hhmm", _rx(
        r"(?P<h>\d{1,2})[:：](?P<m>\d{2})(?:[:：]\d{2})?(?!\d)"
        r"(?:\s?(?P<ampm>[aApP])\.?[mM]\.?)?"
    )),
    ("ampm", _rx(r"(?P<h>\d{1,2})\s?(?P<ampm>[aApP])\.?[mM]\b\.?")),
    ("clock", _rx(
        r"(?P<h>«N2»)(?P<unit>点钟?|时)"
        r"(?:(?P<half>半)|(?P<q>[一三13])刻"
        r"|(?P<m>«N2»)(?:分钟?|(?![个天号日月年周岁人次点小]))|整)?"
    )),
]  # fmt: skip
# which slot each rule fills; two matches filling one slot never merge
_SLOT = {
    "workdays": "rec", "weekend": "rec", "weekly": "rec", "monthly": "rec",
    "daily_part": "rec", "daily": "rec", "rel_hm": "rel", "rel_days": "day",
    "abs_date": "day", "num_date": "day", "md_slash": "day", "month_end": "day", "month_dom": "day",
    "rel_day": "day", "weekday": "day", "dom": "day", "daypart": "part",
    "hhmm": "clock", "ampm": "clock", "clock": "clock",
}  # fmt: skip
_JOINER = re.compile(r"[\s的]*")
_CLOCK_BLOCKERS = "这那有几第快慢早晚多少好大小高低差些一"
_ONE_OCLOCK_AFTER = "午上晨夜天日号凌 "


@dataclass
class _Expr:
    """The slots filled by one run of adjacent time words."""

    start: int
    end: int
    parts: dict[str, tuple[str, re.Match[str]]] = field(default_factory=dict)


def _match_at(text: str, pos: int) -> tuple[str, re.Match[str]] | None:
    for name, pattern in _RULES:
        found = pattern.match(text, pos)
        if found is None or found.end() == pos:
            continue
        if name == "rel_hm" and not _valid_rel_hm(found):
            continue
        if name == "rel_days" and not (found["pre"] or found["suf"]):
            continue
        if name == "clock" and not _plausible_clock(text, found):
            continue
        if not _numbers_ok(found):
            continue
        return name, found
    return None


def _numbers_ok(found: re.Match[str]) -> bool:
    for group in ("h", "m", "d", "dd", "n", "y"):
        if group in found.re.groupindex and found[group] and found[group] != "半":
            try:
                cn_number(found[group])
            except ValueError:
                return False
    return True


def _valid_rel_hm(found: re.Match[str]) -> bool:
    return bool(
        (found["h"] or found["m"] or found["qk"]) and (found["pre"] or found["suf"])
    )


def _plausible_clock(text: str, found: re.Match[str]) -> bool:
    """Reject decimals (八点八, 24点5度) and 'a little' (快一点, 一点都不, 这两点)."""
    minute = found["m"]
    if minute and len(minute) == 1 and not text.startswith("分", found.end()):
        return False  # a one-digit minute without 分 reads as a decimal
    if found["h"] not in ("一", "两", "二") or found["half"] or found["q"] or minute:
        return True
    before = text[found.start() - 1] if found.start() > 0 else ""
    after = text[found.end() : found.end() + 1]
    if (before and before in _CLOCK_BLOCKERS) or (after and after in "点儿都也"):
        return False
    if found["h"] == "一" and found["unit"] == "点" and before:
        # 一点 mostly means 'a little': a time only after a day or part of day
        return before in _ONE_OCLOCK_AFTER
    return True


def _scan(text: str) -> list[_Expr]:
    """Find runs of time words; each run fills each slot at most once."""
    exprs: list[_Expr] = []
    pos = 0
    while pos < len(text):
        hit = _match_at(text, pos)
        if hit is None:
            pos += 1
            continue
        expr = _Expr(start=pos, end=pos)
        while hit is not None:
            name, found = hit
            slot = _SLOT[name]
            if slot in expr.parts:
                break
            expr.parts[slot] = (name, found)
            expr.end = found.end()
            gap = _JOINER.match(text, expr.end)
            hit = _match_at(text, gap.end() if gap else expr.end)
        exprs.append(expr)
        pos = expr.end
    return exprs


def _merge(exprs: list[_Expr]) -> list[_Expr]:
    """Join the first run with later ones that add new slots (明天提醒我下午3点…)."""
    if not exprs:
        return []
    taken = [exprs[0]]
    slots = dict(exprs[0].parts)
    for expr in exprs[1:]:
        if any(slot in slots for slot in expr.parts):
            break
        if "rel" in slots or "rel" in expr.parts:
            break
        slots.update(expr.parts)
        taken.append(expr)
    merged = _Expr(start=taken[0].start, end=taken[-1].end, parts=slots)
    return [merged, *taken]


# ---------------------------------------------------------------- resolution


class _Answer(Exception):
    """Raised inside resolution to return a non-ok status with a reply."""

    def __init__(self, status: str, question: str) -> None:
        super().__init__(status)
        self.status = status
        self.question = question


@dataclass(frozen=True)
class _Text:
    """A message as written and as scanned (NFKC, a few traditional characters)."""

    original: str
    prepared: str
    offsets: tuple[int, ...]  # original index of each prepared character, and the end

    @classmethod
    def of(cls, original: str) -> _Text:
        pieces: list[str] = []
        offsets: list[int] = []
        for index, ch in enumerate(original):
            folded = unicodedata.normalize("NFKC", ch).translate(_TRADITIONAL)
            pieces.append(folded)
            offsets.extend([index] * len(folded))
        offsets.append(len(original))
        return cls(original, "".join(pieces), tuple(offsets))

    def words(self, spans: list[tuple[int, int]]) -> str:
        """The original characters of the given prepared spans, joined."""
        return "".join(
            self.original[self.offsets[a] : self.offsets[b]] for a, b in spans
        )

    def rest(self, spans: list[tuple[int, int]]) -> str:
        """The original text without the given prepared spans, ends stripped."""
        pieces: list[str] = []
        pos = 0
        for start, end in sorted(spans):
            pieces.append(self.original[pos : self.offsets[start]])
            pos = self.offsets[end]
        pieces.append(self.original[pos:])
        return _strip(re.sub(r"\s{2,}", " ", "".join(pieces)))


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


def _strip(text: str) -> str:
    return text.strip(_EDGE_PUNCT)


def parse_time(
    text: str,
    now: datetime,
    *,
    tz: ZoneInfo = SHANGHAI,
    dayparts: dict[str, time] | None = None,
) -> TimeParse:
    """Find and resolve the time words of one message (see docs/time-parsing.md)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    message = _Text.of(text)
    parts_by_word = {**DEFAULT_DAYPARTS, **(dayparts or {})}

    holiday = _FALLBACK_WORDS.search(message.prepared)
    if holiday:  # holidays and lunar dates: JioNLP first
        answer = _fallback(message, now, tz, parts_by_word)
        if answer.status != "none":
            return answer
    found = _merge(_scan(message.prepared))
    if holiday and _unresolved_holiday(holiday, found):
        span = [(holiday.start(), holiday.end())]
        question = (
            f"我没能算出“{message.words(span)}”是哪一天，"
            "请告诉我具体日期，比如“2月16日晚上6点半”。"
        )
        return TimeParse("ambiguous", None, None, question, "", message.rest([]))
    if not found:
        return _fallback(message, now, tz, parts_by_word)

    merged, pieces = found[0], found[1:]
    spans = [(p.start, p.end) for p in pieces]
    matched, rest = message.words(spans), message.rest(spans)
    try:
        if "rec" in merged.parts:
            rec, when = _resolve_recurrence(merged.parts, now, tz, parts_by_word)
            return TimeParse("ok", when, rec, None, matched, rest)
        when = _resolve_once(merged.parts, now, tz, parts_by_word)
    except _Answer as answer:
        return TimeParse(answer.status, None, None, answer.question, matched, rest)
    return TimeParse("ok", when, None, None, matched, rest)


# ---------------------------------------------------------------- JioNLP fallback


def _fallback(
    message: _Text, now: datetime, tz: ZoneInfo, dayparts: dict[str, time]
) -> TimeParse:
    """Ask JioNLP about holidays and lunar dates; keep day-sized points."""
    text = message.prepared
    none = TimeParse("none", None, None, None, "", _strip(message.original))
    if not text.strip():
        return none
    local_now = now.astimezone(tz)
    point = _jionlp_point(text, local_now)
    if point is None:
        return none

    start, end, words, offset = point
    if not _FALLBACK_WORDS.search(words):
        return none
    if end <= local_now and "年" not in words:
        # a holiday or lunar date without a year: JioNLP gives this year's
        later = _jionlp_point(text, _add_year(local_now))
        if later is not None and later[1] > local_now:
            start, end = later[0], later[1]
    if start.time() == time(0) and end - start >= timedelta(hours=23):
        start = datetime.combine(start.date(), dayparts[_DATE_ONLY_KEY], tz)

    matched, rest = message.words([offset]), message.rest([offset])
    if start > now:
        return TimeParse("ok", start, None, None, matched, rest)
    if end > now:  # 现在, 今天…: not a due time
        return none
    question = f"这个时间已经过去了（{describe_when(start, tz)}），请说一个以后的时间。"
    return TimeParse("past", None, None, question, matched, rest)


_FALLBACK_WORDS = re.compile(
    r"节|国庆|除夕|元旦|春节|清明|端午|中秋|重阳|元宵|七夕|冬至|夏至|立春|立秋|农历|阴历"
    r"|正月|腊月|大年|初[一二三四五六七八九十]|第[一二三四五1-5]个|节气|大寒|小寒"
)


def _unresolved_holiday(holiday: re.Match[str], found: list[_Expr]) -> bool:
    """A holiday word JioNLP could not place, said right before our time words."""
    if not found:
        return holiday.group(0) != "节"
    first = found[1]
    if holiday.group(0) == "节":  # 节目, 节约…: only 某某节 glued to the time words
        return first.start == holiday.end()
    return holiday.end() <= first.start <= holiday.end() + 1


def _add_year(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _jionlp_point(
    text: str, local_now: datetime
) -> tuple[datetime, datetime, str, tuple[int, int]] | None:
    """JioNLP's first time point of at most a day, as aware start and end."""
    tz = local_now.tzinfo
    base = {
        "year": local_now.year, "month": local_now.month, "day": local_now.day,
        "hour": local_now.hour, "minute": local_now.minute, "second": local_now.second,
    }  # fmt: skip
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            results = _jionlp().ner.extract_time(text, time_base=base)
    except Exception:  # JioNLP raises bare errors on odd input: treat as nothing
        logger.debug("jionlp failed on text=%r", text, exc_info=True)
        return None

    for item in results:
        detail = item.get("detail") or {}
        if item.get("type") != "time_point" or detail.get("type") != "time_point":
            continue
        try:
            start = datetime.fromisoformat(detail["time"][0]).replace(tzinfo=tz)
            end = datetime.fromisoformat(detail["time"][1]).replace(tzinfo=tz)
        except (TypeError, ValueError, IndexError):
            continue
        if end - start > timedelta(days=1):
            continue
        offset = item.get("offset") or [0, 0]
        return start, end, str(item["text"]), (int(offset[0]), int(offset[1]))
    return None
