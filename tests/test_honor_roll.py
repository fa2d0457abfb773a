"""The honor roll: content of a fixed week, the picture, and posting exactly once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.app import App
from bot.config import Config
from handlers import honor_card
from handlers.honor_roll import (
    build_roll,
    build_rolls,
    format_roll,
    main_preview,
    month_period,
    previous_week,
    week_period,
)
from handlers.points import add_entry
from models.tables import JobRun, Member, OutboundMessage, Petition, Praise, StaffRole
from schedules.honor_roll import catch_up, last_weekly_due, run_monthly, run_weekly
from tests.conftest import GM_1, PROPERTY, TZ, local
from tests.fakes import RecordingChannel

ZHANG, LI, WU, LIU = "wxid_zhang", "wxid_li", "wxid_wu", "wxid_liu"
W49 = week_period(2026, 49, TZ)  # Monday 30 November – Sunday 6 December 2026


async def seed_week(app: App) -> None:
    """A fixed week in grid-01, with traps: reversals, other weeks, staff, time zones."""
    async with app.services.db.session() as session:
        for member_id, name, grid, opted_out in [
            (ZHANG, "张阿姨", "grid-01", False),
            (LI, "李姐", "grid-01", True),
            (WU, "吴叔", "grid-01", False),
            (LIU, "小刘", "grid-02", False),
        ]:
            session.add(
                Member(
                    id=member_id,
                    name=name,
                    grid_id=grid,
                    opted_out=opted_out,
                    first_seen=W49.start,
                    last_seen=W49.start,
                )
            )

        def entry(
            member_id: str, delta: int, kind: str, note: str, when, grid="grid-01"
        ):  # type: ignore[no-untyped-def]
            return add_entry(
                session,
                member_id=member_id,
                grid_id=grid,
                delta=delta,
                kind=kind,
                note=note,
                by="test",
                now=when,
            )

        entry(ZHANG, 2, "praise", "帮我拿快递", local(2026, 12, 1, 10, 0))
        entry(
            ZHANG,
            10,
            "volunteer",
            "志愿服务2小时：陪老人就医",
            local(2026, 12, 2, 17, 0),
        )
        entry(ZHANG, 50, "award", "下周的事", local(2026, 12, 7, 0, 30))  # next week
        entry(ZHANG, 40, "award", "上周的事", local(2026, 11, 29, 23, 30))  # last week
        entry(LI, 5, "award", "组织大扫除", local(2026, 12, 3, 9, 0))
        wrong = entry(WU, 8, "award", "记错了", local(2026, 12, 3, 9, 0))
        entry(WU, 1, "award", "帮忙搬桌子", local(2026, 12, 4, 9, 0))
        entry(LIU, 30, "award", "别的网格", local(2026, 12, 4, 9, 0), grid="grid-02")
        entry(PROPERTY, 2, "praise", "修水管很及时", local(2026, 12, 2, 20, 0))
        await session.flush()
        twin = entry(WU, -8, "reversal", "撤销", local(2026, 12, 8, 9, 0))
        twin.reverses = wrong.id

        for day in (2, 3):
            at = local(2026, 12, day, 20, 0)
            session.add(
                Praise(
                    grid_id="grid-01",
                    giver_id=ZHANG,
                    target_id=PROPERTY,
                    target_name="王师傅",
                    target_is_staff=True,
                    reason="修水管很及时",
                    status="confirmed",
                    created_at=at,
                    confirmed_at=at,
                )
            )
        session.add(
            Praise(
                grid_id="grid-01",
                giver_id=WU,
                target_id=ZHANG,
                target_name="张阿姨",
                reason="x",
                status="pending",
                created_at=local(2026, 12, 3, 8, 0),
            )
        )
        # same local day; same local day across UTC midnight; not the same local day
        for created, resolved in [
            (local(2026, 12, 1, 10, 0), local(2026, 12, 1, 16, 0)),
            (local(2026, 11, 30, 7, 0), local(2026, 11, 30, 9, 0)),
            (local(2026, 12, 1, 23, 0), local(2026, 12, 2, 1, 0)),
        ]:
            session.add(
                Petition(
                    grid_id="grid-01",
                    reporter_id=WU,
                    text="灯坏了",
                    status="resolved",
                    created_at=created,
                    updated_at=resolved,
                    response_due=resolved,
                    resolve_due=resolved,
                    resolved_at=resolved,
                )
            )


# --- content ------------------------------------------------------------------------------


async def test_roll_of_a_fixed_week(app):
    await seed_week(app)
    config = app.config

    async with app.services.db.session() as session:
        roll = await build_roll(session, config, W49, config.grid("grid-01"))

    assert [(e.rank, e.name, e.points) for e in roll.entries] == [
        (1, "张阿姨", 12),
        (2, "一位热心居民", 5),
        (3, "吴叔", 1),
    ]
    assert roll.entries[0].reasons == [
        "获邻居表扬1次（帮邻居拿快递）",
        "志愿服务2小时：陪老人就医",
    ]
    assert [(s.name, s.times) for s in roll.staff] == [("王经理", 2)]
    assert roll.same_day_resolved == 2
    assert roll.praise_count == 2

    text = format_roll(roll)
    assert text.startswith("【光荣榜】幸福小区1网格 · 2026年第49周（11月30日—12月6日）")
    assert (
        "1. 张阿姨（12分）：获邻居表扬1次（帮邻居拿快递）；志愿服务2小时：陪老人就医"
        in text
    )
    assert "李姐" not in text
    assert "王经理（2次，修水管很及时）" in text
    assert "2件诉求当天办结" in text


async def test_community_roll_spans_grids_and_top_n_applies(app):
    await seed_week(app)
    config = replace(
        app.config, schedules=replace(app.config.schedules, honor_roll_top=2)
    )

    async with app.services.db.session() as session:
        roll = await build_roll(session, config, W49, None)

    assert [(e.name, e.points) for e in roll.entries] == [("小刘", 30), ("张阿姨", 12)]
    assert roll.same_day_resolved == 2


async def test_empty_week_is_empty(app):
    async with app.services.db.session() as session:
        roll = await build_roll(session, app.config, W49, app.config.grid("grid-01"))

    assert roll.empty and "还没有人上榜" in format_roll(roll)


def test_weeks_and_due_times_ignore_the_machine_zone(monkeypatch, config):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert last_weekly_due(local(2026, 12, 4, 15, 0), config) == local(
            2026, 11, 30, 9, 0
        )
        assert last_weekly_due(local(2026, 12, 7, 8, 59), config) == local(
            2026, 11, 30, 9, 0
        )
        assert last_weekly_due(local(2026, 12, 7, 9, 0), config) == local(
            2026, 12, 7, 9, 0
        )
        assert previous_week(local(2026, 12, 7, 9, 0), TZ).label == "2026-W49"
        assert W49.start == local(2026, 11, 30) and W49.end == local(2026, 12, 7)
        tuesday = replace(
            config, schedules=replace(config.schedules, honor_roll_day="tue")
        )
        assert last_weekly_due(local(2026, 12, 7, 12, 0), tuesday) == local(
            2026, 12, 1, 9, 0
        )
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# --- the picture ------------------------------------------------------------------------


async def test_card_size_and_names_drawn(app, tmp_path):
    if honor_card.find_font() is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei)")
    await seed_week(app)
    async with app.services.db.session() as session:
        roll = await build_roll(session, app.config, W49, app.config.grid("grid-01"))

    card = honor_card.render_card(roll, tmp_path / "card.png")

    assert card is not None
    image = Image.open(card.path).convert("L")
    assert image.size == card.size and image.size[0] == 1080
    assert 1000 < image.size[1] < 2400
    assert len(card.name_boxes) == 3
    for box in card.name_boxes:
        region = image.crop(box)
        dark = sum(region.histogram()[:128])
        assert dark > 0.05 * region.size[0] * region.size[1]
    # beside a short name, before the points, the row stays blank paper
    _, y0, x1, y1 = card.name_boxes[-1]
    blank = image.crop((x1 + 40, y0, x1 + 340, y1))
    assert sum(blank.histogram()[:200]) == 0


def test_no_cjk_font_means_no_picture_and_one_warning(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(honor_card, "find_font", lambda data_dir=None: None)
    monkeypatch.setattr(honor_card, "_warned", False)
    roll = _tiny_roll()

    with caplog.at_level(logging.WARNING, logger="handlers.honor_card"):
        assert honor_card.render_card(roll, tmp_path / "a.png") is None
        assert honor_card.render_card(roll, tmp_path / "b.png") is None

    assert len([r for r in caplog.records if "CJK" in r.getMessage()]) == 1
    assert not (tmp_path / "a.png").exists()


def _tiny_roll():  # type: ignore[no-untyped-def]
    from handlers.honor_roll import Roll, RollEntry

    return Roll(
        "幸福社区",
        "grid-01",
        "幸福小区1网格",
        W49,
        [RollEntry(1, ZHANG, "张阿姨", 12, ["帮邻居拿快递"])],
        [],
        0,
        1,
    )


# --- posting exactly once -------------------------------------------------------------------


@pytest.fixture
async def start_app(
    config: Config, clock
) -> AsyncIterator[Callable[..., Awaitable[App]]]:  # type: ignore[no-untyped-def]
    """Start app instances on the same database file; stop them after the test."""
    apps: list[App] = []

    async def start(changed: Config | None = None) -> App:
        bot = App(
            changed or config,
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


async def honor_rows(app: App, key: str) -> list[OutboundMessage]:
    async with app.services.db.session() as session:
        return list(
            await session.scalars(
                select(OutboundMessage)
                .where(OutboundMessage.source == f"honor:{key}")
                .order_by(OutboundMessage.id)
            )
        )


async def test_roll_missed_during_downtime_is_posted_once_late(start_app, clock):
    first = await start_app()
    await seed_week(first)
    await catch_up(
        first.services
    )  # Friday: last week's roll (empty) is settled quietly
    await first.stop()

    clock.set(local(2026, 12, 7, 9, 30))  # down across Monday 09:00
    second, third = await start_app(), await start_app()  # two instances, one database
    results = await asyncio.gather(catch_up(second.services), catch_up(third.services))

    key = "honor:grid-01:2026-W49"
    assert sorted(r[key] for r in results) == ["lost", "posted"] or sorted(
        r[key] for r in results
    ) == ["done", "posted"]
    rows = await honor_rows(second, key)
    assert rows[0].room_id == "grid-01"
    assert rows[0].text.startswith("（补发）这份光荣榜原定12月7日（周一）09:00发出")
    assert "张阿姨（12分）" in rows[0].text
    if honor_card.find_font() is not None:
        assert len(rows) == 2 and rows[1].image_path.endswith(".png")
        assert os.path.exists(rows[1].image_path)
    else:
        assert len(rows) == 1

    await second.stop()
    await third.stop()
    fourth = await start_app()  # another restart, and the scheduler waking as well
    await catch_up(fourth.services)
    await run_weekly(fourth.services)
    assert len(await honor_rows(fourth, key)) == len(rows)
    async with fourth.services.db.session() as session:
        runs = await session.scalar(
            select(func.count()).select_from(JobRun).where(JobRun.key == key)
        )
    assert runs == 1


async def test_roll_on_time_has_no_late_note_and_skips_empty_grids(start_app, clock):
    app = await start_app()
    await seed_week(app)
    clock.set(local(2026, 12, 7, 9, 0))

    results = await run_weekly(app.services)

    assert results["honor:grid-01:2026-W49"] == "posted"
    assert results["honor:grid-03:2026-W49"] == "empty"
    (text, *_) = await honor_rows(app, "honor:grid-01:2026-W49")
    assert text.text.startswith("【光荣榜】")
    assert await honor_rows(app, "honor:grid-03:2026-W49") == []


async def test_community_and_monthly_rolls(start_app, config, clock):
    community = replace(
        config, community=replace(config.community, community_room="community-room")
    )
    app = await start_app(community)
    await seed_week(app)
    clock.set(local(2026, 12, 1, 9, 0))  # the 1st: November's roll; Nov 30 is in it

    results = await run_monthly(app.services)

    assert results["honor-month:community:2026-11"] == "posted"
    (text, *_) = await honor_rows(app, "honor-month:community:2026-11")
    assert text.room_id == "community-room"
    assert text.text.startswith("【月度光荣榜】全社区 · 2026年11月")
    november = month_period(2026, 11, TZ)
    assert november.end == local(2026, 12, 1)


async def test_staff_are_thanked_not_ranked(app):
    await seed_week(app)
    async with app.services.db.session() as session:
        assert await session.get(StaffRole, PROPERTY) is not None
        roll = await build_roll(session, app.config, W49, app.config.grid("grid-01"))
    assert PROPERTY not in [e.member_id for e in roll.entries]


# --- the preview command -----------------------------------------------------------------


def test_preview_with_demo_data_prints_and_draws(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("WEIZHILI_CONFIG", raising=False)
    monkeypatch.setenv("WEIZHILI_DATA", str(tmp_path / "data"))
    png = tmp_path / "roll.png"
    db = f"sqlite+aiosqlite:///{tmp_path}/demo.db"

    code = main_preview(
        [
            "--preview",
            "--seed-demo",
            "--db",
            db,
            "--grid",
            "grid-01",
            "--week",
            "2026-W49",
            "--png",
            str(png),
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "【光荣榜】幸福小区1网格 · 2026年第49周" in out
    assert "一位热心居民" in out and "王经理" in out
    if honor_card.find_font() is not None:
        assert Image.open(png).size[0] == 1080
    assert main_preview(["--preview", "--seed-demo", "--db", db]) == 2  # not a fresh db


# --- every grid at once ---------------------------------------------------------------------


async def seed_city(app: App, grids: list[str]) -> list[tuple[str, str, int, bool]]:
    """Random but fixed points in many grids; returns (grid, member, delta, counts)."""
    import random

    rng = random.Random(20261130)
    members = [(f"wxid_c{i:03d}", rng.choice(grids)) for i in range(60)]
    ledger: list[tuple[str, str, int, bool]] = []
    async with app.services.db.session() as session:
        for index, (member_id, grid) in enumerate(members):
            session.add(
                Member(
                    id=member_id,
                    name="" if index % 11 == 0 else f"居民{index}",
                    grid_id=grid,
                    opted_out=index % 7 == 0,
                    first_seen=W49.start,
                    last_seen=W49.start,
                )
            )
        wrong = []
        for n in range(400):
            member_id, home = rng.choice(members)
            # mostly the home grid, some left to the member's grid, some elsewhere
            grid = rng.choice([home, home, None, rng.choice(grids)])
            delta = rng.choice([1, 1, 2, 2, 3, 5, -1])
            kind = rng.choice(["praise", "volunteer", "award"])
            when = W49.start + (W49.end - W49.start) * rng.random()
            entry = add_entry(
                session,
                member_id=member_id,
                grid_id=grid,
                delta=delta,
                kind=kind,
                note=rng.choice(["帮我拿快递", "扫雪", "陪老人就医", "修车棚", ""]),
                by="test",
                now=when,
            )
            reversed_later = n % 37 == 0
            if reversed_later:
                wrong.append(entry)
            ledger.append((grid or home, member_id, delta, not reversed_later))
        for n in range(20):  # staff earn points too, and are never ranked
            add_entry(
                session,
                member_id=PROPERTY,
                grid_id=grids[n % len(grids)],
                delta=3,
                kind="praise",
                note="修水管",
                by="test",
                now=W49.start + timedelta(hours=n + 1),
            )
        await session.flush()
        for entry in wrong:
            twin = add_entry(
                session,
                member_id=entry.member_id,
                grid_id=entry.grid_id,
                delta=-entry.delta,
                kind="reversal",
                note="撤销",
                by="test",
                now=W49.end - timedelta(hours=1),
            )
            twin.reverses = entry.id
        for n in range(30):
            at = W49.start + timedelta(hours=5 * n + 3)
            session.add(
                Praise(
                    grid_id=grids[n % len(grids)],
                    giver_id=members[n][0],
                    target_id=PROPERTY if n % 3 else GM_1,
                    target_name="王师傅",
                    target_is_staff=True,
                    reason=f"谢谢第{n}次",
                    status="confirmed" if n % 4 else "pending",
                    created_at=at,
                    confirmed_at=at,
                )
            )
            created = W49.start + timedelta(hours=7 * n + 1)
            resolved = created + timedelta(hours=n % 20)
            session.add(
                Petition(
                    grid_id=grids[(n * 7) % len(grids)],
                    reporter_id=members[n][0],
                    text="灯坏了",
                    status="resolved",
                    created_at=created,
                    updated_at=resolved,
                    response_due=resolved,
                    resolve_due=resolved,
                    resolved_at=resolved,
                )
            )
    return ledger


def expected_ranking(
    ledger: list[tuple[str, str, int, bool]], grid: str, top: int
) -> list[tuple[str, int]]:
    """The roll's ranking computed in Python: points, then entries, then member id."""
    points: dict[str, int] = {}
    counts: dict[str, int] = {}
    for entry_grid, member_id, delta, counts_still in ledger:
        if entry_grid == grid and counts_still:
            points[member_id] = points.get(member_id, 0) + delta
            counts[member_id] = counts.get(member_id, 0) + 1
    ranked = sorted(
        (m for m in points if points[m] > 0), key=lambda m: (-points[m], -counts[m], m)
    )
    return [(m, points[m]) for m in ranked[:top]]


