"""回访: asking after a resolution, reading the answer, asking again, closing unanswered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.followup import Answer, parse_answer, run_followups
from tests.conftest import PROPERTY, local
from tests.petition_steps import RESIDENT, STAFF_ROOM, at, followups, petition, say


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("满意", Answer(True, True, True)),
        ("满意！", Answer(True, True, True)),
        ("非常满意，谢谢王师傅", Answer(True, True, True)),
        ("1", Answer(True, True, True)),
        ("是", Answer(True, True, True)),
        ("好的", Answer(True, True, True)),
        ("不满意", Answer(None, False, False, "")),
        ("不满意，还是漏水", Answer(None, False, False, "还是漏水")),
        ("2 没人联系我", Answer(False, False, False, "没人联系我")),
        ("否", Answer(None, False, False, "")),
        ("不满意，虽然修好了但态度差", Answer(None, True, False, "虽然修好了但态度差")),
        ("是 是 否", Answer(True, True, False)),
        ("是是是", Answer(True, True, True)),
        ("1，2，2", Answer(True, False, False)),
        ("有 没 不", Answer(True, False, False)),
    ],
)
def test_clear_answers(text, expected):
    assert parse_answer(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "嗯",
        "满意不满意",
        "还行吧",
        "3",
        "2号楼又停水了",
        "12",
        "今天天气真好",
        "",
        "谢谢",
        "满意吗？",
    ],
)
def test_unclear_answers_are_not_taken(text):
    assert parse_answer(text) is None


async def resolved_one(app, clock) -> None:  # type: ignore[no-untyped-def]
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/受理 1", sender=PROPERTY)
    await say(app, clock, "/办结 1 已换灯泡", sender=PROPERTY)


async def test_question_is_asked_with_a_mention_after_the_wait(app, channel, clock):
    await resolved_one(app, clock)
    (row,) = await followups(app)
    assert row.status == "pending" and row.due_at == clock.now() + timedelta(minutes=30)

    await at(app, clock, clock.now() + timedelta(minutes=10), run_followups)
    assert not any("回访三问" in t for t in channel.texts())
    await at(
        app, clock, clock.now() + timedelta(minutes=21), run_followups, run_followups
    )
    asked = [m for m in channel.sent if "回访三问" in m.text]
    assert len(asked) == 1
    assert asked[0].room_id == "grid-01" and asked[0].mention_ids == (RESIDENT,)
    assert (
        "满意" in asked[0].text and "1" in asked[0].text and "是 是 否" in asked[0].text
    )


async def test_satisfied_closes(app, channel, clock):
    await resolved_one(app, clock)
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    outcome = await say(app, clock, "满意，谢谢")
    assert outcome == "followup:satisfied"
    assert (await petition(app, 1)).status == "closed"
    (row,) = await followups(app)
    assert (row.status, row.contacted, row.solved, row.satisfied) == (
        "answered",
        True,
        True,
        True,
    )
    assert "#1 已办结归档" in channel.sent[-1].text


async def test_unsatisfied_reopens_with_the_reason_and_tells_the_assignee(
    app, channel, clock
):
    await resolved_one(app, clock)
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    outcome = await say(app, clock, "不满意，灯还是不亮")
    assert outcome == "followup:unsatisfied"
    p = await petition(app, 1)
    assert p.status == "reopened" and p.reopen_count == 1 and p.due_kind == "response"
    told = [
        m for m in channel.sent if m.room_id == STAFF_ROOM and "回访不满意" in m.text
    ]
    assert told and "灯还是不亮" in told[0].text and told[0].mention_ids == (PROPERTY,)
    assert "重新交给负责人" in channel.sent[-1].text or "重新交给负责人" in " ".join(
        channel.texts("grid-01")
    )


async def test_garbled_answer_is_asked_about_once_then_left_alone(app, channel, clock):
    await resolved_one(app, clock)
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    assert await say(app, clock, "嗯嗯？") == "followup:clarify"
    assert "没看明白" in channel.sent[-1].text
    sent = len(channel.sent)
    assert (
        await say(app, clock, "啊？") == "none"
    )  # asked once already: no more questions
    assert len(channel.sent) == sent
    assert await say(app, clock, "1") == "followup:satisfied"


async def test_unrelated_chatter_is_routed_as_usual(app, channel, clock):
    await resolved_one(app, clock)
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    outcome = await say(app, clock, "2号楼下水道堵了")
    assert outcome.startswith("petition:")
    (row,) = await followups(app)
    assert row.status == "asked"


async def test_someone_else_answering_is_not_taken(app, channel, clock):
    await resolved_one(app, clock)
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    assert await say(app, clock, "满意", sender="wxid_other") == "none"
    assert (await petition(app, 1)).status == "resolved"


async def test_no_answer_asked_once_more_then_closed_unanswered(app, channel, clock):
    await resolved_one(app, clock)
    asked_at = clock.now() + timedelta(minutes=31)
    await at(app, clock, asked_at, run_followups)
    await at(app, clock, asked_at + timedelta(hours=23), run_followups)
    assert not any("再打扰一下" in t for t in channel.texts())
    await at(
        app,
        clock,
        asked_at + timedelta(hours=24, minutes=1),
        run_followups,
        run_followups,
    )
    again = [m for m in channel.sent if "再打扰一下" in m.text]
    assert len(again) == 1 and again[0].mention_ids == (RESIDENT,)

    await at(app, clock, asked_at + timedelta(hours=48, minutes=1), run_followups)
    (row,) = await followups(app)
    assert row.status == "unanswered" and row.attempts == 2
    assert (await petition(app, 1)).status == "closed"


async def test_questions_wait_for_the_morning(app, channel, clock):
    clock.set(local(2026, 12, 4, 21, 50))
    await resolved_one(app, clock)
    await at(app, clock, local(2026, 12, 4, 23, 0), run_followups)
    assert not any("回访三问" in t for t in channel.texts())
    await at(app, clock, local(2026, 12, 5, 7, 1), run_followups)
    assert any("回访三问" in t for t in channel.texts())


async def test_dispute_is_followed_up_privately(app, channel, clock):
    await say(app, clock, "@社区小助手 楼上邻居天天半夜吵闹", mentions_bot=True)
    await say(app, clock, "/办结 1 已调解", sender="wxid_jwh_li")
    await at(app, clock, clock.now() + timedelta(minutes=31), run_followups)
    asked = [m for m in channel.sent if "回访三问" in m.text]
    assert asked[0].room_id == RESIDENT and asked[0].mention_ids == ()
    assert await say(app, clock, "满意", room=None) == "followup:satisfied"


async def test_an_answer_before_the_question_is_an_ordinary_message(
    app, channel, clock
):
    await resolved_one(app, clock)
    await say(
        app, clock, "不满意", sender=RESIDENT
    )  # not asked yet: an ordinary message
    (row,) = await followups(app)
    assert row.status == "pending"
