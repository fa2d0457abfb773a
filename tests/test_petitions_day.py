"""A scripted Friday through the pipeline: report → accept → resolve → follow-up → closed,
an overdue one escalated and listed in the nightly digest, and /统计 equal to the hand count."""

from __future__ import annotations

from schedules.runner import run_clock_job, tick
from tests.conftest import COMMITTEE, GM_1, PROPERTY, drain, local
from tests.petition_steps import (
    NEIGHBOUR,
    RESIDENT,
    STAFF_ROOM,
    at,
    events,
    petition,
    say,
)


async def test_a_day_of_petitions(app, channel, clock):
    # 15:00 a lamp, 15:05 rubbish: both 物业's
    await say(app, clock, "3号楼楼道灯坏了")
    clock.set(local(2026, 12, 4, 15, 5))
    await say(app, clock, "5号楼门口垃圾没人清理", sender=NEIGHBOUR, name="李大爷")
    assert "已登记诉求 #2（物业·环境）" in channel.sent[-1].text

    # the lamp is taken at 15:10 and fixed at 16:00
    clock.set(local(2026, 12, 4, 15, 10))
    await say(app, clock, "/受理 1", sender=PROPERTY, name="王经理")
    clock.set(local(2026, 12, 4, 16, 0))
    await say(app, clock, "/办结 1 已更换灯泡", sender=PROPERTY, name="王经理")

    # 16:31 the follow-up question goes out; 16:36 the rubbish's 物业 is nudged
    await at(app, clock, local(2026, 12, 4, 16, 31), tick)
    question = next(m for m in channel.sent if "回访三问" in m.text)
    assert question.mention_ids == (RESIDENT,) and question.room_id == "grid-01"
    await at(app, clock, local(2026, 12, 4, 16, 36), tick)
    assert any("【提醒】" in t and "#2" in t for t in channel.texts(STAFF_ROOM))

    # 16:40 the reporter is satisfied: closed
    clock.set(local(2026, 12, 4, 16, 40))
    assert await say(app, clock, "满意") == "followup:satisfied"
    assert (await petition(app, 1)).status == "closed"
    assert [e.to_status for e in await events(app, 1)] == [
        "reported",
        "accepted",
        "resolved",
        "closed",
    ]

    # nobody answers for the rubbish: the grid manager at 17:06, the 居委会 at 18:06
    await at(app, clock, local(2026, 12, 4, 17, 6), tick)
    await at(app, clock, local(2026, 12, 4, 18, 6), tick)
    staff = [m for m in channel.sent if m.room_id == STAFF_ROOM]
    overdue = next(m for m in staff if "【超时】" in m.text)
    assert "#2" in overdue.text and overdue.mention_ids[0] == GM_1
    committee = next(m for m in staff if "【督办】" in m.text)
    assert "#2" in committee.text and COMMITTEE in committee.mention_ids
    assert (await petition(app, 2)).escalation == 3

    # 21:30 the nightly digest lists the rubbish, overdue, and not the lamp
    clock.set(local(2026, 12, 4, 21, 30))
    await run_clock_job(app.services, "digest")
    await drain(app)
    digest = channel.texts(STAFF_ROOM)[-1]
    assert "尚未办结 1 件，其中超时 1 件" in digest
    assert "#2（物业·环境）" in digest and "未响应" in digest and "已超时" in digest
    assert "#1（" not in digest

    # 21:31 /统计 本周, hand-computed:
    #   on time: #1 responded 15:10 ≤ 17:00; #2 due 17:05 and never answered → 1/2
    #   same day: #1 resolved 16:00 ≤ 21:00; #2 due 21:00 → 1/2
    #   follow-ups: one answer, 满意 → contacted, solved, satisfied 1/1
    #   average response 10 minutes (15:00 → 15:10), resolution 60 minutes (15:00 → 16:00)
    clock.set(local(2026, 12, 4, 21, 31))
    await say(app, clock, "/统计 本周", sender=GM_1, name="赵网格员", room=STAFF_ROOM)
    stats = channel.sent[-1].text
    assert stats.startswith("幸福小区1网格 本周（11-30 至 12-04）诉求统计：")
    assert "诉求 2 件，已响应 1 件，已办结 1 件，重新办理 0 次" in stats
    assert f"响应率 {100 * 1 / 1:.1f}%（1/1）" in stats
    assert f"解决率 {100 * 1 / 1:.1f}%（1/1）" in stats
    assert f"满意率 {100 * 1 / 1:.1f}%（1/1）" in stats
    assert f"按时响应率 {100 * 1 / 2:.1f}%（1/2）" in stats
    assert f"当日办结率 {100 * 1 / 2:.1f}%（1/2）" in stats
    assert "平均响应 10 分钟，平均办结 60 分钟" in stats


async def test_stats_is_for_staff_and_their_grids(app, channel, clock):
    await say(app, clock, "/统计", sender=RESIDENT)
    assert "只有工作人员" in channel.sent[-1].text
    await say(app, clock, "/统计 本月 grid-02", sender=GM_1)
    assert "只能查看您负责网格的统计" in channel.sent[-1].text
    await say(app, clock, "/统计 本月 幸福小区2网格", sender=COMMITTEE)
    assert channel.sent[-1].text.startswith("幸福小区2网格 本月（12-01 至 12-04）")
