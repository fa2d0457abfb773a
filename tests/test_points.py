"""The points ledger: staff entries, sums, reversals, rank, consent to naming."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.app import App
from handlers.points import add_entry, parse_hours
from models.tables import Member, PointEntry, Praise
from tests.conftest import GM_1, drain
from tests.fakes import make_message

LI = "wxid_resident_li"
WU = "wxid_resident_wu"
GM_2 = "wxid_gm_qian"  # grid manager of grid-02 only


async def send(app: App, clock, text: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    kwargs.setdefault("name", "老周")
    return await app.pipeline.deliver(make_message(text, at=clock.now(), **kwargs))


async def as_staff(
    app: App,
    clock,
    text: str,
    mention: tuple[str, str] | None = None,  # type: ignore[no-untyped-def]
    sender: str = GM_1,
) -> str:
    extra = (
        {"mentions": (mention[0],), "mention_names": (mention[1],)} if mention else {}
    )
    return await send(app, clock, text, sender=sender, name="赵网格员", **extra)


async def entries(app: App, member_id: str) -> list[PointEntry]:
    async with app.services.db.session() as session:
        return list(
            await session.scalars(
                select(PointEntry)
                .where(PointEntry.member_id == member_id)
                .order_by(PointEntry.id)
            )
        )


async def total(app: App, member_id: str) -> int:
    return sum(e.delta for e in await entries(app, member_id))


async def meet(
    app: App, clock, member_id: str, name: str, room: str = "grid-01"
) -> None:  # type: ignore[no-untyped-def]
    await send(app, clock, "大家好", sender=member_id, name=name, room=room)


@pytest.mark.parametrize(
    ("word", "hours"),
    [
        ("2小时", 2.0),
        ("1.5小时", 1.5),
        ("两小时", 2.0),
        ("两个半小时", 2.5),
        ("半小时", 0.5),
        ("3h", 3.0),
        ("十二小时", 12.0),
        ("2个小时", 2.0),
    ],
)
def test_hours_are_understood(word, hours):
    assert parse_hours(word) == hours


@pytest.mark.parametrize("word", ["小时", "0小时", "25小时", "两天", "陪老人", ""])
def test_nonsense_hours_are_refused(word):
    assert parse_hours(word) is None


async def test_volunteer_hours_earn_points(app, channel, clock):
    await meet(app, clock, LI, "李姐")

    await as_staff(
        app, clock, "/志愿 @李姐 2小时 陪老人就医", ("wxid_resident_li", "李姐")
    )
    await drain(app)

    (entry,) = await entries(app, LI)
    assert (
        entry.kind == "volunteer"
        and entry.delta == 2 * app.config.points.volunteer_per_hour
    )
    assert entry.note == "志愿服务2小时：陪老人就医" and entry.grid_id == "grid-01"
    assert "2 小时" in channel.sent[-1].text


async def test_residents_cannot_award_points(app, clock):
    await send(
        app, clock, "/加分 @李姐 5 帮忙", mentions=(LI,), mention_names=("李姐",)
    )
    await send(
        app, clock, "/志愿 @李姐 2小时 扫雪", mentions=(LI,), mention_names=("李姐",)
    )

    assert await entries(app, LI) == []


async def test_staff_award_needs_amount_and_reason(app, channel, clock):
    await as_staff(app, clock, "/加分 @李姐 500 帮忙", (LI, "李姐"))
    await as_staff(app, clock, "/加分 @李姐 5", (LI, "李姐"))
    await as_staff(app, clock, "/加分 @李姐 5 组织楼栋大扫除", (LI, "李姐"))
    await drain(app)

    (entry,) = await entries(app, LI)
    assert entry.kind == "award" and entry.delta == 5 and entry.note == "组织楼栋大扫除"
    texts = channel.texts()
    assert "1 到 50" in texts[0] and "原因" in texts[1]


async def test_staff_of_another_grid_cannot_award(app, clock):
    await meet(app, clock, LI, "李姐")

    await as_staff(app, clock, "/加分 @李姐 5 帮忙", (LI, "李姐"), sender=GM_2)

    assert await entries(app, LI) == []


async def test_reversal_adds_a_negative_entry_once(app, channel, clock):
    await as_staff(app, clock, "/加分 @李姐 5 组织大扫除", (LI, "李姐"))
    await as_staff(app, clock, "/加分 @李姐 3 帮忙发通知", (LI, "李姐"))
    first, _ = await entries(app, LI)

    await as_staff(app, clock, f"/撤销 {first.id} 记错了人")
    await as_staff(app, clock, f"/撤销 {first.id}")
    await drain(app)

    rows = await entries(app, LI)
    assert [e.delta for e in rows] == [5, 3, -5]
    assert rows[2].kind == "reversal" and rows[2].reverses == first.id
    assert await total(app, LI) == 3
    assert "已经撤销过" in channel.texts()[-1]

    await as_staff(app, clock, f"/撤销 {rows[2].id}")
    await drain(app)
    assert "本身就是一次撤销" in channel.texts()[-1]
    assert len(await entries(app, LI)) == 3


async def test_database_refuses_a_second_reversal(app, clock):
    async with app.services.db.session() as session:
        entry = add_entry(
            session,
            member_id=LI,
            grid_id=None,
            delta=5,
            kind="award",
            note="x",
            by=GM_1,
            now=clock.now(),
        )
        await session.flush()
        for _ in range(2):
            twin = add_entry(
                session,
                member_id=LI,
                grid_id=None,
                delta=-5,
                kind="reversal",
                note="",
                by=GM_1,
                now=clock.now(),
            )
            twin.reverses = entry.id
        with pytest.raises(IntegrityError):
            await session.flush()
        await session.rollback()


async def test_reversing_a_praise_entry_marks_the_praise(app, clock):
    await send(app, clock, "谢谢王师傅帮忙修水管")
    async with app.services.db.session() as session:
        entry = (await session.scalars(select(PointEntry))).one()

    await as_staff(app, clock, f"/撤销 {entry.id}")

    async with app.services.db.session() as session:
        praise = (await session.scalars(select(Praise))).one()
    assert praise.status == "ignored" and praise.note == "revoked"


async def test_own_points_and_rank(app, channel, clock):
    for member_id, name in [(LI, "李姐"), (WU, "吴叔")]:
        await meet(app, clock, member_id, name)
    await as_staff(app, clock, "/加分 @李姐 5 组织大扫除", (LI, "李姐"))
    await as_staff(app, clock, "/加分 @吴叔 8 修好长椅", (WU, "吴叔"))
    await as_staff(app, clock, "/志愿 @李姐 1小时 帮忙发通知", (LI, "李姐"))

    await send(app, clock, "/积分", sender=LI, name="李姐")
    await send(app, clock, "积分", sender=WU, name="吴叔")
    await drain(app)

    li, wu = channel.texts()[-2:]
    assert "共有 10 分" in li and "第 1 名" in li and "共 2 人" in li
    assert "共有 8 分" in wu and "第 2 名" in wu


async def test_staff_see_anyones_points_residents_do_not(app, channel, clock):
    await as_staff(app, clock, "/加分 @李姐 5 组织大扫除", (LI, "李姐"))

    await send(
        app,
        clock,
        "/积分 @李姐",
        sender=WU,
        name="吴叔",
        mentions=(LI,),
        mention_names=("李姐",),
    )
    await as_staff(app, clock, "/积分 @李姐", (LI, "李姐"))
    await drain(app)

    resident, staff = channel.texts()[-2:]
    assert "只能查看自己" in resident
    assert "共 5 分" in staff and "组织大扫除" in staff


async def test_adopted_suggestion_and_fixed_hazard_pay_once(app, channel, clock):
    await send(app, clock, "3号楼楼道灯坏了好几天了", sender=LI, name="李姐")
    async with app.services.db.session() as session:
        from models.tables import Petition

        petition = (await session.scalars(select(Petition))).one()

    await as_staff(app, clock, f"/隐患 {petition.id}")  # not resolved yet
    await as_staff(app, clock, f"/办结 {petition.id} 已换灯泡")
    await as_staff(app, clock, f"/隐患 {petition.id}")
    await as_staff(app, clock, f"/隐患 {petition.id}")
    await as_staff(app, clock, f"/采纳 {petition.id}")
    await drain(app)

    kinds = [(e.kind, e.delta) for e in await entries(app, LI)]
    points = app.config.points
    assert kinds == [
        ("hazard", points.hazard_fixed),
        ("suggestion", points.suggestion_adopted),
    ]
    assert any("还没有办结" in t for t in channel.texts())
    assert any("已经加过分" in t for t in channel.texts())


async def test_ledger_sum_is_the_balance(app, clock):
    async with app.services.db.session() as session:
        for delta in (5, 3, -2, 10):
            add_entry(
                session,
                member_id=WU,
                grid_id="grid-01",
                delta=delta,
                kind="award",
                note="",
                by=GM_1,
                now=clock.now(),
            )
    async with app.services.db.session() as session:
        from handlers.points import balance

        assert await balance(session, WU) == 16
        assert await session.scalar(select(func.count()).select_from(PointEntry)) == 4


async def test_opt_out_and_back_in(app, channel, clock):
    await send(app, clock, "/不上榜", sender=LI, name="李姐")
    async with app.services.db.session() as session:
        assert (await session.get(Member, LI)).opted_out is True

    await send(app, clock, "上榜", sender=LI, name="李姐")
    await drain(app)
    async with app.services.db.session() as session:
        assert (await session.get(Member, LI)).opted_out is False
    assert "一位热心居民" in channel.texts()[0]


async def test_opted_out_resident_is_not_named_in_the_praise_reply(app, channel, clock):
    await send(app, clock, "/不上榜", sender=LI, name="李姐")

    await send(
        app,
        clock,
        "表扬@李姐 天天扫雪",
        sender=WU,
        name="吴叔",
        mentions=(LI,),
        mention_names=("李姐",),
    )
    await drain(app)

    assert "一位热心居民" in channel.texts()[-1]
    assert "李姐" not in channel.texts()[-1]