async def test_all_grids_at_once_equal_each_grid_alone(app):
    config = app.config
    base = config.grids[0]
    many = [
        *config.grids,
        *(
            replace(base, id=f"grid-{i:02d}", name=f"{i}号网格", room_id=f"room-{i}")
            for i in range(4, 9)
        ),
    ]
    config = replace(
        config,
        grids=tuple(many),
        schedules=replace(config.schedules, honor_roll_top=3),
    )
    ids = [grid.id for grid in many]
    ledger = await seed_city(app, ids)

    async with app.services.db.session() as session:
        together = await build_rolls(session, config, W49)
        alone = {g.id: await build_roll(session, config, W49, g) for g in many}

    assert list(together) == ids
    for grid in many:
        assert together[grid.id] == alone[grid.id], grid.id
        ranking = [(e.member_id, e.points) for e in together[grid.id].entries]
        assert ranking == expected_ranking(ledger, grid.id, 3), grid.id
    rolls = list(together.values())
    assert sum(len(r.entries) for r in rolls) >= 3 * len(many) - 2
    assert any(e.name == "一位热心居民" for r in rolls for e in r.entries)
    assert all(e.member_id != PROPERTY for r in rolls for e in r.entries)
    assert sum(r.same_day_resolved for r in rolls) > 0
    assert sum(len(r.staff) for r in rolls) > 0
    assert any(len(r.staff) == 2 for r in rolls)


