"""同问 +1: is a new report the same matter as an open petition of the same grid?

Same category, within ``deadlines.duplicate_window_hours``, sharing a key term that
is not a generic problem word, and not in another building (3号楼 and 3号楼2单元
overlap; 1号楼 and 11号楼 do not). An urgent report never hides behind a calm one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from handlers.petitions import OPEN_STATES
from models.tables import Petition

# Problem words too common to say that two reports are about the same thing.
GENERIC_WORDS = frozenset({
    "坏了", "坏", "不亮", "堵了", "不行", "没人管", "好几天了", "天天", "一直", "问题",
    "麻烦", "怎么办", "太", "严重", "不能用", "报修", "投诉", "反映", "诉求",
})  # fmt: skip


def _locations_overlap(a: str, b: str) -> bool:
    # "3号楼" and "3号楼2单元" overlap; "1号楼" and "11号楼" do not.
    return bool(a and b) and (a.startswith(b) or b.startswith(a))


def similar(petition: Petition, keywords: list[str], location: str | None) -> bool:
    """Whether a new report of the same category is about the same matter."""
    location = location or ""
    if (
        location
        and petition.location
        and not _locations_overlap(location, petition.location)
    ):
        return False  # a different building is a different matter
    mine = {k for k in keywords if k not in GENERIC_WORDS}
    theirs = {k for k in (petition.keywords or []) if k not in GENERIC_WORDS}
    if mine & theirs:
        return True
    return not mine and not theirs and _locations_overlap(location, petition.location)


async def find_similar(
    session: AsyncSession,
    config: Config,
    *,
    grid_id: str | None,
    category: str,
    keywords: list[str],
    location: str | None,
    urgent: bool,
    now: datetime,
) -> Petition | None:
    """An open petition of the same grid and category within the window, if one matches."""
    if grid_id is None:
        return None
    since = now - timedelta(hours=config.deadlines.duplicate_window_hours)
    query = (
        select(Petition)
        .where(
            Petition.grid_id == grid_id,
            Petition.category == category,
            Petition.status.in_(OPEN_STATES),
            Petition.created_at >= since,
        )
        .order_by(Petition.id.desc())
        .limit(50)
    )
    for petition in await session.scalars(query):
        if urgent and not petition.urgent:
            continue  # an urgent report never hides behind a calm one
        if similar(petition, keywords, location):
            return petition
    return None
