"""The pipeline against a real SQLite file: journal, filters, dispatch, replies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from models.tables import AuditEntry, InboundMessage, Petition, Praise, Reminder
from tests.conftest import GM_1, PROPERTY, drain, local
from tests.fakes import make_message


async def count(app, model) -> int:  # type: ignore[no-untyped-def]
    async with app.services.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def test_petition_is_numbered_and_routed_to_property(app, channel, clock):
    outcome = await app.pipeline.deliver(make_message("3号楼楼道灯坏了好几天了", at=clock.now()))
    await drain(app)

    assert outcome == "petition:维修"
    async with app.services.db.session() as session:
        petition = (await session.scalars(select(Petition))).one()
    assert petition.party == "物业" and petition.assignee_id == PROPERTY
    assert petition.grid_id == "grid-01"
    assert channel.sent[0].text.startswith(f"已登记诉求 #{petition.id}（物业·维修）")
    assert channel.sent[0].mention_ids == ("wxid_resident_001",)


async def test_praise_gets_a_thank_you(app, channel, clock):
    outcome = await app.pipeline.deliver(make_message("谢谢王师傅帮忙修水管", at=clock.now()))
    await drain(app)

    assert outcome.startswith("praise")
    assert await count(app, Praise) == 1
    assert "表扬" in channel.sent[0].text


async def test_chitchat_gets_no_reply(app, channel, clock):
    outcome = await app.pipeline.deliver(make_message("今天真冷啊", at=clock.now()))
    await drain(app)

    assert outcome == "none"
    assert channel.sent == []


async def test_reminder_is_confirmed_with_absolute_date(app, channel, clock):
    message = make_message("@社区小助手\u2005明天下午三点提醒我去社区医院体检", at=clock.now(),
                           mentions=("wxid_weizhili_bot",), mention_names=("社区小助手",),
                           mentions_bot=True)
    await app.pipeline.deliver(message)
    await drain(app)

    async with app.services.db.session() as session:
        reminder = (await session.scalars(select(Reminder))).one()
    assert reminder.due_at == local(2026, 12, 5, 15, 0)
    assert "12月5日（周六）15:00" in channel.sent[0].text
    assert "去社区医院体检" in channel.sent[0].text
    assert f"取消提醒 {reminder.id}" in channel.sent[0].text


async def test_redelivered_message_does_nothing_twice(app, channel, clock):
    # field report B24
    message = make_message("5栋门禁坏了", message_id="m123", at=clock.now())
    first = await app.pipeline.deliver(message)
    second = await app.pipeline.deliver(message)
    await drain(app)

    assert first.startswith("petition") and second == "duplicate"
    assert await count(app, Petition) == 1
    assert len(channel.sent) == 1


async def test_own_message_is_ignored(app, channel, clock):
    # field report B23: the bot's own acknowledgement comes back as a message
    echo = make_message("已收到报修：3号楼电梯坏了", sender="wxid_weizhili_bot", is_self=True,
                        at=clock.now())
    assert await app.pipeline.deliver(echo) == "own"
    await drain(app)
    assert await count(app, Petition) == 0
    assert channel.sent == []


async def test_stale_message_at_startup_is_not_acted_on(app, channel, clock):
    old = make_message("5栋门禁坏了", at=clock.now() - timedelta(minutes=10))
    assert await app.pipeline.deliver(old) == "stale"
    assert await count(app, Petition) == 0


async def test_one_failing_message_does_not_stop_the_next(app, channel, clock, monkeypatch):
    from handlers.intents import Intent

    async def broken(ctx):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setitem(app.pipeline.intent_handlers, Intent.PETITION, broken)
    failed = await app.pipeline.deliver(make_message("@社区小助手 楼道灯坏了", at=clock.now(),
                                                     mentions_bot=True))
    monkeypatch.undo()
    ok = await app.pipeline.deliver(make_message("2号楼下水道堵了", at=clock.now()))
    await drain(app)

    assert failed == "error" and ok.startswith("petition")
    assert any("抱歉" in t for t in channel.texts())
    assert all("boom" not in t for t in channel.texts())
    async with app.services.db.session() as session:
        statuses = list(await session.scalars(select(InboundMessage.status)))
    assert sorted(statuses) == ["done", "error"]


async def test_staff_command_checked_by_id_not_display_name(app, channel, clock):
    # field report B27: a resident calls themselves 物业-王经理
    await app.pipeline.deliver(make_message("3号楼电梯坏了", at=clock.now()))
    spoof = make_message("/办结 1 修好了", sender="wxid_resident_666", name="物业-王经理",
                         at=clock.now())
    assert await app.pipeline.deliver(spoof) == "command:refused"
    await drain(app)

    async with app.services.db.session() as session:
        petition = await session.get(Petition, 1)
        audit = (await session.scalars(select(AuditEntry))).one()
    assert petition.status == "reported"
    assert audit.allowed is False and audit.actor_id == "wxid_resident_666"
    assert "只有工作人员" in channel.sent[-1].text


async def test_staff_accepts_and_resolves(app, channel, clock):
    await app.pipeline.deliver(make_message("3号楼电梯坏了", at=clock.now()))
    await app.pipeline.deliver(make_message("/受理 1", sender=PROPERTY, name="王经理",
                                            at=clock.now()))
    await app.pipeline.deliver(make_message("/办结 1 已更换配件", sender=PROPERTY,
                                            name="王经理", at=clock.now()))
    await drain(app)

    async with app.services.db.session() as session:
        petition = await session.get(Petition, 1)
    assert petition.status == "resolved"
    assert petition.accepted_at is not None and petition.resolved_at is not None
    assert any("已办结" in t for t in channel.texts())


async def test_impossible_change_is_refused_and_changes_nothing(app, channel, clock):
    await app.pipeline.deliver(make_message("3号楼电梯坏了", at=clock.now()))
    await app.pipeline.deliver(make_message("/办结 1", sender=GM_1, at=clock.now()))
    await app.pipeline.deliver(make_message("/受理 1", sender=GM_1, at=clock.now()))
    await drain(app)

    async with app.services.db.session() as session:
        petition = await session.get(Petition, 1)
    assert petition.status == "resolved"
    assert "不能受理" in channel.sent[-1].text


async def test_unknown_command_gets_a_hint(app, channel, clock):
    await app.pipeline.deliver(make_message("/受里 1", sender=GM_1, at=clock.now()))
    await drain(app)
    assert "没有“/受里”这个命令" in channel.sent[-1].text
    assert "/受理" in channel.sent[-1].text


async def test_mention_to_bot_without_meaning_gets_help(app, channel, clock):
    message = make_message("@社区小助手\u2005你好", at=clock.now(), mentions=("wxid_weizhili_bot",),
                           mention_names=("社区小助手",), mentions_bot=True)
    assert await app.pipeline.deliver(message) == "help"
    await drain(app)
    assert "社区小助手" in channel.sent[0].text


async def test_private_message_from_staff_runs_commands(app, channel, clock):
    await app.pipeline.deliver(make_message("3号楼电梯坏了", at=clock.now()))
    outcome = await app.pipeline.deliver(make_message("/列表", room=None, sender=GM_1,
                                                      at=clock.now()))
    await drain(app)
    assert outcome == "command:列表"
    assert channel.sent[-1].room_id == GM_1
    assert "#1" in channel.sent[-1].text


async def test_phone_numbers_are_masked_in_group_replies(app, channel, clock):
    await app.pipeline.deliver(make_message("3号楼电梯坏了 电话13812345678", at=clock.now()))
    await app.pipeline.deliver(make_message("/列表", sender=GM_1, at=clock.now()))
    await drain(app)
    assert all("13812345678" not in t for t in channel.texts())


async def test_traditional_characters_are_understood(app, channel, clock):
    # field report B01
    outcome = await app.pipeline.deliver(make_message("我要投訴樓上漏水", at=clock.now()))
    assert outcome.startswith("petition")
    async with app.services.db.session() as session:
        petition = (await session.scalars(select(Petition))).one()
    assert petition.text == "我要投訴樓上漏水"  # the original is kept


async def test_journal_resumes_after_a_crash(app, channel, clock):
    # A message journalled but never processed (the process died in between).
    async with app.services.db.session() as session:
        session.add(InboundMessage(message_id="crash-1", room_id="grid-01", grid_id="grid-01",
                                   talker_id="wxid_resident_002", talker_name="李大爷",
                                   text="2单元暖气不热", sent_at=clock.now(),
                                   received_at=clock.now(), status="pending"))
    assert await app.pipeline.resume() == 1
    await drain(app)
    assert await count(app, Petition) == 1
    assert len(channel.sent) == 1


async def test_a_batch_journals_each_id_once(app, channel, clock):
    # a redelivery inside one batch, and one of an id an earlier batch journalled
    first = make_message("5号楼单元门禁坏了，刷卡开不了门", at=clock.now(), message_id="b-1")
    assert (await app.pipeline.deliver_many([first]))[0].startswith("petition")
    again = make_message("5号楼单元门禁坏了，刷卡开不了门", at=clock.now(), message_id="b-1")
    other = make_message("12号楼楼道里的灯不亮了", at=clock.now(), message_id="b-2",
                         sender="wxid_resident_002", name="李大爷")
    twice = make_message("12号楼楼道里的灯不亮了", at=clock.now(), message_id="b-2",
                         sender="wxid_resident_002", name="李大爷")
    chat = make_message("今天真冷啊", at=clock.now(), message_id="b-3")
    outcomes = await app.pipeline.deliver_many([again, other, twice, chat])
    assert outcomes[0] == "duplicate" and outcomes[2] == "duplicate"
    assert outcomes[1].startswith("petition") and outcomes[3] == "none"
    async with app.services.db.session() as session:
        journal = list(await session.scalars(
            select(InboundMessage.message_id).order_by(InboundMessage.id)))
        petitions = await session.scalar(select(func.count()).select_from(Petition))
    assert journal == ["b-1", "b-2", "b-3"] and petitions == 2


async def test_nul_characters_are_stored_as_replacement_marks(app, channel, clock):
    # PostgreSQL refuses NUL in text; a chat never means anything by one
    message = make_message("3号楼\x00楼道灯坏了", at=clock.now(), name="张\x00阿姨",
                           message_id="nul-1")
    assert (await app.pipeline.deliver(message)).startswith("petition")
    async with app.services.db.session() as session:
        stored = await session.scalar(select(InboundMessage.text))
        petition = await session.scalar(select(Petition))
    assert stored == "3号楼\ufffd楼道灯坏了" and petition is not None


async def test_a_broken_character_in_one_message_loses_none_of_a_burst(app, clock):
    """Half an emoji (a lone surrogate), a NUL in an id, an overlong room id: each of
    30 messages arriving together is journalled and handled, on either database."""
    texts = [f"{i}号楼楼道灯坏了好几天了" for i in range(1, 31)]
    texts[7] = "8号楼楼道灯坏了\ud83d好几天了"
    messages = [make_message(t, at=clock.now(), sender=f"wxid_resident_{i:03}",
                             message_id=f"burst-{i}") for i, t in enumerate(texts)]
    messages[11] = make_message(texts[11], at=clock.now(), sender="wxid_\x00odd",
                                message_id="burst-11")
    messages[12] = make_message(texts[12], at=clock.now(), room="r" * 300,
                                message_id="burst-12" + "x" * 200)
    outcomes = await app.pipeline.deliver_many(messages)
    assert "error" not in outcomes and "duplicate" not in outcomes, outcomes
    async with app.services.db.session() as session:
        stored = list(await session.scalars(select(InboundMessage)))
    assert len(stored) == 30
    assert any("\ufffd" in (row.text or "") for row in stored)
    assert all(len(row.message_id) <= 128 and len(row.room_id or "") <= 128 for row in stored)


async def test_a_message_the_database_refuses_fails_alone(app, clock, monkeypatch):
    pipeline = app.pipeline
    original = pipeline._journal_values

    def refuse_one(message):  # type: ignore[no-untyped-def]
        if message.message_id == "bad-3":
            raise ValueError("cannot store this one")
        return original(message)

    monkeypatch.setattr(pipeline, "_journal_values", refuse_one)
    messages = [make_message(f"{i}号楼电梯坏了", at=clock.now(), message_id=f"bad-{i}",
                             sender=f"wxid_resident_{i:03}") for i in range(6)]
    outcomes = await pipeline.deliver_many(messages)
    assert outcomes[3] == "error"
    assert all(o.startswith("petition") for i, o in enumerate(outcomes) if i != 3), outcomes
    async with app.services.db.session() as session:
        assert len(list(await session.scalars(select(InboundMessage)))) == 5
