"""How often parse_time agrees with three public Chinese time-expression test sets.

Run from the repository root:

    .venv/bin/python bench/time_agreement.py [--data ../shared/data] [--misses 20]

Each file has its own expected-value format and reference times; each row is put
in one scope bucket (points in time, relative times, recurrences, detection) or
marked out of scope with the reason. Agreement is counted per file and bucket.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time as time_module
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from handlers.timeparse import TimeParse, parse_time, warm_up  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")
DEFAULT_DATA = ROOT.parent / "shared" / "data"
FILES = (
    "time_expr_jionlp.tsv",
    "time_expr_duckling_zh.tsv",
    "time_expr_msrecognizers_zh.tsv",
)
VERDICTS = ("agree", "past_ok", "asked", "disagree")


@dataclass(frozen=True)
class Row:
    """One line of a data file."""

    id: str
    expression: str
    reference: str
    expected: str
    schema: str
    kind: str


@dataclass(frozen=True)
class Outcome:
    """A row's scope bucket and verdict, or the reason it is out of scope."""

    bucket: str
    verdict: str | None = None  # one of VERDICTS when in scope
    out_reason: str | None = None
    detail: str = ""


def out(reason: str) -> Outcome:
    return Outcome("", out_reason=reason)


def read_rows(path: Path) -> Iterator[Row]:
    """Rows of a TSV file (header first, split on tabs, no quoting)."""
    with path.open(encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        for line in handle:
            fields = dict(zip(header, line.rstrip("\n").split("\t"), strict=False))
            yield Row(
                fields["id"],
                fields["expression"],
                fields.get("reference_time", ""),
                fields.get("expected", ""),
                fields.get("expected_schema", ""),
                fields.get("kind", ""),
            )


def zone_for(moment: datetime) -> ZoneInfo:
    """A ZoneInfo with the reference time's UTC offset (Asia/Shanghai for +08:00)."""
    offset = moment.utcoffset()
    assert offset is not None
    hours = offset.total_seconds() / 3600
    if hours == 8:
        return SHANGHAI
    if hours == 0:
        return ZoneInfo("UTC")
    if hours != int(hours):
        raise ValueError(f"unsupported offset {offset}")
    return ZoneInfo(f"Etc/GMT{'-' if hours > 0 else '+'}{abs(int(hours))}")


def reference(raw: str) -> tuple[datetime, ZoneInfo] | None:
    """The reference instant of a row and the zone to read it in; None if vague."""
    if raw == "NOW":
        return datetime.now(SHANGHAI), SHANGHAI
    if "T" not in raw:
        return None  # '', a year, a month or a bare date: not an instant
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    tz = zone_for(moment)
    return moment.astimezone(tz), tz


def verdict(result: TimeParse, hit: bool, past_expected: bool) -> str:
    if result.status == "ok" and hit:
        return "agree"
    if result.status == "past" and past_expected:
        return "past_ok"
    if result.status == "ambiguous":
        return "asked"
    return "disagree"


def describe(result: TimeParse) -> str:
    if result.recurrence is not None:
        return f"{result.status} {result.recurrence.describe()}"
    when = result.when.strftime("%Y-%m-%d %H:%M") if result.when else "-"
    return f"{result.status} {when} [{result.matched}]"


# ---------------------------------------------------------------- JioNLP


def judge_jionlp(row: Row) -> Outcome:
    if row.kind == "todo":
        return out("no expected value (listed as unsolved upstream)")
    if row.kind == "time_delta":
        return out("durations (not a due time)")
    if row.kind == "time_span":
        return out("spans and ranges")
    expected = json.loads(row.expected)
    if row.kind == "extract":
        return judge_detection(row, [item["text"] for item in expected], expected)
    ref = reference(row.reference)
    if ref is None:
        return out("reference is not an instant (year/month/date only)")
    now, tz = ref
    result = parse_time(row.expression, now, tz=tz)
    naive_now = now.replace(tzinfo=None)

    if row.kind == "time_point":
        start, end = (datetime.fromisoformat(v) for v in expected["time"])
        if end - start > timedelta(days=1):
            return out("periods: week/month/year and longer")
        when = result.when.astimezone(tz).replace(tzinfo=None) if result.when else None
        hit = when is not None and start <= when <= end
        return Outcome(
            "point", verdict(result, hit, end < naive_now), detail=describe(result)
        )

    if row.kind == "time_period":
        return judge_jionlp_period(row, expected, result, tz)
    return out(f"kind {row.kind}")


def judge_jionlp_period(
    row: Row, expected: dict, result: TimeParse, tz: ZoneInfo
) -> Outcome:
    delta = expected["time"]["delta"]
    point = expected["time"]["point"]
    kinds = {
        json.dumps({"day": 1}): {"daily", "workdays"},
        json.dumps({"day": 7}): {"weekly"},
        json.dumps({"month": 1}): {"monthly"},
    }.get(json.dumps(delta))
    if kinds is None or point is None or isinstance(point["time"][0], list):
        return out("other repeats (every N days, yearly, holidays)")
    start, end = (datetime.fromisoformat(v) for v in point["time"])
    if end - start > timedelta(days=1):
        return out("other repeats (every N days, yearly, holidays)")
    rec = result.recurrence
    hit = rec is not None and rec.kind in kinds
    if hit and rec is not None and end - start < timedelta(hours=23):
        hit = (rec.hour, rec.minute) == (start.hour, start.minute)
    if hit and rec is not None and rec.kind == "weekly":
        hit = start.strftime("%a").lower() in rec.weekdays
    if hit and rec is not None and rec.kind == "monthly":
        hit = rec.month_day == start.day
    return Outcome("recurrence", verdict(result, hit, False), detail=describe(result))


def judge_detection(row: Row, texts: list[str], expected: list[dict]) -> Outcome:
    """Extraction rows: a negative must give 'none'; a point must match its words."""
    result = parse_time(row.expression, datetime.now(SHANGHAI))
    if not texts:
        found = result.status != "none"
        return Outcome(
            "detection (negatives)",
            "disagree" if found else "agree",
            detail=describe(result),
        )
    types = {str(item.get("type", "")) for item in expected[:1]}
    if not types & {"time_point", "date", "time", "datetime", "set"}:
        return out("extraction of spans, periods, durations, holidays")
    hit = result.matched.replace(" ", "") in {t.replace(" ", "") for t in texts}
    return Outcome(
        "detection (words)", "agree" if hit else "disagree", detail=describe(result)
    )


# ---------------------------------------------------------------- Duckling

GRAINS = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}


