"""Chinese time expressions: field reports B10, B11, B19, B20 and the product rules."""

from __future__ import annotations

import json
import time as time_module
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from handlers.timeparse import (
    Recurrence,
    TimeParse,
    describe_when,
    parse_time,
    warm_up,
)

SH = ZoneInfo("Asia/Shanghai")
SUN_EVENING = datetime(2025, 6, 8, 20, 30, tzinfo=SH)  # Sunday
SUN_AFTERNOON = datetime(2025, 6, 8, 16, 0, tzinfo=SH)
WED_NOON = datetime(2025, 6, 4, 12, 0, tzinfo=SH)
FRIDAY = datetime(2025, 6, 6, 10, 0, tzinfo=SH)
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def ok(text: str, now: datetime = SUN_EVENING, **kwargs: object) -> TimeParse:
    result = parse_time(text, now, **kwargs)  # type: ignore[arg-type]
    assert result.status == "ok", (text, result)
    assert result.when is not None
    assert result.when.tzinfo is not None
    return result


# ---------------------------------------------------------------- B10 weekday names


def test_b10_weekly_monday_honor_roll() -> None:
    result = ok("每周一早上9点发荣誉榜", WED_NOON)
    assert result.recurrence == Recurrence("weekly", 9, 0, ("mon",))
    assert result.when == at(2025, 6, 9, 9, 0)
    assert result.rest == "发荣誉榜"


def test_b10_weekly_sunday_evening() -> None:
    result = ok("每周日晚上8点", WED_NOON)
    assert result.recurrence == Recurrence("weekly", 20, 0, ("sun",))
    assert result.when == at(2025, 6, 8, 20, 0)


def test_b10_two_weekdays_map_to_names_and_run_in_order() -> None:
    result = ok("每周二周四上午九点提醒我去食堂帮忙", WED_NOON)
    rec = result.recurrence
    assert rec is not None and rec.weekdays == ("tue", "thu")
    assert rec.cron_fields()["day_of_week"] == "tue,thu"
    assert result.when == at(2025, 6, 5, 9, 0)
    assert rec.next_after(result.when, SH) == at(2025, 6, 10, 9, 0)
    assert result.rest == "提醒我去食堂帮忙"


def test_b10_cron_fields_never_use_weekday_numbers() -> None:
    for text in (
        "每周一早上9点",
        "每周日晚上8点",
        "工作日早上8点",
        "每周二、四上午9点",
    ):
        fields = ok(text, WED_NOON).recurrence.cron_fields()  # type: ignore[union-attr]
        assert not any(ch.isdigit() for ch in fields["day_of_week"]), text


@pytest.mark.parametrize(
    "text",
    [
        "每周一早上9点",
        "每周日晚上8点",
        "每周二周四上午九点",
        "工作日早上8点",
        "每月5号上午9点",
    ],
)
def test_b10_apscheduler_agrees_with_next_after(text: str) -> None:
    rec = ok(text, WED_NOON).recurrence
    assert rec is not None
    trigger = CronTrigger(timezone=SH, **rec.cron_fields())
    fire = trigger.get_next_fire_time(None, WED_NOON)
    assert fire == rec.next_after(WED_NOON, SH)


# ---------------------------------------------------------------- B11 time zone


def test_b11_machine_in_utc_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time_module.tzset()
    try:
        honor = ok("每周一早上9点", WED_NOON)
        assert honor.when == at(2025, 6, 9, 9, 0)
        assert honor.when.isoformat() == "2025-06-09T09:00:00+08:00"
        assert honor.when.astimezone(ZoneInfo("UTC")).hour == 1
        rec = honor.recurrence
        assert rec is not None
        trigger = CronTrigger(timezone=SH, **rec.cron_fields())
        assert trigger.get_next_fire_time(None, WED_NOON) == at(2025, 6, 9, 9, 0)

        reminder = ok("明天下午3点", WED_NOON)
        assert reminder.when == at(2025, 6, 5, 15, 0)
        # now given in another zone: still read in the community's zone
        utc_now = WED_NOON.astimezone(ZoneInfo("UTC"))
        assert ok("明天下午3点", utc_now).when == at(2025, 6, 5, 15, 0)
        # the JioNLP fallback is given wall-clock time, not the machine's zone
        assert ok("国庆节上午10点", WED_NOON).when == at(2025, 10, 1, 10, 0)
    finally:
        monkeypatch.undo()
        time_module.tzset()


