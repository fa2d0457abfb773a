"""Configuration: one TOML file parsed once into frozen dataclasses.

With no file the bot runs a built-in demo community (three grids, demo staff), so the
first command of the README works on a fresh machine. A bad file stops start-up with
a message that names every bad key and why (``weizhili check-config PATH``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROLES = ("网格员", "居委会", "物业", "管理员")
PARTIES = ("物业", "居委会", "网格员")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists ``key: reason`` lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class GridConfig:
    id: str
    name: str
    room_id: str = ""
    room_topic: str = ""
    manager: str = ""  # the grid manager's WeChat id


@dataclass(frozen=True)
class StaffConfig:
    id: str  # WeChat id: rights follow it, never the display name
    name: str
    role: str
    grids: tuple[str, ...] = ()  # empty: every grid


@dataclass(frozen=True)
class CategoryConfig:
    name: str
    party: str
    assignee: str = ""  # a WeChat id; empty: the grid's manager
    per_grid: dict[str, str] = field(default_factory=dict)  # grid id -> assignee id


@dataclass(frozen=True)
class CommunityConfig:
    name: str = "幸福社区"
    timezone: str = "Asia/Shanghai"
    office_open: time = time(8, 30)
    office_close: time = time(17, 30)
    office_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat")
    bot_name: str = "社区小助手"
    bot_id: str = "wxid_weizhili_bot"
    staff_room: str = "staff-room"
    staff_room_topic: str = "幸福社区工作群"
    community_room: str = ""  # where the community-wide honor roll goes

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class DeadlineConfig:
    response_minutes: int = 120
    urgent_response_minutes: int = 30
    same_day: time = time(21, 0)
    nudge_before_minutes: int = 30
    escalate_after_minutes: int = 60  # after the grid manager, the 居委会 is told this much later
    duplicate_window_hours: int = 72


@dataclass(frozen=True)
class FollowupConfig:
    ask_after_minutes: int = 30
    retry_after_hours: int = 24
    close_after_hours: int = 48


@dataclass(frozen=True)
class PointsConfig:
    praise_staff: int = 2
    praise_resident: int = 2
    volunteer_per_hour: int = 5
    hazard_fixed: int = 3
    suggestion_adopted: int = 5
    daily_cap_per_giver: int = 5
    confirm_by: str = "either"  # staff | plus_one | either


@dataclass(frozen=True)
class ScheduleConfig:
    digest: time = time(21, 30)
    morning: time = time(8, 30)
    honor_roll_day: str = "mon"
    honor_roll_time: time = time(9, 0)
    honor_roll_top: int = 5
    monthly_roll_day: int = 1
    poll_seconds: int = 30


@dataclass(frozen=True)
class ReminderConfig:
    grace_minutes: int = 120
    rollcall_minutes: int = 120  # a notice asking for 收到 checks who answered after this
    quiet_start: time = time(22, 0)
    quiet_end: time = time(7, 0)
    dayparts: dict[str, time] = field(
        default_factory=lambda: {
            "早上": time(8, 0),
            "上午": time(9, 0),
            "中午": time(12, 0),
            "下午": time(15, 0),
            "晚上": time(19, 0),
        }
    )


@dataclass(frozen=True)
class OutboxConfig:
    room_interval_seconds: float = 1.5
    global_interval_seconds: float = 0.5
    max_chars: int = 1200
    max_attempts: int = 6


@dataclass(frozen=True)
class WechatyConfig:
    endpoint: str = ""
    token: str = ""
    call_timeout_seconds: float = 10.0
    ding_interval_seconds: float = 30.0
    dong_timeout_seconds: float = 20.0
    backoff_seconds: tuple[float, ...] = (1, 2, 5, 10, 30, 60)
    plugin_port: int = 0  # the SDK's own plugin web port; 0 = pick a free one


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    secret: str = ""  # empty: generated and kept in the data folder


@dataclass(frozen=True)
class WelcomeConfig:
    enabled: bool = True
    text: str = (
        "欢迎入群！我是{bot}。有报修、求助，直接在群里说就行；"
        "也可以说“明天上午九点提醒我……”。"
    )


@dataclass(frozen=True)
class Config:
    community: CommunityConfig = field(default_factory=CommunityConfig)
    grids: tuple[GridConfig, ...] = ()
    staff: tuple[StaffConfig, ...] = ()
    categories: tuple[CategoryConfig, ...] = ()
    deadlines: DeadlineConfig = field(default_factory=DeadlineConfig)
    followup: FollowupConfig = field(default_factory=FollowupConfig)
    points: PointsConfig = field(default_factory=PointsConfig)
    schedules: ScheduleConfig = field(default_factory=ScheduleConfig)
    reminders: ReminderConfig = field(default_factory=ReminderConfig)
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    wechaty: WechatyConfig = field(default_factory=WechatyConfig)
    web: WebConfig = field(default_factory=WebConfig)
    welcome: WelcomeConfig = field(default_factory=WelcomeConfig)
    data_dir: Path = Path("weizhili-data")
    database_url: str = ""  # empty: a SQLite file in the data folder
    stale_minutes: int = 5
    max_message_chars: int = 2000
    journal_keep_days: int = 30
    source: str = "built-in defaults"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'weizhili.db').as_posix()}"

    @property
    def tz(self) -> ZoneInfo:
        return self.community.tz

    def grid(self, grid_id: str) -> GridConfig | None:
        return next((g for g in self.grids if g.id == grid_id), None)

    def grid_for_room(self, room_id: str | None, topic: str = "") -> GridConfig | None:
        """The grid whose group this is: by room id first, then by topic."""
        if room_id:
            for grid in self.grids:
                if grid.room_id and grid.room_id == room_id:
                    return grid
        if topic:
            for grid in self.grids:
                if grid.room_topic and grid.room_topic == topic:
                    return grid
        return None

    def category(self, name: str | None) -> CategoryConfig | None:
        return next((c for c in self.categories if c.name == name), None)

    def in_quiet_hours(self, moment: datetime) -> bool:
        """Whether ``moment`` is in the night's quiet hours, when only urgent things go out."""
        r = self.reminders
        local = moment.astimezone(self.tz).time()
        if r.quiet_start <= r.quiet_end:
            return r.quiet_start <= local < r.quiet_end
        return local >= r.quiet_start or local < r.quiet_end

    def quiet_end_after(self, moment: datetime) -> datetime:
        """The end of the quiet hours that contain ``moment``."""
        local = moment.astimezone(self.tz)
        end = datetime.combine(local.date(), self.reminders.quiet_end, self.tz)
        return end if end > local else end + timedelta(days=1)