def judge_duckling(row: Row) -> Outcome:
    if row.kind == "interval":
        return out("intervals and ranges")
    expected = json.loads(row.expected)
    if "holiday" in expected:
        return out("holidays (named days; only via the JioNLP fallback)")
    grain = expected.get("grain")
    if grain not in GRAINS:
        return out("periods: week/month/quarter/year")
    relative = re.search(r"[后後]", row.expression) is not None
    if grain == "second" and not relative:
        return out("'now' words (现在, 此刻)")
    ref = reference(row.reference)
    assert ref is not None
    now, tz = ref
    result = parse_time(row.expression, now, tz=tz)

    start = datetime.fromisoformat(expected["value"])
    end = start + GRAINS[grain]
    if grain == "second":
        end = start + timedelta(minutes=1)
    when = result.when.astimezone(tz).replace(tzinfo=None) if result.when else None
    hit = when is not None and start <= when < end
    bucket = "relative" if relative else "point"
    past = end <= now.replace(tzinfo=None)
    return Outcome(bucket, verdict(result, hit, past), detail=describe(result))


# ---------------------------------------------------------------- Recognizers-Text

PARSERS = {"DateParser", "DateTimeParser", "TimeParser", "SetParser"}
EXTRACTORS = {"DateExtractor", "TimeExtractor", "DateTimeExtractor", "SetExtractor"}
MODEL_TYPES = {"date", "datetime", "time", "set"}


