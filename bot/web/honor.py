"""The honor roll as the dashboard shows it, built by ``handlers.honor_roll``.

Without that module (or its card painter) the page still lists the week's points
from the ledger, with opted-out residents unnamed, and has no picture.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.context import Services
from bot.web import ops_people
from bot.web.auth import User

log = logging.getLogger(__name__)


@dataclass
class WeeklyRoll:
    monday: date
    grid_id: str | None
    entries: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""
    picture_available: bool = False


def _modules() -> tuple[Any, Any]:
    try:
        from handlers import honor_roll
    except ImportError:
        return None, None
    try:
        from handlers import honor_card
    except ImportError:
        honor_card = None
    return honor_roll, honor_card


async def _build(services: Services, module: Any, monday: date, grid_id: str | None) -> Any:
    config = services.config
    period = module.week_of(datetime.combine(monday, time(12, 0), config.tz), config.tz)
    grid = config.grid(grid_id) if grid_id else None
    async with services.db.session() as session:
        return await module.build_roll(session, config, period, grid)


async def weekly_roll(services: Services, user: User, monday: date,
                      grid_id: str | None) -> WeeklyRoll:
    """The week's roll for one grid (or the community): names, points, reasons, text."""
    module, card = _modules()
    if module is None:
        entries = await ops_people.weekly_points(services, user, monday, top=20)
        if grid_id:
            entries = [e for e in entries if e.get("grid_id") == grid_id]
        return WeeklyRoll(monday, grid_id, entries[:10])
    roll = await _build(services, module, monday, grid_id)
    entries = [{"rank": e.rank, "member_id": e.member_id, "name": e.name,
                "points": e.points, "grid_id": grid_id, "reasons": e.reason_text()}
               for e in roll.entries]
    has_font = card is not None and card.find_font(services.config.data_dir) is not None
    return WeeklyRoll(monday, grid_id, entries, module.format_roll(roll),
                      has_font and not roll.empty)


async def weekly_picture(services: Services, user: User, monday: date,
                         grid_id: str | None) -> bytes | None:
    """The PNG card of the week's roll, or None when it cannot be drawn."""
    module, card = _modules()
    if module is None or card is None:
        return None
    roll = await _build(services, module, monday, grid_id)
    loop = asyncio.get_running_loop()

    def draw() -> bytes | None:
        with tempfile.TemporaryDirectory(prefix="weizhili-roll-") as folder:
            path = Path(folder) / "roll.png"
            drawn = card.render_card(roll, path, data_dir=services.config.data_dir)
            return path.read_bytes() if drawn is not None else None

    return await loop.run_in_executor(None, draw)
