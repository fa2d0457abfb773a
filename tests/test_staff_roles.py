"""Staff roles at start-up: the config file wins for whom it lists; dashboard roles stay."""

from __future__ import annotations

from dataclasses import replace

from bot.app import seed_from_config
from models.db import Database, upgrade
from models.tables import StaffRole


async def test_dashboard_role_survives_and_removed_config_staff_lose_rights(config):
    await upgrade(config.db_url)
    db = Database(config.db_url)
    try:
        await seed_from_config(db, config)
        async with db.session() as session:
            session.add(StaffRole(member_id="wxid_volunteer_lead", name="志愿队长", role="网格员",
                                  grids=["grid-01"], origin="dashboard"))

        fewer = replace(config, staff=tuple(s for s in config.staff if s.id != "wxid_wy_wang"))
        await seed_from_config(db, fewer)  # a restart with 王经理 removed from the file

        async with db.session() as session:
            lead = await session.get(StaffRole, "wxid_volunteer_lead")
            removed = await session.get(StaffRole, "wxid_wy_wang")
            kept = await session.get(StaffRole, "wxid_gm_zhao")
        assert lead.active and lead.role == "网格员"
        assert removed.active is False
        assert removed.sessions_from > 0  # its dashboard sessions end with the role
        assert kept.active and kept.origin == "config" and kept.sessions_from == 0
    finally:
        await db.close()
