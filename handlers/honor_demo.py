"""A plausible week of praise and points, so ``honor-roll --preview --seed-demo`` shows
something on a fresh database. Every name and deed here is made up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.config import Config
from handlers.honor_roll import Period
from handlers.points import add_entry
from models.db import Database
from models.tables import Member, Petition, PointEntry, Praise

log = logging.getLogger(__name__)

# (id, name, opted_out) per grid: the demo's residents.
RESIDENTS = (
    ("wxid_demo_zhang", "张阿姨", False),
    ("wxid_demo_li", "李姐", False),
    ("wxid_demo_liu", "小刘", False),
    ("wxid_demo_chen", "陈大爷", True),
    ("wxid_demo_zhou", "周老师", False),
    ("wxid_demo_wu", "吴叔", False),
)
# (day of week 0-6, hour, giver index, target index, reason)
PRAISE = (
    (0, 9, 1, 0, "帮我拿快递"),
    (1, 18, 2, 0, "天天扫楼道"),
    (2, 10, 0, 1, "冒雪清理单元门口的积雪"),
    (3, 16, 4, 2, "陪我去医院复查"),
    (4, 11, 5, 3, "修好了楼下的长椅"),
    (5, 15, 1, 4, "给孩子们义务辅导功课"),
)
# (day, resident index, hours, what)
VOLUNTEER = (
    (1, 0, 2.0, "陪独居老人就医"),
    (3, 3, 3.0, "社区垃圾分类值守"),
    (5, 2, 1.5, "帮老人安装手机挂号软件"),
)


async def seed_demo(db: Database, config: Config, period: Period) -> bool:
    """Fill an empty database with a week of activity in ``period``; False if not empty."""
    async with db.session() as session:
        used = await session.scalar(select(func.count()).select_from(PointEntry))
        if used:
            return False
        members = await session.scalar(select(func.count()).select_from(Member))
        if members:
            return False

        for grid in config.grids:
            ids = [f"{rid}_{grid.id}" for rid, _, _ in RESIDENTS]
            for (_, name, opted_out), member_id in zip(RESIDENTS, ids, strict=True):
                session.add(
                    Member(
                        id=member_id,
                        name=name,
                        grid_id=grid.id,
                        opted_out=opted_out,
                        first_seen=period.start,
                        last_seen=period.start,
                    )
                )
            for day, hour, giver, target, reason in PRAISE:
                at = _at(period, day, hour)
                praise = Praise(
                    grid_id=grid.id,
                    room_id=grid.room_id,
                    giver_id=ids[giver],
                    target_id=ids[target],
                    target_name=RESIDENTS[target][1],
                    reason=reason,
                    status="confirmed",
                    created_at=at,
                    confirmed_by="demo",
                    confirmed_at=at,
                )
                session.add(praise)
                await session.flush()
                add_entry(
                    session,
                    member_id=ids[target],
                    grid_id=grid.id,
                    delta=config.points.praise_resident,
                    kind="praise",
                    note=reason,
                    by="demo",
                    now=at,
                    ref=f"praise:{praise.id}",
                )
            for day, who, hours, what in VOLUNTEER:
                add_entry(
                    session,
                    member_id=ids[who],
                    grid_id=grid.id,
                    delta=round(hours * config.points.volunteer_per_hour),
                    kind="volunteer",
                    note=f"志愿服务{hours:g}小时：{what}",
                    by="demo",
                    now=_at(period, day, 17),
                )
            staff = next((s for s in config.staff if s.role == "物业"), None)
            if staff is not None:
                for day in (2, 4):
                    at = _at(period, day, 20)
                    session.add(
                        Praise(
                            grid_id=grid.id,
                            room_id=grid.room_id,
                            giver_id=ids[day],
                            target_id=staff.id,
                            target_name=staff.name,
                            target_is_staff=True,
                            reason="修水管很及时",
                            status="confirmed",
                            created_at=at,
                            confirmed_by="auto",
                            confirmed_at=at,
                        )
                    )
            for day in range(4):
                created = _at(period, day, 9)
                session.add(
                    Petition(
                        grid_id=grid.id,
                        room_id=grid.room_id,
                        reporter_id=ids[day],
                        text="楼道灯不亮了",
                        category="维修",
                        party="物业",
                        status="resolved",
                        created_at=created,
                        updated_at=created,
                        response_due=created,
                        resolve_due=created,
                        accepted_at=created,
                        resolved_at=created + timedelta(hours=5 if day < 3 else 30),
                    )
                )
    log.info("demo data seeded period=%s grids=%d", period.label, len(config.grids))
    return True


def _at(period: Period, day: int, hour: int) -> datetime:
    return period.start + timedelta(days=day, hours=hour)
