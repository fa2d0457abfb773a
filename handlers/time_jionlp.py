"""The JioNLP fallback for holidays, lunar dates and rarer forms, and its log filter."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import threading
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from handlers.time_grammar import _Expr, _strip, _Text
from handlers.time_resolve import _DATE_ONLY_KEY
from handlers.time_types import TimeParse, describe_when

logger = logging.getLogger(__name__)

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