# ---------------------------------------------------------------- B19 tonight / midnight


def test_b19_tonight_ten_is_today() -> None:
    result = ok("晚上10点提醒我收衣服", SUN_AFTERNOON)
    assert result.when == at(2025, 6, 8, 22, 0)
    assert result.rest == "提醒我收衣服"


@pytest.mark.parametrize("text", ["今晚12点提醒我关水闸", "半夜12点", "今晚十二点"])
def test_b19_tonight_twelve_is_next_midnight(text: str) -> None:
    result = ok(text, SUN_AFTERNOON)
    assert result.when == at(2025, 6, 9, 0, 0)
    assert "12" in result.matched or "十二" in result.matched


def test_b19_noon_already_past_means_tomorrow() -> None:
    assert ok("中午12点", SUN_AFTERNOON).when == at(2025, 6, 9, 12, 0)


def test_b19_bare_twelve_is_asked_about() -> None:
    result = parse_time("12点提醒我", SUN_AFTERNOON)
    assert result.status == "ambiguous"
    assert result.when is None and result.recurrence is None
    assert result.question is not None and "中午还是半夜" in result.question
    assert result.rest == "提醒我"


def test_b04_full_width_digits() -> None:
    assert ok("明天下午３点", SUN_EVENING).when == at(2025, 6, 9, 15, 0)


# ---------------------------------------------------------------- B20 weekday words


@pytest.mark.parametrize(
    "text", ["下周一早上8点", "下礼拜一早上8点", "下星期一早上8点"]
)
def test_b20_next_monday(text: str) -> None:
    assert ok(text).when == at(2025, 6, 9, 8, 0)


def test_b20_next_friday_half_past_eight() -> None:
    assert ok("下周五晚上八点半").when == at(2025, 6, 13, 20, 30)


@pytest.mark.parametrize(
    "text",
    ["周日下午3点", "星期天下午3点", "礼拜天下午3点", "星期日下午3点", "周天下午3点"],
)
def test_b20_all_sunday_spellings_are_next_sunday(text: str) -> None:
    assert ok(text).when == at(2025, 6, 15, 15, 0)


def test_b20_this_monday_said_on_friday_is_past() -> None:
    result = parse_time("本周一上午9点", FRIDAY)
    assert result.status == "past"
    assert result.when is None
    assert result.question is not None and "已经过去" in result.question


def test_b20_confirmation_echoes_the_date() -> None:
    when = ok("下周一早上8点").when
    assert when is not None
    assert describe_when(when, SH) == "6月9日（周一）08:00"


def test_b20_traditional_script_works() -> None:
    assert ok("下禮拜一早上8點").when == at(2025, 6, 9, 8, 0)


# ---------------------------------------------------------------- own cases: clock


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("三点一刻", at(2025, 6, 9, 15, 15)),
        ("八点三刻", at(2025, 6, 8, 20, 45)),
        ("两点半", at(2025, 6, 9, 14, 30)),
        ("明天上午十点二十分", at(2025, 6, 9, 10, 20)),
        ("明天 15:30", at(2025, 6, 9, 15, 30)),
        ("明天早上7点05", at(2025, 6, 9, 7, 5)),
        ("明天9点", at(2025, 6, 9, 9, 0)),
        ("明天3点", at(2025, 6, 9, 15, 0)),
        ("9点", at(2025, 6, 8, 21, 0)),
        ("下午5点", at(2025, 6, 9, 17, 0)),
        ("凌晨5点", at(2025, 6, 9, 5, 0)),
        ("零点", at(2025, 6, 9, 0, 0)),
        ("明天中午1点", at(2025, 6, 9, 13, 0)),
        ("明晚7点半", at(2025, 6, 9, 19, 30)),
        ("今晚11点", at(2025, 6, 8, 23, 0)),
        ("明天 8:00 pm", at(2025, 6, 9, 20, 0)),
    ],
)
def test_clock_times(text: str, expected: datetime) -> None:
    assert ok(text).when == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("明早", at(2025, 6, 9, 8, 0)),
        ("明天早上", at(2025, 6, 9, 8, 0)),
        ("明天上午", at(2025, 6, 9, 9, 0)),
        ("明天中午", at(2025, 6, 9, 12, 0)),
        ("明天下午", at(2025, 6, 9, 15, 0)),
        ("明天晚上", at(2025, 6, 9, 19, 0)),
        ("下午", at(2025, 6, 9, 15, 0)),  # today's 15:00 has passed
    ],
)
def test_part_of_day_alone_gets_its_default(text: str, expected: datetime) -> None:
    assert ok(text).when == expected


