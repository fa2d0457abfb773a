"""Reading a config file: TOML tables into the dataclasses of :mod:`bot.config`.

Every problem is collected, not only the first, and each names its key and why
(``weizhili check-config PATH`` prints them all). Bounds on numbers and the checks
across keys are in :mod:`bot.config_checks`.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import (
    DEFAULT_CATEGORIES,
    DEMO_GRIDS,
    DEMO_STAFF,
    PARTIES,
    ROLES,
    WEEKDAYS,
    CategoryConfig,
    CommunityConfig,
    Config,
    ConfigError,
    DeadlineConfig,
    FollowupConfig,
    GridConfig,
    IntakeConfig,
    OutboxConfig,
    PointsConfig,
    ReminderConfig,
    ScheduleConfig,
    StaffConfig,
    WebConfig,
    WechatyConfig,
    WelcomeConfig,
)
from bot.config_checks import (
    check_lexicon,
    check_people_and_rooms,
    check_secret,
    check_welcome,
    out_of_bounds,
    read_delays,
)

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Reader:
    """Reads one TOML table, collecting every problem instead of stopping at the first."""

    def __init__(self, table: dict[str, Any], prefix: str, problems: list[str]) -> None:
        self.table = table
        self.prefix = prefix
        self.problems = problems
        self.seen: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def get(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        self.seen.add(key)
        if key not in self.table:
            return default
        value = self.table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool:
            self.problems.append(f"{self._key(key)}: expected {_kind_name(kind)}, got a boolean")
            return default
        if not isinstance(value, kind):
            self.problems.append(
                f"{self._key(key)}: expected {_kind_name(kind)}, got {type(value).__name__}"
            )
            return default
        return value

    def number(self, key: str, default: Any) -> Any:
        """A whole number (a float ``default``: any number) within its LIMITS."""
        whole = not isinstance(default, float)
        value = self.get(key, int if whole else float, default)
        problem = out_of_bounds(self._key(key), value, whole)
        if problem:
            self.problems.append(problem)
            return default
        return value

    def clock(self, key: str, default: time) -> time:
        raw = self.get(key, str, None)
        if raw is None:
            return default
        match = _TIME.match(raw.strip())
        if not match:
            self.problems.append(f"{self._key(key)}: expected a time like \"21:30\", got {raw!r}")
            return default
        return time(int(match.group(1)), int(match.group(2)))

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.problems.append(f"{self._key(key)}: must be one of {', '.join(choices)}")
            return default
        return value

    def finish(self) -> None:
        for key in self.table:
            if key not in self.seen:
                self.problems.append(f"{self._key(key)}: unknown key")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
             list: "a list", dict: "a table"}
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _table(root: _Reader, key: str) -> _Reader:
    value = root.get(key, dict, {})
    return _Reader(value, f"{key}.", root.problems)


def parse_config(raw: dict[str, Any], source: str = "<config>") -> Config:
    """Turn a parsed TOML document into a :class:`Config`, or raise :class:`ConfigError`."""
    problems: list[str] = []
    root = _Reader(raw, "", problems)

    c = _table(root, "community")
    community = CommunityConfig(
        name=c.get("name", str, CommunityConfig.name),
        timezone=c.get("timezone", str, CommunityConfig.timezone),
        office_open=c.clock("office_open", CommunityConfig.office_open),
        office_close=c.clock("office_close", CommunityConfig.office_close),
        office_days=tuple(c.get("office_days", list, list(CommunityConfig.office_days))),
        bot_name=c.get("bot_name", str, CommunityConfig.bot_name),
        bot_id=c.get("bot_id", str, CommunityConfig.bot_id),
        staff_room=c.get("staff_room", str, CommunityConfig.staff_room),
        staff_room_topic=c.get("staff_room_topic", str, CommunityConfig.staff_room_topic),
        community_room=c.get("community_room", str, ""),
        lexicon_dir=c.get("lexicon_dir", str, ""),
    )
    c.finish()
    check_lexicon(community.lexicon_dir, problems)
    try:
        ZoneInfo(community.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"community.timezone: unknown time zone {community.timezone!r}")
    bad_days = [d for d in community.office_days if d not in WEEKDAYS]
    if bad_days:
        problems.append(f"community.office_days: unknown day(s) {bad_days}; use {', '.join(WEEKDAYS)}")
    if community.office_open >= community.office_close:
        problems.append("community.office_open: must be earlier than office_close")

    grids = _parse_grids(root.get("grids", list, None), problems)
    accounts = {grid.account for grid in grids if grid.account}
    if accounts and community.bot_id not in accounts and all(g.account for g in grids):
        problems.append(f"community.bot_id: {community.bot_id!r} is the account of no grid "
                        f"(grids name {', '.join(sorted(accounts))}); this process would "
                        "serve no group")
    staff = _parse_staff(root.get("staff", list, None), problems, {g.id for g in grids})
    categories = _parse_categories(root.get("categories", list, None), problems)
    check_people_and_rooms(community, grids or DEMO_GRIDS,
                           DEMO_STAFF if staff is None else staff, categories, problems)

    d = _table(root, "deadlines")
    deadlines = DeadlineConfig(
        response_minutes=d.number("response_minutes", 120),
        urgent_response_minutes=d.number("urgent_response_minutes", 30),
        same_day=d.clock("same_day", time(21, 0)),
        nudge_before_minutes=d.number("nudge_before_minutes", 30),
        escalate_after_minutes=d.number("escalate_after_minutes", 60),
        duplicate_window_hours=d.number("duplicate_window_hours", 72),
    )
    d.finish()

    f = _table(root, "followup")
    followup = FollowupConfig(
        ask_after_minutes=f.number("ask_after_minutes", 30),
        retry_after_hours=f.number("retry_after_hours", 24),
        close_after_hours=f.number("close_after_hours", 48),
    )
    f.finish()

    p = _table(root, "points")
    points = PointsConfig(
        praise_staff=p.number("praise_staff", 2),
        praise_resident=p.number("praise_resident", 2),
        volunteer_per_hour=p.number("volunteer_per_hour", 5),
        hazard_fixed=p.number("hazard_fixed", 3),
        suggestion_adopted=p.number("suggestion_adopted", 5),
        daily_cap_per_giver=p.number("daily_cap_per_giver", 5),
        confirm_by=p.choice("confirm_by", ("staff", "plus_one", "either"), "either"),
    )
    p.finish()

    s = _table(root, "schedules")
    schedules = ScheduleConfig(
        digest=s.clock("digest", time(21, 30)),
        morning=s.clock("morning", time(8, 30)),
        honor_roll_day=s.choice("honor_roll_day", WEEKDAYS, "mon"),
        honor_roll_time=s.clock("honor_roll_time", time(9, 0)),
        honor_roll_top=s.number("honor_roll_top", 5),
        monthly_roll_day=s.number("monthly_roll_day", 1),
        poll_seconds=s.number("poll_seconds", 30),
    )
    s.finish()

    r = _table(root, "reminders")
    dayparts = dict(ReminderConfig().dayparts)
    raw_parts = r.get("dayparts", dict, {})
    for name, value in raw_parts.items():
        sub = _Reader({name: value}, "reminders.dayparts.", problems)
        dayparts[name] = sub.clock(name, dayparts.get(name, time(9, 0)))
    reminders = ReminderConfig(
        grace_minutes=r.number("grace_minutes", 120),
        rollcall_minutes=r.number("rollcall_minutes", 120),
        quiet_start=r.clock("quiet_start", time(22, 0)),
        quiet_end=r.clock("quiet_end", time(7, 0)),
        dayparts=dayparts,
    )
    r.finish()

    o = _table(root, "outbox")
    outbox = OutboxConfig(
        room_interval_seconds=o.number("room_interval_seconds", 1.5),
        global_interval_seconds=o.number("global_interval_seconds", 0.5),
        max_chars=o.number("max_chars", 1200),
        max_attempts=o.number("max_attempts", 6),
        in_doubt=o.get("in_doubt", str, "hold"),
    )
    o.finish()
    if outbox.in_doubt not in ("hold", "resend"):
        problems.append(f"outbox.in_doubt: expected \"hold\" or \"resend\", got {outbox.in_doubt!r}")

    i = _table(root, "intake")
    intake = IntakeConfig(buffer_size=i.number("buffer_size", IntakeConfig.buffer_size))
    i.finish()

    w = _table(root, "wechaty")
    wechaty = WechatyConfig(
        endpoint=w.get("endpoint", str, ""),
        token=w.get("token", str, ""),
        call_timeout_seconds=w.number("call_timeout_seconds", 10.0),
        ding_interval_seconds=w.number("ding_interval_seconds", 30.0),
        dong_timeout_seconds=w.number("dong_timeout_seconds", 20.0),
        backoff_seconds=read_delays(
            w.get("backoff_seconds", list, list(WechatyConfig.backoff_seconds)), problems
        ),
        plugin_port=w.number("plugin_port", 0),
    )
    w.finish()

    web_t = _table(root, "web")
    web = WebConfig(
        host=web_t.get("host", str, "127.0.0.1"),
        port=web_t.number("port", 8080),
        secret=web_t.get("secret", str, ""),
    )
    web_t.finish()
    check_secret(web.secret, problems)

    wel = _table(root, "welcome")
    welcome = WelcomeConfig(
        enabled=wel.get("enabled", bool, True),
        text=wel.get("text", str, WelcomeConfig.text),
    )
    wel.finish()
    check_welcome(welcome.text, problems)

    db = _table(root, "database")
    database_url = db.get("url", str, "")
    journal_keep_days = db.number("journal_keep_days", 30)
    db.finish()
    if database_url and not database_url.startswith(
        ("sqlite+aiosqlite://", "postgresql+asyncpg://")
    ):
        problems.append(
            "database.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )

    data_dir = Path(root.get("data_dir", str, "weizhili-data"))
    stale_minutes = root.number("stale_minutes", 5)
    max_message_chars = root.number("max_message_chars", 2000)
    root.finish()

    if problems:
        raise ConfigError([f"{source}: {p}" for p in problems])
    return Config(
        community=community,
        grids=grids or DEMO_GRIDS,
        staff=staff if staff is not None else DEMO_STAFF,
        categories=categories or DEFAULT_CATEGORIES,
        deadlines=deadlines,
        followup=followup,
        points=points,
        schedules=schedules,
        reminders=reminders,
        outbox=outbox,
        intake=intake,
        wechaty=wechaty,
        web=web,
        welcome=welcome,
        data_dir=data_dir,
        database_url=database_url,
        stale_minutes=stale_minutes,
        max_message_chars=max_message_chars,
        journal_keep_days=journal_keep_days,
        source=source,
    )


def _parse_grids(raw: list[Any] | None, problems: list[str]) -> tuple[GridConfig, ...]:
    if raw is None:
        return ()
    grids = []
    for i, item in enumerate(raw):
        prefix = f"grids[{i}]."
        if not isinstance(item, dict):
            problems.append(f"grids[{i}]: expected a table")
            continue
        t = _Reader(item, prefix, problems)
        gid = t.get("id", str, "")
        grid = GridConfig(
            id=gid,
            name=t.get("name", str, gid),
            room_id=t.get("room_id", str, ""),
            room_topic=t.get("room_topic", str, ""),
            manager=t.get("manager", str, ""),
            account=t.get("account", str, ""),
        )
        t.finish()
        if not gid:
            problems.append(f"{prefix}id: required")
        if not grid.room_id and not grid.room_topic:
            problems.append(f"{prefix}room_id: give room_id or room_topic")
        if grid.account and not grid.room_id:
            problems.append(f"{prefix}room_id: a grid with an account needs its room_id")
        grids.append(grid)
    ids = [g.id for g in grids]
    for dup in {i for i in ids if ids.count(i) > 1}:
        problems.append(f"grids: id {dup!r} appears more than once")
    return tuple(grids)


def _parse_staff(
    raw: list[Any] | None, problems: list[str], grid_ids: set[str]
) -> tuple[StaffConfig, ...] | None:
    if raw is None:
        return None
    staff = []
    for i, item in enumerate(raw):
        prefix = f"staff[{i}]."
        if not isinstance(item, dict):
            problems.append(f"staff[{i}]: expected a table")
            continue
        t = _Reader(item, prefix, problems)
        member = StaffConfig(
            id=t.get("id", str, ""),
            name=t.get("name", str, ""),
            role=t.choice("role", ROLES, "网格员"),
            grids=tuple(t.get("grids", list, [])),
        )
        t.finish()
        if not member.id:
            problems.append(f"{prefix}id: required (the WeChat id, not a display name)")
        unknown = [g for g in member.grids if grid_ids and g not in grid_ids]
        if unknown:
            problems.append(f"{prefix}grids: unknown grid id(s) {unknown}")
        staff.append(member)
    return tuple(staff)


def _parse_categories(raw: list[Any] | None, problems: list[str]) -> tuple[CategoryConfig, ...]:
    if raw is None:
        return ()
    categories = []
    for i, item in enumerate(raw):
        prefix = f"categories[{i}]."
        if not isinstance(item, dict):
            problems.append(f"categories[{i}]: expected a table")
            continue
        t = _Reader(item, prefix, problems)
        per_grid = t.get("per_grid", dict, {})
        categories.append(
            CategoryConfig(
                name=t.get("name", str, ""),
                party=t.choice("party", PARTIES, "网格员"),
                assignee=t.get("assignee", str, ""),
                per_grid={str(k): str(v) for k, v in per_grid.items()},
            )
        )
        t.finish()
        if not categories[-1].name:
            problems.append(f"{prefix}name: required")
    if categories and not any(c.name == "其他" for c in categories):
        categories.append(CategoryConfig("其他", "网格员"))
    return tuple(categories)