async def test_all_grids_cost_as_many_queries_as_one(app):
    from sqlalchemy import event

    config = app.config
    await seed_city(app, [grid.id for grid in config.grids])
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = app.services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with app.services.db.session() as session:
            await build_rolls(session, config, W49, config.grids[:1])
            one = len(statements)
            statements.clear()
            rolls = await build_rolls(session, config, W49)
            every = len(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)

    assert len(rolls) == len(config.grids) > 1
    assert all(roll.entries for roll in rolls.values())
    assert every == one <= 8


async def test_weekly_posting_builds_every_grid_together(start_app, clock, monkeypatch):
    import schedules.honor_roll as posting

    app = await start_app()
    await seed_week(app)
    clock.set(local(2026, 12, 7, 9, 0))
    calls: list[list[str]] = []
    together = posting.build_rolls

    async def spy(session, config, period, grids=None):  # type: ignore[no-untyped-def]
        calls.append([grid.id for grid in grids])
        return await together(session, config, period, grids)

    async def alone(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a grid's roll was built on its own")

    monkeypatch.setattr(posting, "build_rolls", spy)
    monkeypatch.setattr(posting, "build_roll", alone)

    results = await run_weekly(app.services)

    assert calls == [[grid.id for grid in app.config.grids]]
    assert results["honor:grid-01:2026-W49"] == "posted"
    assert "张阿姨（12分）" in (await honor_rows(app, "honor:grid-01:2026-W49"))[0].text


async def test_weekly_posting_falls_back_to_one_grid_at_a_time(
    start_app, clock, monkeypatch
):
    import schedules.honor_roll as posting

    app = await start_app()
    await seed_week(app)
    clock.set(local(2026, 12, 7, 9, 0))

    async def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("simulated failure of the grouped queries")

    monkeypatch.setattr(posting, "build_rolls", broken)

    results = await run_weekly(app.services)

    assert results["honor:grid-01:2026-W49"] == "posted"
    assert results["honor:grid-03:2026-W49"] == "empty"
    assert "张阿姨（12分）" in (await honor_rows(app, "honor:grid-01:2026-W49"))[0].text
