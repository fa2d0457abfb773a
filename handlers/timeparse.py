"""Chinese time expressions in reminders: one-off due times and recurrences.

A small grammar of our own reads the forms residents use for reminders (day words,
weekdays, dates, parts of the day, clock times, relative times, recurrences) and
applies the product's conventions (see docs/time-parsing.md). Text the grammar
finds nothing in goes to JioNLP (holidays, lunar dates and other rarer forms),
whose answer is put through the same conventions. Pure functions: no database and
no I/O besides loading JioNLP once.

This module is the public entry point; the work is split into time_types (public
types), time_grammar (vocabulary and scanning), time_resolve (dates, recurrences
and the product rules) and time_jionlp (the JioNLP fallback and its log filter).
"""

from __future__ import annotations

import contextlib
import io
from datetime import datetime, time
from zoneinfo import ZoneInfo

from handlers.time_grammar import _merge, _scan, _Text, cn_number
from handlers.time_jionlp import (
    _FALLBACK_WORDS,
    _fallback,
    _jionlp,
    _unresolved_holiday,
)
from handlers.time_resolve import _Answer, _resolve_once, _resolve_recurrence
from handlers.time_types import (
    DEFAULT_DAYPARTS,
    KINDS,
    SHANGHAI,
    WEEKDAY_CN,
    WEEKDAY_NAMES,
    Recurrence,
    TimeParse,
    describe_when,
)

__all__ = [
    "DEFAULT_DAYPARTS",
    "KINDS",
    "SHANGHAI",
    "WEEKDAY_CN",
    "WEEKDAY_NAMES",
    "Recurrence",
    "TimeParse",
    "cn_number",
    "describe_when",
    "parse_time",
    "warm_up",
]


def warm_up() -> None:
    """Load JioNLP and its dictionaries ahead of the first message."""
    jio = _jionlp()
    with contextlib.redirect_stdout(io.StringIO()):
        jio.ner.extract_time("明天下午3点", time_base=0)
    parse_time("明天下午3点", datetime(2025, 1, 1, tzinfo=SHANGHAI))


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
