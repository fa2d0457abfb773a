"""矛盾不过夜: nudges, escalation, the nightly digest and the morning list, with the clock moved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from models.tables import JobRun
from schedules.deadlines import check_deadlines
from schedules.digests import catch_up, morning_list, nightly_digest
from tests.conftest import COMMITTEE, GM_1, PROPERTY, local
from tests.petition_steps import STAFF_ROOM, at, events, petition, say


def staff_messages(channel, since=0):  # type: ignore[no-untyped-def]
    return [m for m in channel.sent[since:] if m.room_id == STAFF_ROOM]


async def test_nudge_then_grid_manager_then_committee_each_once(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")  # Friday 15:00: respond by 17:00
    start = len(channel.sent)

    await at(app, clock, local(2026, 12, 4, 16, 0), check_deadlines)
    assert staff_messages(channel, start) == []

    await at(app, clock, local(2026, 12, 4, 16, 31), check_deadlines, check_deadlines)
    (nudge,) = staff_messages(channel, start)
    assert "【提醒】" in nudge.text and "17:00 前响应" in nudge.text
    assert nudge.mention_ids == (PROPERTY,)

    await at(app, clock, local(2026, 12, 4, 17, 1), check_deadlines, check_deadlines)
    overdue = staff_messages(channel, start)[1:]
    assert len(overdue) == 1 and "【超时】" in overdue[0].text
    assert overdue[0].mention_ids[0] == GM_1

    await at(app, clock, local(2026, 12, 4, 17, 30), check_deadlines)
    assert len(staff_messages(channel, start)) == 2  # the 居委会 waits an hour

    await at(app, clock, local(2026, 12, 4, 18, 2), check_deadlines, check_deadlines)
    messages = staff_messages(channel, start)
    assert len(messages) == 3 and "【督办】" in messages[2].text
    assert COMMITTEE in messages[2].mention_ids

    await at(app, clock, local(2026, 12, 4, 19, 0), check_deadlines)
    assert len(staff_messages(channel, start)) == 3
    p = await petition(app, 1)
    assert p.escalation == 3
    assert [e.action for e in await events(app, 1)].count("escalate") == 2


async def test_response_resets_the_steps_for_the_same_day_deadline(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await at(app, clock, local(2026, 12, 4, 17, 5), check_deadlines)  # overdue: GM told
    await say(app, clock, "/受理 1", sender=PROPERTY)
    p = await petition(app, 1)
    assert (p.due_kind, p.due_at, p.escalation) == (
        "resolve",
        local(2026, 12, 4, 21, 0),
        0,
    )
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 4, 20, 35), check_deadlines)
    assert "前办结或报告进展" in staff_messages(channel, start)[0].text


async def test_bot_down_past_the_deadline_skips_the_nudge(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 4, 17, 20), check_deadlines)
    (only,) = staff_messages(channel, start)
    assert "【超时】" in only.text


async def test_night_report_is_due_after_the_next_opening(app, channel, clock):
    clock.set(local(2026, 12, 4, 23, 0))
    await say(app, clock, "3号楼楼道灯坏了")
    assert (await petition(app, 1)).response_due == local(2026, 12, 5, 10, 30)
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 5, 3, 0), check_deadlines)
    await at(app, clock, local(2026, 12, 5, 10, 1), check_deadlines)
    (nudge,) = staff_messages(channel, start)
    assert "10:30 前响应" in nudge.text


async def test_quiet_hours_hold_calm_escalations_but_not_urgent_ones(
    app, channel, clock
):
    clock.set(local(2026, 12, 4, 22, 30))
    await say(app, clock, "厨房有煤气味")  # urgent: due 23:00
    await say(
        app, clock, "2号楼暖气不热", room="grid-02", sender="wxid_r9"
    )  # due Sat 10:30
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 4, 23, 1), check_deadlines)
    messages = staff_messages(channel, start)
    assert (
        len(messages) == 1
        and "#1" in messages[0].text
        and "【超时】" in messages[0].text
    )


async def test_nightly_digest_lists_open_petitions_and_why(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "2号楼暖气不热", room="grid-02", sender="wxid_r9")
    await say(app, clock, "5号楼门口垃圾没人清理", sender="wxid_r8")
    await say(app, clock, "/受理 2", sender=PROPERTY)
    await say(app, clock, "/进展 2 已联系锅炉房", sender=PROPERTY)
    await say(app, clock, "/受理 3", sender=PROPERTY)
    await say(app, clock, "/办结 3 已清运", sender=PROPERTY)
    start = len(channel.sent)

    await at(app, clock, local(2026, 12, 4, 21, 30), nightly_digest, nightly_digest)
    (digest,) = staff_messages(channel, start)
    text = digest.text
    assert "【今日诉求小结】12月04日 尚未办结 2 件，其中超时 1 件" in text
    line_1 = next(line for line in text.splitlines() if "#1（" in line)
    assert "待受理" in line_1 and "未响应" in line_1 and "已超时" in line_1
    line_2 = next(line for line in text.splitlines() if "#2（" in line)
    assert "处理中" in line_2 and "已联系锅炉房" in line_2 and "王经理" in line_2
    assert "#3（" not in text

    async with app.services.db.session() as session:
        runs = list(await session.scalars(select(JobRun.key)))
    assert runs == ["digest:2026-12-04"]


async def test_digest_when_all_is_done(app, channel, clock):
    await at(app, clock, local(2026, 12, 4, 21, 30), nightly_digest)
    assert "都已办结" in channel.texts(STAFF_ROOM)[0]


async def test_morning_list_shows_what_stayed_overnight(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    clock.set(local(2026, 12, 5, 7, 0))
    await say(app, clock, "2号楼暖气不热", room="grid-02", sender="wxid_r9")
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 5, 8, 30), morning_list)
    (morning,) = staff_messages(channel, start)
    assert "过夜未办结的诉求 1 件" in morning.text
    assert "#1（" in morning.text and "#2（" not in morning.text


async def test_digest_runs_once_across_a_restart_and_catches_up_once(
    app, channel, clock
):
    # Thursday's digest ran; then the bot was down from Thursday night to Sunday morning.
    await at(app, clock, local(2026, 12, 3, 21, 30), nightly_digest)
    await at(app, clock, local(2026, 12, 4, 8, 30), morning_list)
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 6, 9, 0), catch_up, catch_up)
    messages = staff_messages(channel, start)
    assert len(messages) == 2
    digest = next(m for m in messages if "小结" in m.text)
    assert "12月05日（补发）" in digest.text
    assert "12月06日（补发）" in next(m for m in messages if "早间" in m.text).text

    # the clock job itself, after a restart on the same evening, posts nothing twice
    await at(app, clock, local(2026, 12, 6, 21, 30), nightly_digest)
    await at(app, clock, local(2026, 12, 6, 21, 45), catch_up, nightly_digest)
    assert len(staff_messages(channel, start)) == 3


async def test_first_start_has_missed_nothing(app, channel, clock):
    await at(app, clock, local(2026, 12, 4, 22, 0), catch_up)
    assert channel.texts(STAFF_ROOM) == []


async def test_morning_catch_up_is_skipped_after_noon(app, channel, clock):
    await at(app, clock, local(2026, 12, 3, 8, 30), morning_list)
    start = len(channel.sent)
    await at(app, clock, local(2026, 12, 4, 13, 0), catch_up)
    assert not any(
        "早间" in t for t in [m.text for m in staff_messages(channel, start)]
    )


async def test_features_register_the_jobs(app):
    extras = app.services.extras
    assert check_deadlines in extras["tick_jobs"]
    assert extras["clock_specs"]["digest"] == {"hour": 21, "minute": 30}
    assert extras["clock_specs"]["morning"] == {"hour": 8, "minute": 30}
    assert extras["clock_jobs"]["digest"] is nightly_digest
    assert extras["catch_up_jobs"]["petition_digests"] is catch_up


async def test_overdue_by_hours_is_said_in_hours(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    clock.advance(timedelta(hours=6))
    await nightly_digest(app.services)
    assert "已超时4小时" in await _last_staff_text(app, channel)


async def _last_staff_text(app, channel) -> str:  # type: ignore[no-untyped-def]
    from tests.conftest import drain

    await drain(app)
    return channel.texts(STAFF_ROOM)[-1]