def judge_msrt(row: Row) -> Outcome:
    expected = json.loads(row.expected)
    if row.kind in EXTRACTORS or row.kind == "MergedExtractor":
        return judge_detection(row, [e["text"] for e in expected], expected)
    if row.kind.startswith("DateTimeModel"):
        return judge_msrt_model(row, expected)
    if row.kind in PARSERS:
        return judge_msrt_parser(row, expected)
    return out(f"{row.kind}: periods, durations, holidays")


def msrt_now(row: Row) -> tuple[datetime, ZoneInfo]:
    ref = reference(row.reference)
    assert ref is not None
    return ref


def match_value(kind: str, value: str, when: datetime | None) -> bool:
    if when is None or value in ("", "not resolved"):
        return False
    if kind == "date":
        return when.date() == date.fromisoformat(value[:10])
    if kind == "time":
        return when.time().replace(second=0) == clock.fromisoformat(value)
    return when.replace(tzinfo=None) == datetime.fromisoformat(value)


def match_set(timex: str, result: TimeParse) -> bool | None:
    """None when the set is one we do not model (every week, every year...)."""
    rec = result.recurrence
    if timex == "P1D":
        return rec is not None and rec.kind == "daily"
    weekly = re.fullmatch(r"XXXX-WXX-(\d)(?:T(\d{2}))?", timex)
    if weekly:
        names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        hit = rec is not None and rec.kind == "weekly"
        hit = hit and rec is not None and names[int(weekly[1]) - 1] in rec.weekdays
        if weekly[2] is not None:
            hit = hit and rec is not None and rec.hour == int(weekly[2])
        return hit
    return None


def judge_msrt_model(row: Row, expected: list[dict]) -> Outcome:
    now, tz = msrt_now(row)
    result = parse_time(row.expression, now, tz=tz)
    if not expected:
        found = result.status != "none"
        return Outcome(
            "detection (negatives)",
            "disagree" if found else "agree",
            detail=describe(result),
        )
    entity = expected[0]
    kind = entity["type"].removeprefix("datetimeV2.")
    values = entity.get("values", [])
    if kind not in MODEL_TYPES or any("Mod" in v for v in values):
        return out("ranges, durations, before/after modifiers")
    if kind == "set":
        hit = match_set(values[0]["timex"], result)
        if hit is None:
            return out("repeats without a day or time (每周, 每年)")
        return Outcome(
            "recurrence", verdict(result, hit, False), detail=describe(result)
        )
    when = result.when.astimezone(tz) if result.when else None
    hit = any(match_value(kind, v.get("value", ""), when) for v in values)
    past = kind != "time" and all(is_before(v.get("value", ""), now) for v in values)
    return Outcome("point", verdict(result, hit, past), detail=describe(result))


def is_before(value: str, now: datetime) -> bool:
    """Whether a Recognizers date or datetime value lies wholly before ``now``."""
    if value in ("", "not resolved"):
        return False
    if len(value) == 10:
        return date.fromisoformat(value) < now.date()
    return datetime.fromisoformat(value) < now.replace(tzinfo=None)


def judge_msrt_parser(row: Row, expected: list[dict]) -> Outcome:
    now, tz = msrt_now(row)
    result = parse_time(row.expression, now, tz=tz)
    entity = expected[0]
    kind = entity["type"]
    if kind == "set":
        hit = match_set(entity["timex"], result)
        if hit is None:
            return out("repeats without a day or time (每周, 每年)")
        return Outcome(
            "recurrence", verdict(result, hit, False), detail=describe(result)
        )
    key = {"date": "date", "datetime": "dateTime", "time": "time"}.get(kind)
    if key is None:
        return out(f"{kind}")
    future = entity["future"][key]
    past = entity["past"][key]
    when = result.when.astimezone(tz) if result.when else None
    hit = match_value(kind, future, when) or match_value(kind, past, when)
    past_expected = kind != "time" and is_before(future, now)
    return Outcome(
        "point", verdict(result, hit, past_expected), detail=describe(result)
    )