# --- the demo community --------------------------------------------------------

DEMO_GRIDS = (
    GridConfig("grid-01", "幸福小区1网格", "grid-01", "幸福小区1网格居民群", "wxid_gm_zhao"),
    GridConfig("grid-02", "幸福小区2网格", "grid-02", "幸福小区2网格居民群", "wxid_gm_qian"),
    GridConfig("grid-03", "和平社区3网格", "grid-03", "和平社区3网格群", "wxid_gm_sun"),
)
DEMO_STAFF = (
    StaffConfig("wxid_gm_zhao", "赵网格员", "网格员", ("grid-01",)),
    StaffConfig("wxid_gm_qian", "钱网格员", "网格员", ("grid-02",)),
    StaffConfig("wxid_gm_sun", "孙网格员", "网格员", ("grid-03",)),
    StaffConfig("wxid_jwh_li", "李主任", "居委会"),
    StaffConfig("wxid_wy_wang", "王经理", "物业"),
    StaffConfig("wxid_admin", "管理员", "管理员"),
)
DEFAULT_CATEGORIES = (
    CategoryConfig("维修", "物业", "wxid_wy_wang"),
    CategoryConfig("供暖", "物业", "wxid_wy_wang"),
    CategoryConfig("环境", "物业", "wxid_wy_wang"),
    CategoryConfig("安全", "网格员"),
    CategoryConfig("纠纷", "居委会", "wxid_jwh_li"),
    CategoryConfig("助老", "网格员"),
    CategoryConfig("办事", "居委会", "wxid_jwh_li"),
    CategoryConfig("建议", "居委会", "wxid_jwh_li"),
    CategoryConfig("其他", "网格员"),
)


def demo_config(data_dir: Path | None = None) -> Config:
    """The built-in demo community: what ``weizhili run`` uses with no config file."""
    return Config(
        grids=DEMO_GRIDS,
        staff=DEMO_STAFF,
        categories=DEFAULT_CATEGORIES,
        data_dir=data_dir or Path(os.environ.get("WEIZHILI_DATA", "weizhili-data")),
    )


