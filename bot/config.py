"""Configuration: one TOML file parsed once into frozen dataclasses.

With no file the bot runs a built-in demo community (three grids, demo staff), so the
first command of the README works on a fresh machine. A bad file stops start-up with
a message that names every bad key and why (``weizhili check-config PATH``); the
reading itself is in :mod:`bot.config_parse`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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
    # The bot account in this grid's group, when several accounts (one process each)
    # share a database; empty: the account of the process that queues the post.
    account: str = ""


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
    lexicon_dir: str = ""  # the community's own words (docs/lexicon.md); "" none

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
    # A send interrupted by a crash, that the channel cannot confirm: "hold" it for
    # staff to check (never twice), or "resend" it (never lost, perhaps twice).
    in_doubt: str = "hold"


@dataclass(frozen=True)
class IntakeConfig:
    buffer_size: int = 10_000  # messages held while the database cannot write them


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
    intake: IntakeConfig = field(default_factory=IntakeConfig)
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

    def account_for_room(self, room_id: str) -> str:
        """The bot account that must post in ``room_id``; "" when any may (one account).

        With accounts named on grids (several processes on one database), a grid's
        group is posted to by its account, anything else by this process's own.
        """
        if not any(grid.account for grid in self.grids):
            return ""
        grid = self.grid_for_room(room_id)
        return grid.account if grid is not None and grid.account else self.community.bot_id

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


def load_config(path: Path | str | None) -> Config:
    """Load a config file, apply the environment's WeChat settings, or use the demo."""
    if path is None:
        config = demo_config()
    else:
        path = Path(path)
        try:
            # utf-8-sig: Windows editors (Notepad) may start the file with a BOM
            raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: file not found"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: not UTF-8 text"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None
        from bot.config_parse import parse_config

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
