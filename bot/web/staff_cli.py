"""``weizhili staff``: set a dashboard password, list the staff, from the command line.

Works before the bot ever ran: the database is migrated and the config's staff
seeded first. A new password ends the member's dashboard sessions
(:func:`bot.web.auth.end_sessions`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from sqlalchemy import select

from bot.config import Config
from bot.web.auth import end_sessions, hash_password
from models.tables import AuditEntry, StaffRole

# --- weizhili staff … ----------------------------------------------------------------


def main_staff(argv: list[str]) -> int:
    """``weizhili staff passwd ID`` sets a dashboard password; ``staff list`` shows staff."""
    parser = argparse.ArgumentParser(prog="weizhili staff", description="管理后台账号")
    sub = parser.add_subparsers(dest="action", required=True)
    passwd = sub.add_parser("passwd", help="set a staff member's dashboard password")
    passwd.add_argument("member_id", help="the staff member's WeChat id")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input")
    sub.add_parser("list", help="list staff and whether they have a password")
    args = parser.parse_args(argv)

    from bot.config import load_config

    config = load_config(os.environ.get("WEIZHILI_CONFIG") or None)
    if args.action == "list":
        return asyncio.run(list_staff(config))
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("新密码 / new password: ")
        if password != getpass.getpass("再输一次 / again: "):
            print("两次输入不一致 / passwords differ", file=sys.stderr)
            return 2
    if len(password) < 8:
        print("密码至少 8 位 / at least 8 characters", file=sys.stderr)
        return 2
    return asyncio.run(set_password(config, args.member_id, password))


async def set_password(config: Config, member_id: str, password: str) -> int:
    from bot.app import seed_from_config
    from bot.clock import SystemClock
    from models.db import Database, upgrade

    await upgrade(config.db_url)
    db = Database(config.db_url)
    try:
        await seed_from_config(db, config)  # the config's staff, before the bot first ran
        async with db.session() as session:
            role = await session.get(StaffRole, member_id)
            if role is None:
                print(f"{member_id}: 不是工作人员 / not a staff member", file=sys.stderr)
                return 1
            role.password_hash = hash_password(password)
            session.add(AuditEntry(at=SystemClock().now(), actor_id="cli",
                                   action="web:password", target=member_id))
            await end_sessions(session, member_id, actor="cli", why="password",
                               at=SystemClock().now())
    finally:
        await db.close()
    print(f"{member_id}: 密码已设置 / password set")
    return 0


async def list_staff(config: Config) -> int:
    from models.db import Database, upgrade

    await upgrade(config.db_url)
    db = Database(config.db_url)
    try:
        async with db.session() as session:
            rows = list(await session.scalars(select(StaffRole).order_by(StaffRole.member_id)))
    finally:
        await db.close()
    for row in rows:
        print(f"{row.member_id}\t{row.name}\t{row.role}\t{','.join(row.grids or []) or '*'}"
              f"\t{'active' if row.active else 'inactive'}"
              f"\t{'password' if row.password_hash else '-'}")
    return 0