JUDGES: dict[str, Callable[[Row], Outcome]] = {
    "time_expr_jionlp.tsv": judge_jionlp,
    "time_expr_duckling_zh.tsv": judge_duckling,
    "time_expr_msrecognizers_zh.tsv": judge_msrt,
}


# ---------------------------------------------------------------- report


def main(argv: list[str] | None = None) -> int:
    """Print agreement per file and scope bucket, and what is out of scope."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--misses", type=int, default=0, help="list N misses per file")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data folder not found: {args.data} (pass --data)", file=sys.stderr)
        return 2

    started = time_module.perf_counter()
    warm_up()
    print(f"warm-up {time_module.perf_counter() - started:.2f}s")
    header = f"{'file':<32}{'bucket':<24}{'rows':>5}{'agree':>7}{'past✓':>7}"
    header += f"{'asked':>7}{'miss':>6}{'agree%':>8}{'ok%':>7}"
    totals: Counter[str] = Counter()
    timings: list[float] = []
    misses: dict[str, list[str]] = defaultdict(list)
    out_of_scope: dict[str, Counter[str]] = defaultdict(Counter)
    lines = [header, "-" * len(header)]

    for name in FILES:
        path = args.data / name
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            continue
        buckets: dict[str, Counter[str]] = defaultdict(Counter)
        for row in read_rows(path):
            t0 = time_module.perf_counter()
            outcome = JUDGES[name](row)
            timings.append(time_module.perf_counter() - t0)
            if outcome.out_reason is not None:
                out_of_scope[name][outcome.out_reason] += 1
                continue
            assert outcome.verdict is not None
            buckets[outcome.bucket][outcome.verdict] += 1
            if outcome.verdict == "disagree":
                misses[name].append(
                    f"  {row.id} {row.expression} | ref {row.reference} | got "
                    f"{outcome.detail} | expected {row.expected[:120]}"
                )
        file_total: Counter[str] = Counter()
        for bucket, counts in sorted(buckets.items()):
            lines.append(format_line(name, bucket, counts))
            file_total.update(counts)
        lines.append(format_line(name, "all in scope", file_total))
        totals.update(file_total)
    lines.append(format_line("all files", "all in scope", totals))
    print("\n".join(lines))

    print("\nout of scope (rows):")
    for name, reasons in out_of_scope.items():
        for reason, count in reasons.most_common():
            print(f"  {name:<32}{count:>5}  {reason}")
    timings.sort()
    if timings:
        mid = timings[len(timings) // 2] * 1000
        p95 = timings[int(len(timings) * 0.95)] * 1000
        print(f"\nper row: median {mid:.2f} ms, p95 {p95:.2f} ms ({len(timings)} rows)")
    for name, rows in misses.items():
        if args.misses:
            print(f"\nmisses in {name} (first {args.misses} of {len(rows)}):")
            print("\n".join(rows[: args.misses]))
    return 0


def format_line(name: str, bucket: str, counts: Counter[str]) -> str:
    rows = sum(counts[v] for v in VERDICTS)
    agree = counts["agree"]
    ok = agree + counts["past_ok"]
    pct = f"{100 * agree / rows:.1f}" if rows else "-"
    ok_pct = f"{100 * ok / rows:.1f}" if rows else "-"
    return (
        f"{name:<32}{bucket:<24}{rows:>5}{agree:>7}{counts['past_ok']:>7}"
        f"{counts['asked']:>7}{counts['disagree']:>6}{pct:>8}{ok_pct:>7}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
