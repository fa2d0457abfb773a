"""Praise: recognition on the handler side, targets, and every fairness rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.config import Config
from handlers.intents import Classification, Intent
from models.tables import PointEntry, Praise
from tests.conftest import GM_1, PROPERTY, drain
from tests.fakes import RecordingChannel, make_message

ZHANG = "wxid_resident_zhang"
LI = "wxid_resident_li"
WU = "wxid_resident_wu"
GIVER = "wxid_resident_001"


async def send(app: App, clock, text: str, **kwargs) -> str:  # type: ignore[no-untyped-def]
    kwargs.setdefault("name", "老周")
    return await app.pipeline.deliver(make_message(text, at=clock.now(), **kwargs))


async def praise_rows(app: App) -> list[Praise]:
    async with app.services.db.session() as session:
        return list(await session.scalars(select(Praise).order_by(Praise.id)))


async def points_of(app: App, member_id: str) -> int:
    async with app.services.db.session() as session:
        return int(
            await session.scalar(
                select(func.coalesce(func.sum(PointEntry.delta), 0)).where(
                    PointEntry.member_id == member_id
                )
            )
            or 0
        )


async def introduce(app: App, clock, member_id: str, name: str) -> None:  # type: ignore[no-untyped-def]
    """Let the bot see a resident once, so their name is known in the grid."""
    await send(app, clock, "大家早上好", sender=member_id, name=name)


@pytest.fixture
async def make_app(
    config: Config, clock
) -> AsyncIterator[Callable[..., Awaitable[App]]]:  # type: ignore[no-untyped-def]
    """Start apps with changed points settings (confirm_by, daily cap); stop them after."""
    apps: list[App] = []

    async def start(**points: object) -> App:
        changed = replace(config, points=replace(config.points, **points))
        bot = App(
            changed,
            channel=RecordingChannel(),
            clock=clock,
            web_enabled=False,
            scheduler_enabled=False,
        )
        await bot.start()
        apps.append(bot)
        return bot

    yield start
    for bot in apps:
        await bot.stop()


# --- recognition ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("谢谢5号楼张阿姨帮我拿快递", "张阿姨"),
        ("给王师傅点个赞，修水管很及时", "王经理"),
        ("多亏了小刘陪我去医院", "小刘"),
        ("謝謝王師傅[强]修水管很及時", "王经理"),
    ],
)
async def test_praise_in_ordinary_words_is_recorded(app, clock, text, written):
    outcome = await send(app, clock, text)

    assert outcome.startswith("praise:")
    (praise,) = await praise_rows(app)
    assert praise.target_name == written
    assert praise.giver_id == GIVER


async def test_mention_id_is_the_target(app, clock):
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )

    (praise,) = await praise_rows(app)
    assert praise.target_id == LI
    assert praise.target_name == "李姐"


@pytest.mark.parametrize(
    "text", ["好的谢谢", "谢谢大家", "谢谢物业，又停水了", "今天天气不错"]
)
async def test_not_praise_is_not_recorded(app, clock, text):
    await send(app, clock, text)

    assert await praise_rows(app) == []


@pytest.mark.parametrize("targets", [[], ["大家"], ["各位邻居"]])
async def test_handler_refuses_praise_without_a_person(
    app, clock, monkeypatch, targets
):
    router = app.services.router
    verdict = Classification(
        Intent.PRAISE, score=9, confident=True, targets=targets, reason="帮忙"
    )
    monkeypatch.setattr(router, "classify", lambda *a, **k: verdict)

    outcome = await send(app, clock, "谢谢大家帮忙")

    assert outcome == "praise:no-target"
    assert await praise_rows(app) == []


async def test_name_is_matched_against_known_members(app, clock):
    await introduce(app, clock, ZHANG, "张阿姨")

    await send(app, clock, "谢谢张阿姨帮我拿快递")

    (praise,) = await praise_rows(app)
    assert praise.target_id == ZHANG and not praise.target_is_staff


async def test_unknown_name_is_kept_as_written_and_linked_later(app, channel, clock):
    await send(app, clock, "多亏了小刘陪我去医院")
    (praise,) = await praise_rows(app)
    assert praise.target_id is None and praise.target_name == "小刘"

    await send(
        app,
        clock,
        f"/关联 {praise.id} @小刘",
        sender=GM_1,
        name="赵网格员",
        mentions=("wxid_liu",),
        mention_names=("小刘",),
    )
    await send(app, clock, f"/确认 {praise.id}", sender=GM_1, name="赵网格员")
    await drain(app)

    (praise,) = await praise_rows(app)
    assert praise.target_id == "wxid_liu" and praise.status == "confirmed"
    assert await points_of(app, "wxid_liu") == app.config.points.praise_resident


# --- fairness ---------------------------------------------------------------------------


async def test_staff_praise_counts_at_once(app, channel, clock):
    await send(app, clock, "谢谢王师傅帮忙修水管")
    await drain(app)

    (praise,) = await praise_rows(app)
    assert praise.target_id == PROPERTY and praise.status == "confirmed"
    assert await points_of(app, PROPERTY) == app.config.points.praise_staff
    assert "已记入光荣榜" in channel.sent[0].text


async def test_self_praise_earns_nothing(app, channel, clock):
    await send(
        app,
        clock,
        "表扬@张阿姨 天天扫雪",
        sender=ZHANG,
        name="张阿姨",
        mentions=(ZHANG,),
        mention_names=("张阿姨",),
    )
    await drain(app)

    (praise,) = await praise_rows(app)
    assert praise.status == "ignored" and praise.note == "self"
    assert await points_of(app, ZHANG) == 0
    assert "自己夸自己" in channel.sent[0].text


async def test_one_credit_per_giver_and_receiver_per_day(app, clock):
    mention = dict(mentions=(LI,), mention_names=("李姐",))
    await send(app, clock, "表扬@李姐 天天扫雪", **mention)
    await send(app, clock, "谢谢@李姐 帮我搬米", **mention)
    clock.advance(timedelta(days=1))
    await send(app, clock, "感谢@李姐 帮忙修自行车", **mention)

    first, second, third = await praise_rows(app)
    assert first.status == "pending"
    assert second.status == "ignored" and second.note == "same-target-today"
    assert third.status == "pending"


async def test_daily_cap_per_giver(make_app, clock):
    app = await make_app(daily_cap_per_giver=2)
    for member_id, name in [(ZHANG, "张阿姨"), (LI, "李姐"), (WU, "吴叔")]:
        await send(
            app,
            clock,
            f"表扬@{name} 帮忙扫雪",
            mentions=(member_id,),
            mention_names=(name,),
        )

    statuses = [(p.status, p.note) for p in await praise_rows(app)]
    assert statuses == [("pending", ""), ("pending", ""), ("ignored", "daily-cap")]


async def test_repeated_identical_message_is_ignored_quietly(app, channel, clock):
    await send(app, clock, "谢谢王师傅帮忙修水管")
    await send(app, clock, "谢谢王师傅帮忙修水管")
    await drain(app)

    first, second = await praise_rows(app)
    assert first.status == "confirmed"
    assert second.status == "ignored" and second.note == "repeat"
    assert len(channel.sent) == 1
    assert await points_of(app, PROPERTY) == app.config.points.praise_staff


async def test_resident_praise_waits_for_staff_confirmation(app, channel, clock):
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )
    (praise,) = await praise_rows(app)
    assert praise.status == "pending" and await points_of(app, LI) == 0

    await send(
        app,
        clock,
        f"/确认 {praise.id}",
        sender="wxid_resident_002",
        name="冒充的网格员",
    )
    assert await points_of(app, LI) == 0  # a resident cannot confirm by command

    await send(app, clock, f"/确认 {praise.id}", sender=GM_1, name="赵网格员")
    await send(app, clock, f"/确认 {praise.id}", sender=GM_1, name="赵网格员")
    await drain(app)

    assert await points_of(app, LI) == app.config.points.praise_resident
    assert "已经确认过" in channel.texts()[-1]


async def test_neighbours_plus_one_confirms(app, channel, clock):
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )

    assert await send(app, clock, "+1") != "praise:plus-one"  # the giver
    assert await send(app, clock, "+1", sender=LI, name="李姐") != "praise:plus-one"
    clock.advance(timedelta(minutes=5))
    outcome = await send(app, clock, "＋1", sender=WU, name="吴叔")
    await drain(app)

    assert outcome == "praise:plus-one"
    (praise,) = await praise_rows(app)
    assert praise.status == "confirmed" and praise.confirmed_by == f"plus_one:{WU}"
    assert await points_of(app, LI) == app.config.points.praise_resident
    assert "谢谢您的+1" in channel.texts()[-1]


async def test_plus_one_too_late_or_elsewhere_does_nothing(app, clock):
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )

    assert (
        await send(app, clock, "+1", sender=WU, name="吴叔", room="grid-02")
        != "praise:plus-one"
    )
    clock.advance(timedelta(minutes=31))
    assert (
        await send(app, clock, "同意表扬", sender=WU, name="吴叔") != "praise:plus-one"
    )
    assert await points_of(app, LI) == 0


async def test_plus_one_after_a_petition_is_not_for_the_praise(app, clock):
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )
    await send(app, clock, "3号楼楼道灯坏了好几天了", sender=ZHANG, name="张阿姨")

    assert await send(app, clock, "+1", sender=WU, name="吴叔") != "praise:plus-one"
    assert await points_of(app, LI) == 0


async def test_confirm_by_staff_ignores_plus_one(make_app, clock):
    app = await make_app(confirm_by="staff")
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )

    assert await send(app, clock, "+1", sender=WU, name="吴叔") != "praise:plus-one"
    assert await points_of(app, LI) == 0


async def test_confirm_by_plus_one_refuses_staff_command(make_app, clock):
    app = await make_app(confirm_by="plus_one")
    await send(
        app, clock, "表扬@李姐 天天扫雪", mentions=(LI,), mention_names=("李姐",)
    )
    (praise,) = await praise_rows(app)

    await send(app, clock, f"/确认 {praise.id}", sender=GM_1, name="赵网格员")
    assert await points_of(app, LI) == 0
    await send(app, clock, "+1", sender=WU, name="吴叔")
    assert await points_of(app, LI) == app.config.points.praise_resident