def test_dayparts_can_be_configured() -> None:
    result = ok("明天晚上提醒我", dayparts={"晚上": time(20, 30)})
    assert result.when == at(2025, 6, 9, 20, 30)


def test_past_time_of_day_without_day_word_is_next_occurrence() -> None:
    assert ok("早上8点").when == at(2025, 6, 9, 8, 0)
    assert ok("晚上8点").when == at(2025, 6, 9, 20, 0)  # 20:30 now: 20:00 passed


def test_today_with_past_time_is_refused() -> None:
    result = parse_time("今天早上8点", SUN_EVENING)
    assert result.status == "past"
    assert result.question is not None and "6月8日" in result.question


@pytest.mark.parametrize(
    "text",
    [
        "提醒我快一点",
        "早一点回家",
        "吃一点吧",
        "这两点意见",
        "体温三十七点五度",
        "年底",
    ],
)
def test_numbers_that_are_not_times(text: str) -> None:
    assert parse_time(text, SUN_EVENING).status == "none"


def test_one_oclock_after_a_day_word_is_a_time() -> None:
    assert ok("明天下午一点").when == at(2025, 6, 9, 13, 0)
    assert ok("凌晨一点").when == at(2025, 6, 9, 1, 0)


def test_bare_twelve_in_recurrence_is_asked_about() -> None:
    result = parse_time("每天12点提醒我吃药", SUN_EVENING)
    assert result.status == "ambiguous"
    assert result.recurrence is None


def test_impossible_clock_is_invalid() -> None:
    result = parse_time("明天25点", SUN_EVENING)
    assert result.status == "invalid"
    assert result.question is not None and "25点" in result.question


# ---------------------------------------------------------------- own cases: days


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("后天", at(2025, 6, 10, 9, 0)),
        ("大后天下午2点", at(2025, 6, 11, 14, 0)),
        ("6月10号", at(2025, 6, 10, 9, 0)),
        ("6月10日晚上7点", at(2025, 6, 10, 19, 0)),
        ("六月十二号上午十点", at(2025, 6, 12, 10, 0)),
        ("2025年7月1日", at(2025, 7, 1, 9, 0)),
        ("2025-07-01 14:00", at(2025, 7, 1, 14, 0)),
        ("1月5号", at(2026, 1, 5, 9, 0)),
        ("月底", at(2025, 6, 30, 9, 0)),
        ("下个月底下午3点", at(2025, 7, 31, 15, 0)),
        ("12月底", at(2025, 12, 31, 9, 0)),
        ("下个月3号下午两点", at(2025, 7, 3, 14, 0)),
        ("15号", at(2025, 6, 15, 9, 0)),
        ("5号", at(2025, 7, 5, 9, 0)),
        ("31号", at(2025, 7, 31, 9, 0)),
        ("下下周三", at(2025, 6, 18, 9, 0)),
        ("周三", at(2025, 6, 11, 9, 0)),
        ("周末", at(2025, 6, 14, 9, 0)),
        ("春节", at(2026, 2, 17, 9, 0)),
        ("国庆节上午10点", at(2025, 10, 1, 10, 0)),
    ],
)
def test_days(text: str, expected: datetime) -> None:
    assert ok(text).when == expected