# --- parsing -------------------------------------------------------------------

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

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value <= 0:
            self.problems.append(f"{self._key(key)}: must be a positive whole number")
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
    )
    c.finish()
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
    staff = _parse_staff(root.get("staff", list, None), problems, {g.id for g in grids})
    categories = _parse_categories(root.get("categories", list, None), problems)

    d = _table(root, "deadlines")
    deadlines = DeadlineConfig(
        response_minutes=d.positive("response_minutes", 120),
        urgent_response_minutes=d.positive("urgent_response_minutes", 30),
        same_day=d.clock("same_day", time(21, 0)),
        nudge_before_minutes=d.positive("nudge_before_minutes", 30),
        escalate_after_minutes=d.positive("escalate_after_minutes", 60),
        duplicate_window_hours=d.positive("duplicate_window_hours", 72),
    )
    d.finish()

    f = _table(root, "followup")
    followup = FollowupConfig(
        ask_after_minutes=f.positive("ask_after_minutes", 30),
        retry_after_hours=f.positive("retry_after_hours", 24),
        close_after_hours=f.positive("close_after_hours", 48),
    )
    f.finish()

    p = _table(root, "points")
    points = PointsConfig(
        praise_staff=p.positive("praise_staff", 2),
        praise_resident=p.positive("praise_resident", 2),
        volunteer_per_hour=p.positive("volunteer_per_hour", 5),
        hazard_fixed=p.positive("hazard_fixed", 3),
        suggestion_adopted=p.positive("suggestion_adopted", 5),
        daily_cap_per_giver=p.positive("daily_cap_per_giver", 5),
        confirm_by=p.choice("confirm_by", ("staff", "plus_one", "either"), "either"),
    )
    p.finish()

    s = _table(root, "schedules")
    schedules = ScheduleConfig(
        digest=s.clock("digest", time(21, 30)),
        morning=s.clock("morning", time(8, 30)),
        honor_roll_day=s.choice("honor_roll_day", WEEKDAYS, "mon"),
        honor_roll_time=s.clock("honor_roll_time", time(9, 0)),
        honor_roll_top=s.positive("honor_roll_top", 5),
        monthly_roll_day=s.positive("monthly_roll_day", 1),
        poll_seconds=s.positive("poll_seconds", 30),
    )
    s.finish()
    if not 1 <= schedules.monthly_roll_day <= 28:
        problems.append("schedules.monthly_roll_day: must be between 1 and 28")

    r = _table(root, "reminders")
    dayparts = dict(ReminderConfig().dayparts)
    raw_parts = r.get("dayparts", dict, {})
    for name, value in raw_parts.items():
        sub = _Reader({name: value}, "reminders.dayparts.", problems)
        dayparts[name] = sub.clock(name, dayparts.get(name, time(9, 0)))
    reminders = ReminderConfig(
        grace_minutes=r.positive("grace_minutes", 120),
        rollcall_minutes=r.positive("rollcall_minutes", 120),
        quiet_start=r.clock("quiet_start", time(22, 0)),
        quiet_end=r.clock("quiet_end", time(7, 0)),
        dayparts=dayparts,
    )
    r.finish()

    o = _table(root, "outbox")
    outbox = OutboxConfig(
        room_interval_seconds=o.get("room_interval_seconds", float, 1.5),
        global_interval_seconds=o.get("global_interval_seconds", float, 0.5),
        max_chars=o.positive("max_chars", 1200),
        max_attempts=o.positive("max_attempts", 6),
    )
    o.finish()
    if outbox.room_interval_seconds < 0 or outbox.global_interval_seconds < 0:
        problems.append("outbox: intervals must not be negative")

    w = _table(root, "wechaty")
    wechaty = WechatyConfig(
        endpoint=w.get("endpoint", str, ""),
        token=w.get("token", str, ""),
        call_timeout_seconds=w.get("call_timeout_seconds", float, 10.0),
        ding_interval_seconds=w.get("ding_interval_seconds", float, 30.0),
        dong_timeout_seconds=w.get("dong_timeout_seconds", float, 20.0),
        backoff_seconds=tuple(
            float(x) for x in w.get("backoff_seconds", list, [1, 2, 5, 10, 30, 60])
        ),
        plugin_port=w.get("plugin_port", int, 0),
    )
    w.finish()

    web_t = _table(root, "web")
    web = WebConfig(
        host=web_t.get("host", str, "127.0.0.1"),
        port=web_t.get("port", int, 8080),
        secret=web_t.get("secret", str, ""),
    )
    web_t.finish()
    if not 0 <= web.port <= 65535:
        problems.append("web.port: must be between 0 and 65535")

    wel = _table(root, "welcome")
    welcome = WelcomeConfig(
        enabled=wel.get("enabled", bool, True),
        text=wel.get("text", str, WelcomeConfig.text),
    )
    wel.finish()

    db = _table(root, "database")
    database_url = db.get("url", str, "")
    journal_keep_days = db.positive("journal_keep_days", 30)
    db.finish()
    if database_url and not database_url.startswith(
        ("sqlite+aiosqlite://", "postgresql+asyncpg://")
    ):
        problems.append(
            "database.url: must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )

    data_dir = Path(root.get("data_dir", str, "weizhili-data"))
    stale_minutes = root.positive("stale_minutes", 5)
    max_message_chars = root.positive("max_message_chars", 2000)
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
        )
        t.finish()
        if not gid:
            problems.append(f"{prefix}id: required")
        if not grid.room_id and not grid.room_topic:
            problems.append(f"{prefix}room_id: give room_id or room_topic")
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


def load_config(path: Path | str | None) -> Config:
    """Load a config file, apply the environment's WeChat settings, or use the demo."""
    if path is None:
        config = demo_config()
    else:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: file not found"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
        config = parse_config(raw, str(path))
    return _apply_environment(config)


def _apply_environment(config: Config) -> Config:
    from dataclasses import replace

    endpoint = os.environ.get("WECHATY_PUPPET_SERVICE_ENDPOINT", "") or config.wechaty.endpoint
    token = os.environ.get("WECHATY_PUPPET_SERVICE_TOKEN", "") or config.wechaty.token
    if token and not endpoint:
        raise ConfigError(
            [
                "wechaty.token: a token is set but no endpoint; set wechaty.endpoint "
                "(or WECHATY_PUPPET_SERVICE_ENDPOINT) to your gateway's host:port"
            ]
        )
    db_url = os.environ.get("WEIZHILI_DATABASE_URL", "") or config.database_url
    return replace(
        config,
        wechaty=replace(config.wechaty, endpoint=endpoint, token=token),
        database_url=db_url,
    )
