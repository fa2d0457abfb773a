"""Reminders and notices: stored rows, sent once, late with a mark, across restarts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import App
from models.tables import Member, Reminder
from schedules.reminders import fire_due_reminders
from schedules.runner import tick
from tests.conftest import GM_1, drain, local
from tests.fakes import RecordingChannel, make_message

BOT = "wxid_weizhili_bot"


def to_bot(text: str, clock, **kw):  # type: ignore[no-untyped-def]
    return make_message(f"@社区小助手\u2005{text}", at=clock.now(), mentions=(BOT,),
                        mention_names=("社区小助手",), mentions_bot=True, **kw)


async def reminders(app) -> list[Reminder]:  # type: ignore[no-untyped-def]
    async with app.services.db.session() as session:
        return list(await session.scalars(select(Reminder).order_by(Reminder.id)))


async def test_reminder_fires_once_at_its_time(app, channel, clock):
    await app.pipeline.deliver(to_bot("今天下午四点提醒我去取药", clock))
    await drain(app)
    channel.sent.clear()

    clock.set(local(2026, 12, 4, 15, 59))
    assert await fire_due_reminders(app.services) == 0
    clock.set(local(2026, 12, 4, 16, 0, 20))
    assert await fire_due_reminders(app.services) == 1
    assert await fire_due_reminders(app.services) == 0
    await drain(app)

    assert [m.text for m in channel.sent] == ["【提醒】去取药"]
    assert channel.sent[0].mention_ids == ("wxid_resident_001",)
    assert (await reminders(app))[0].status == "sent"


async def test_bare_twelve_oclock_asks_and_stores_nothing(app, channel, clock):
    # field report B19
    await app.pipeline.deliver(to_bot("12点提醒我关火", clock))
    await drain(app)
    assert await reminders(app) == []
    assert "中午还是半夜" in channel.sent[0].text


async def test_past_time_is_refused(app, channel, clock):
    # field report B20: 本周一 said on a Friday
    await app.pipeline.deliver(to_bot("本周一上午9点提醒我交电费", clock))
    await drain(app)
    assert await reminders(app) == []
    assert "过" in channel.sent[0].text


async def test_reminder_due_during_downtime_is_sent_once_late(config, clock, tmp_path):
    # field report B08: due 15:00, bot down 14:58–15:05, real SQLite file across restarts
    first = RecordingChannel()
    bot = App(config, channel=first, clock=clock, web_enabled=False, scheduler_enabled=False)
    await bot.start()
    clock.set(local(2026, 12, 4, 14, 0))
    await bot.pipeline.deliver(to_bot("今天下午3点提醒我交物业费", clock))
    await drain(bot)
    clock.set(local(2026, 12, 4, 14, 58))
    await bot.stop()

    clock.set(local(2026, 12, 4, 15, 5))
    second = RecordingChannel()
    bot = App(config, channel=second, clock=clock, web_enabled=False, scheduler_enabled=True)
    await bot.start()  # the scheduler's start-up catch-up fires what is due
    try:
        await tick(bot.services)
        await drain(bot)
        assert [m.text for m in second.sent] == ["【提醒】交物业费（补发）"]
    finally:
        await bot.stop()


async def test_reminder_missed_beyond_grace_goes_to_staff(app, channel, clock):
    await app.pipeline.deliver(to_bot("今天下午4点提醒我交物业费", clock))
    await drain(app)
    channel.sent.clear()
    clock.set(local(2026, 12, 5, 9, 0))  # grace is two hours

    await fire_due_reminders(app.services)
    await drain(app)

    assert len(channel.sent) == 1
    assert channel.sent[0].room_id == app.config.community.staff_room
    assert "未能按时发送" in channel.sent[0].text
    assert (await reminders(app))[0].status == "missed"


async def test_recurring_reminder_fires_once_after_an_outage(app, channel, clock):
    await app.pipeline.deliver(to_bot("每天晚上8点提醒我吃药", clock, room=None))
    await drain(app)
    channel.sent.clear()
    clock.set(local(2026, 12, 7, 20, 30))  # three evenings later

    await fire_due_reminders(app.services)
    await fire_due_reminders(app.services)
    await drain(app)

    assert len(channel.sent) == 1 and channel.sent[0].text.endswith("（补发）")
    reminder = (await reminders(app))[0]
    assert reminder.status == "pending"
    assert reminder.due_at == local(2026, 12, 8, 20, 0)


async def test_group_post_waits_for_the_morning_but_personal_time_does_not(app, channel, clock):
    await app.pipeline.deliver(to_bot("今晚11点提醒大家关好门窗", clock, sender=GM_1,
                                      name="赵网格员"))
    await app.pipeline.deliver(to_bot("今晚11点提醒我吃药", clock))
    await drain(app)
    assert "夜间免打扰" in channel.sent[0].text
    channel.sent.clear()

    clock.set(local(2026, 12, 4, 23, 0, 10))
    await fire_due_reminders(app.services)
    await drain(app)
    assert [m.text for m in channel.sent] == ["【提醒】吃药"]

    clock.set(local(2026, 12, 5, 7, 0, 10))
    await fire_due_reminders(app.services)
    await drain(app)
    assert channel.sent[-1].text == "【提醒】关好门窗"  # on time in the morning, not 补发


async def test_residents_group_reminder_waits_for_staff_approval(app, channel, clock):
    await app.pipeline.deliver(to_bot("明天上午9点提醒大家带身份证去社区打疫苗", clock))
    await drain(app)
    reminder = (await reminders(app))[0]
    assert reminder.status == "approval"
    assert any(m.room_id == app.config.community.staff_room for m in channel.sent)

    await app.pipeline.deliver(make_message(f"/同意提醒 {reminder.id}", sender=GM_1,
                                            at=clock.now()))
    assert (await reminders(app))[0].status == "pending"


async def test_list_and_cancel_follow_the_owner(app, channel, clock):
    await app.pipeline.deliver(to_bot("明天上午10点提醒我去银行", clock))
    number = (await reminders(app))[0].id
    other = make_message(f"取消提醒 {number}", sender="wxid_resident_009", at=clock.now())
    await app.pipeline.deliver(other)
    assert (await reminders(app))[0].status == "pending"

    await app.pipeline.deliver(make_message("/提醒列表", at=clock.now()))
    await app.pipeline.deliver(make_message(f"取消提醒 {number}", at=clock.now()))
    await drain(app)
    assert (await reminders(app))[0].status == "cancelled"
    texts = channel.texts()
    assert any("只能取消自己设置的提醒" in t for t in texts)
    assert any("去银行" in t and "待发送的提醒" in t for t in texts)
    assert texts[-1] == f"好的，提醒 {number} 已取消。"


async def test_odd_reminder_numbers_get_a_clear_answer(app, channel, clock):
    huge = "99999999999999999999999"  # once an OverflowError and no reply at all
    answered = ("command:取消提醒", "command:refused")  # answered, not an error
    assert await app.pipeline.deliver(make_message(f"取消提醒 {huge}", at=clock.now())) \
        in answered
    staff = make_message(f"/同意提醒 {huge}", sender=GM_1, at=clock.now())
    assert await app.pipeline.deliver(staff) in ("command:同意提醒", "command:refused")
    for odd in ("²", "１２"):  # NFKC makes both plain digits: no such reminder
        assert await app.pipeline.deliver(make_message(f"取消提醒 {odd}", at=clock.now())) \
            in answered
    await drain(app)
    texts = channel.texts()
    assert texts[:2] == ["请写上提醒编号，例如：取消提醒 7", "请写上提醒编号，例如：/同意提醒 7"]
    assert texts[2:] == ["没有找到这条待发送的提醒。"] * 2


async def test_notice_to_all_groups_with_rollcall(app, channel, clock):
    for i, grid in enumerate(["grid-01", "grid-01", "grid-02"], 1):
        await app.pipeline.deliver(make_message("大家好", room=grid, sender=f"wxid_n{i}",
                                                name=f"邻居{i}", at=clock.now()))
    await app.pipeline.deliver(make_message("/通知 全部 明天上午9点 明天停水检修，请提前储水，看到请回复收到",
                                            room=None, sender="wxid_jwh_li", name="李主任",
                                            at=clock.now()))
    await drain(app)
    notice = (await reminders(app))[0]
    assert notice.kind == "notice" and notice.rollcall_at is not None
    assert sorted(notice.room_ids) == ["grid-01", "grid-02", "grid-03"]

    clock.set(local(2026, 12, 5, 9, 0, 5))
    await tick(app.services)
    await drain(app)
    sent_rooms = sorted(m.room_id for m in channel.sent if m.text.startswith("【通知】"))
    assert sent_rooms == ["grid-01", "grid-02", "grid-03"]

    clock.set(local(2026, 12, 5, 9, 10))
    await app.pipeline.deliver(make_message("收到", room="grid-01", sender="wxid_n1",
                                            at=clock.now()))
    clock.set(local(2026, 12, 5, 11, 1))
    await tick(app.services)
    await tick(app.services)
    await drain(app)
    chases = [m for m in channel.sent if m.text.startswith("【收到统计】")]
    assert [(m.room_id, m.mention_ids) for m in chases] == [
        ("grid-01", ("wxid_n2",)), ("grid-02", ("wxid_n3",))]


async def test_a_notice_sent_at_night_says_it_waits_for_the_morning(app, channel, clock):
    clock.set(local(2026, 12, 5, 5, 35))  # before the quiet hours end
    await app.pipeline.deliver(make_message("/通知 全部 停电检修，请提前准备", room=None,
                                            sender="wxid_jwh_li", name="李主任",
                                            at=clock.now()))
    await drain(app)
    reply = channel.texts("wxid_jwh_li")[-1]
    assert "夜间免打扰" in reply and "马上" not in reply, reply


async def test_notice_by_a_resident_is_refused(app, channel, clock):
    await app.pipeline.deliver(make_message("/通知 全部 明天停水", at=clock.now()))
    await drain(app)
    assert await reminders(app) == []
    assert "只有工作人员" in channel.sent[0].text


async def test_members_seen_are_remembered_by_id(app, clock):
    await app.pipeline.deliver(make_message("早", sender="wxid_x", name="老王", at=clock.now()))
    await app.pipeline.deliver(make_message("早", sender="wxid_x", name="王大爷",
                                            at=clock.now() + timedelta(seconds=1)))
    async with app.services.db.session() as session:
        member = await session.get(Member, "wxid_x")
    assert member.name == "王大爷" and member.grid_id == "grid-01"