def test_holiday_jionlp_cannot_place_is_asked_not_guessed() -> None:
    result = parse_time("除夕晚上6点半提醒我包饺子", SUN_AFTERNOON)
    assert result.status == "ambiguous"
    assert result.when is None
    assert result.question is not None and "除夕" in result.question


def test_holiday_like_characters_do_not_block_times() -> None:
    assert ok("节目明天下午3点开始").when == at(2025, 6, 9, 15, 0)
    assert ok("明天下午3点春节联欢").when == at(2025, 6, 9, 15, 0)


def test_bare_weekday_is_today_while_still_ahead() -> None:
    sunday_morning = at(2025, 6, 8, 9, 0)
    assert ok("周日下午3点", sunday_morning).when == at(2025, 6, 8, 15, 0)


def test_this_week_day_ahead_is_fine() -> None:
    assert ok("这周五下午3点", WED_NOON).when == at(2025, 6, 6, 15, 0)
    assert ok("本周六", WED_NOON).when == at(2025, 6, 7, 9, 0)


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("2月30号", "2月没有30号"),
        ("4月31日下午3点", "4月没有31号"),
        ("下个月31号", "7月"),
    ],
)
def test_impossible_dates_are_invalid(text: str, reply: str) -> None:
    now = SUN_EVENING if "下个月" not in text else at(2025, 5, 20, 9, 0)
    result = parse_time(text, now)
    assert result.status == "invalid", result
    assert result.when is None
    assert result.question is not None
    if "下个月" in text:
        assert "6月没有31号" in result.question
    else:
        assert reply in result.question


def test_date_a_few_days_ago_is_past_not_next_year() -> None:
    result = parse_time("6月5号下午3点", SUN_EVENING)
    assert result.status == "past"


def test_today_without_time_is_asked_about() -> None:
    result = parse_time("今天提醒我交电费", SUN_EVENING)
    assert result.status == "ambiguous"
    assert result.rest == "提醒我交电费"


def test_time_and_day_said_apart_are_joined() -> None:
    result = ok("明天提醒我，下午3点开会")
    assert result.when == at(2025, 6, 9, 15, 0)
    assert result.matched == "明天下午3点"
    assert "开会" in result.rest and "下午" not in result.rest


# ---------------------------------------------------------------- own cases: relative


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("半小时后提醒我", timedelta(minutes=30)),
        ("10分钟后", timedelta(minutes=10)),
        ("十分钟以后", timedelta(minutes=10)),
        ("两个小时以后", timedelta(hours=2)),
        ("一个半小时后", timedelta(hours=1, minutes=30)),
        ("过20分钟", timedelta(minutes=20)),
        ("一刻钟后", timedelta(minutes=15)),
        ("1小时30分钟后", timedelta(hours=1, minutes=30)),
    ],
)
def test_relative_times(text: str, delta: timedelta) -> None:
    assert ok(text).when == SUN_EVENING + delta


def test_days_later() -> None:
    assert ok("3天后").when == at(2025, 6, 11, 9, 0)
    assert ok("3天后下午4点").when == at(2025, 6, 11, 16, 0)
    assert ok("两周后").when == at(2025, 6, 22, 9, 0)


def test_relative_time_in_the_past_is_refused() -> None:
    assert parse_time("10分钟前", SUN_EVENING).status == "past"


# ---------------------------------------------------------------- own cases: recurrences


@pytest.mark.parametrize(
    ("text", "describe", "first"),
    [
        ("每天晚上8点提醒我吃药", "每天 20:00", at(2025, 6, 9, 20, 0)),
        ("每天早上7点半", "每天 07:30", at(2025, 6, 9, 7, 30)),
        ("每晚9点", "每天 21:00", at(2025, 6, 8, 21, 0)),
        ("工作日早上8点", "工作日 08:00", at(2025, 6, 9, 8, 0)),
        ("每个工作日的下午三点", "工作日 15:00", at(2025, 6, 9, 15, 0)),
        ("每周一到周五上午9点", "工作日 09:00", at(2025, 6, 9, 9, 0)),
        ("每月5号上午9点", "每月5号 09:00", at(2025, 7, 5, 9, 0)),
        ("每个月的15号", "每月15号 09:00", at(2025, 6, 15, 9, 0)),
        ("每周二、四上午九点", "每周二、周四 09:00", at(2025, 6, 10, 9, 0)),
        ("每周二和周五晚上7点", "每周二、周五 19:00", at(2025, 6, 10, 19, 0)),
        ("每周末上午10点", "每周六、周日 10:00", at(2025, 6, 14, 10, 0)),
        ("每个星期三下午", "每周三 15:00", at(2025, 6, 11, 15, 0)),
        ("每礼拜天晚上8点", "每周日 20:00", at(2025, 6, 15, 20, 0)),
    ],
)
def test_recurrences(text: str, describe: str, first: datetime) -> None:
    result = ok(text)
    assert result.recurrence is not None
    assert result.recurrence.describe() == describe
    assert result.when == first


def test_monthly_31st_skips_short_months() -> None:
    rec = Recurrence("monthly", 9, 0, month_day=31)
    assert rec.next_after(at(2025, 6, 1, 0, 0), SH) == at(2025, 7, 31, 9, 0)
    assert rec.next_after(at(2025, 7, 31, 9, 0), SH) == at(2025, 8, 31, 9, 0)


def test_workdays_skip_the_weekend() -> None:
    rec = Recurrence("workdays", 8, 0)
    assert rec.next_after(at(2025, 6, 6, 9, 0), SH) == at(2025, 6, 9, 8, 0)


def test_next_after_is_strictly_after_and_in_tz() -> None:
    rec = Recurrence("daily", 9, 0)
    moment = at(2025, 6, 8, 9, 0)
    assert rec.next_after(moment, SH) == at(2025, 6, 9, 9, 0)
    utc_moment = moment.astimezone(ZoneInfo("UTC"))
    assert rec.next_after(utc_moment, SH).utcoffset() == timedelta(hours=8)


def test_recurrence_json_round_trip() -> None:
    rec = Recurrence("weekly", 9, 0, ("tue", "thu"))
    data = json.loads(json.dumps(rec.to_json()))
    assert Recurrence.from_json(data) == rec
    assert data["weekdays"] == ["tue", "thu"]


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "yearly", "hour": 9, "minute": 0},
        {"kind": "weekly", "hour": 9, "minute": 0, "weekdays": [1]},
        {"kind": "daily", "hour": 24, "minute": 0},
        {"kind": "monthly", "hour": 9, "minute": 0, "month_day": 32},
    ],
)
def test_recurrence_rejects_bad_json(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Recurrence.from_json(data)


# ---------------------------------------------------------------- result shape


def test_no_time_at_all() -> None:
    result = parse_time("3号楼电梯坏了，请尽快来修", SUN_EVENING)
    assert result == TimeParse(
        "none", None, None, None, "", "3号楼电梯坏了，请尽快来修"
    )


def test_as_dict_is_json_serialisable() -> None:
    data = ok("每周一早上9点发荣誉榜", WED_NOON).as_dict()
    text = json.dumps(data, ensure_ascii=False)
    assert '"when": "2025-06-09T09:00:00+08:00"' in text
    assert data["recurrence"]["weekdays"] == ["mon"]


def test_rest_keeps_the_reminder_words() -> None:
    result = ok("提醒大家明天下午3点到2号楼开会。")
    assert result.rest == "提醒大家到2号楼开会"


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError):
        parse_time("明天下午3点", datetime(2025, 6, 8, 20, 30))


def test_warm_up_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    warm_up()
    assert capsys.readouterr().out == ""


@pytest.mark.skipif(
    not DATA.is_dir(), reason="shared data folder ../shared/data absent"
)
def test_every_public_expression_parses_without_error() -> None:
    statuses = {"ok", "ambiguous", "past", "invalid", "none"}
    count = 0
    for path in sorted(DATA.glob("time_expr_*.tsv")):
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        for line in lines:
            expression = line.split("\t")[1]
            assert parse_time(expression, SUN_EVENING).status in statuses
            count += 1
    assert count > 1000
