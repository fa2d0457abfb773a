"""Values that pass their type but would break the running bot are refused, by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import (
    DEFAULT_CATEGORIES,
    DEMO_GRIDS,
    DEMO_STAFF,
    ConfigError,
    load_config,
)
from bot.config_checks import LIMITS, check_people_and_rooms
from bot.config_parse import parse_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"
SCALARS = sorted(k for k in LIMITS if k != "wechaty.backoff_seconds")

PEOPLE = """
[community]
staff_room = "staff@chatroom"
staff_room_topic = "工作群"

[[grids]]
id = "g1"
room_id = "r1@chatroom"
room_topic = "1网格群"
manager = "wxid_gm1"

[[grids]]
id = "g2"
room_id = "r2@chatroom"
room_topic = "2网格群"
manager = "wxid_gm2"

[[staff]]
id = "wxid_gm1"
name = "一"
role = "网格员"

[[staff]]
id = "wxid_gm2"
name = "二"
role = "网格员"

[[staff]]
id = "wxid_wy"
name = "物业"
role = "物业"

[[categories]]
name = "维修"
party = "物业"
assignee = "wxid_wy"
per_grid = { "g2" = "wxid_gm2" }
"""


def _toml(settings: dict[str, object]) -> str:
    """``{"outbox.max_chars": 1}`` as a TOML text, top-level keys first."""
    top = [f"{k} = {_value(v)}" for k, v in settings.items() if "." not in k]
    tables: dict[str, list[str]] = {}
    for key, value in settings.items():
        if "." in key:
            table, name = key.split(".")
            tables.setdefault(table, []).append(f"{name} = {_value(value)}")
    body = [*top]
    for table, lines in tables.items():
        body += [f"[{table}]", *lines]
    return "\n".join(body) + "\n"


def _value(value: object) -> str:
    if isinstance(value, float) and value == int(value):
        return str(int(value))
    return str(value)


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    prefix = f"{path}: "
    assert all(p.startswith(prefix) for p in info.value.problems)
    return [p.removeprefix(prefix) for p in info.value.problems]


def _loads(tmp_path: Path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


# --- 1. numbers within bounds --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("stale_minutes = 99999999999999999999",
         "stale_minutes: must be a positive whole number, at most 10080 "
         "(got 99999999999999999999)"),
        ("[deadlines]\nresponse_minutes = 999999999999",
         "deadlines.response_minutes: must be a positive whole number, at most 10080 "
         "(got 999999999999)"),
        ("[database]\njournal_keep_days = 9999999999",
         "database.journal_keep_days: must be a positive whole number, at most 3650 "
         "(got 9999999999)"),
        ("[outbox]\nroom_interval_seconds = nan",
         "outbox.room_interval_seconds: must be a number from 0 to 60 (got nan)"),
        ("[outbox]\nglobal_interval_seconds = inf",
         "outbox.global_interval_seconds: must be a number from 0 to 60 (got inf)"),
        ("[outbox]\nroom_interval_seconds = -1",
         "outbox.room_interval_seconds: must be a number from 0 to 60 (got -1.0)"),
        ("[outbox]\nmax_chars = 1",
         "outbox.max_chars: must be a whole number from 200 to 5000 (got 1)"),
        ("[wechaty]\ncall_timeout_seconds = 0",
         "wechaty.call_timeout_seconds: must be a number from 1 to 300 (got 0.0)"),
        ("[wechaty]\nding_interval_seconds = -inf",
         "wechaty.ding_interval_seconds: must be a number from 1 to 3600 (got -inf)"),
        ("[wechaty]\nplugin_port = 70000",
         "wechaty.plugin_port: must be a whole number from 0 to 65535 (got 70000)"),
        ("[schedules]\nmonthly_roll_day = 31",
         "schedules.monthly_roll_day: must be a positive whole number, at most 28 "
         "(got 31)"),
        ("[intake]\nbuffer_size = 0",
         "intake.buffer_size: must be a positive whole number, at most 1000000 (got 0)"),
    ],
)
def test_an_absurd_number_is_refused_by_name(tmp_path, text, problem):
    assert _problems(tmp_path, text) == [problem]


@pytest.mark.parametrize("key", SCALARS)
def test_every_number_has_bounds_beyond_which_it_is_refused(tmp_path, key):
    low, high = LIMITS[key]
    for value in (low - 1, high + 1):
        problems = _problems(tmp_path, _toml({key: value}))
        assert len(problems) == 1 and problems[0].startswith(f"{key}: must be "), problems


def test_the_bounds_themselves_are_accepted(tmp_path):
    for edge in (0, 1):
        config = _loads(tmp_path, _toml({k: LIMITS[k][edge] for k in SCALARS}))
        assert config.outbox.max_chars == LIMITS["outbox.max_chars"][edge]


def test_the_defaults_lie_within_the_bounds():
    parse_config({})  # an empty file: every default, every check
    config = load_config(EXAMPLE)
    assert config.stale_minutes == 5 and config.outbox.max_chars == 1200


# --- 2. backoff_seconds --------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["x"]', "wechaty.backoff_seconds[0]: expected a number of seconds, got str"),
        ("[1, true]", "wechaty.backoff_seconds[1]: expected a number of seconds, got bool"),
        ("[1, [2]]", "wechaty.backoff_seconds[1]: expected a number of seconds, got list"),
        ("[]", "wechaty.backoff_seconds: give at least one delay, e.g. [1, 2, 5, 10, 30, 60]"),
        ("[1, nan]", "wechaty.backoff_seconds[1]: must be a number from 0.1 to 3600 (got nan)"),
        ("[-5]", "wechaty.backoff_seconds[0]: must be a number from 0.1 to 3600 (got -5)"),
        ("[1e9]",
         "wechaty.backoff_seconds[0]: must be a number from 0.1 to 3600 (got 1000000000.0)"),
    ],
)
def test_bad_backoff_delays_are_named_not_raised(tmp_path, value, problem):
    assert _problems(tmp_path, f"[wechaty]\nbackoff_seconds = {value}\n") == [problem]


def test_check_config_reports_a_bad_delay_instead_of_a_traceback(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text('[wechaty]\nbackoff_seconds = ["x"]\n', encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "wechaty.backoff_seconds[0]: expected a number of seconds, got str" in err
    assert "Traceback" not in err


def test_good_delays_are_read_as_seconds(tmp_path):
    config = _loads(tmp_path, "[wechaty]\nbackoff_seconds = [0.3, 1, 2.5]\n")
    assert config.wechaty.backoff_seconds == (0.3, 1.0, 2.5)


# --- 3. web.secret -------------------------------------------------------------


def test_a_short_secret_is_refused_without_showing_it(tmp_path):
    problems = _problems(tmp_path, '[web]\nsecret = "hunter2hunter2"\n')
    assert problems == ["web.secret: must be at least 32 characters (got 14); or leave "
                        "it empty and one is generated in data_dir"]
    assert _problems(tmp_path, '[web]\nsecret = "a"\n')[0].startswith("web.secret: ")
    padded = '"' + " " * 20 + "a" * 20 + '"'
    assert _problems(tmp_path, f"[web]\nsecret = {padded}\n")[0].startswith("web.secret: ")


def test_a_long_secret_or_none_is_accepted(tmp_path):
    assert _loads(tmp_path, f'[web]\nsecret = "{"s" * 32}"\n').web.secret == "s" * 32
    assert _loads(tmp_path, '[web]\nsecret = ""\n').web.secret == ""


# --- 4. rooms and people that must agree ---------------------------------------


def test_the_people_fixture_is_valid(tmp_path):
    config = _loads(tmp_path, PEOPLE)
    assert [g.id for g in config.grids] == ["g1", "g2"]


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('room_id = "r2@chatroom"', 'room_id = "r1@chatroom"',
         "grids: room_id 'r1@chatroom' is given to grids g1, g2; its messages would "
         "all count for the first"),
        ('room_id = "r2@chatroom"\nroom_topic = "2网格群"', 'room_topic = "1网格群"',
         "grids: room_topic '1网格群' is given to grids g1, g2; give each its room_id"),
        ('staff_room = "staff@chatroom"', 'staff_room = "r2@chatroom"',
         "community.staff_room: 'r2@chatroom' is also the room_id of grids[1] (g2); "
         "staff digests and escalations would be posted to residents"),
        ('staff_room_topic = "工作群"', 'staff_room_topic = "1网格群"',
         "community.staff_room_topic: '1网格群' is also the room_topic of grids[0] (g1); "
         "the staff group would be taken for that grid's residents' group"),
        ('manager = "wxid_gm2"', 'manager = "wxid_gm9"',
         "grids[1].manager: 'wxid_gm9' is not the id of any [[staff]] member; grid 'g2''s "
         "reports would go to nobody on the staff list"),
        ('assignee = "wxid_wy"', 'assignee = "王经理"',
         "categories[0].assignee: '王经理' is not the id of any [[staff]] member; '维修' "
         "reports would go to nobody on the staff list"),
        ('id = "wxid_wy"', 'id = "wxid_gm1"',
         "staff: id 'wxid_gm1' appears more than once"),
        ('per_grid = { "g2" = "wxid_gm2" }', 'per_grid = { "g3" = "wxid_gm2" }',
         "categories[0].per_grid: unknown grid id(s) ['g3']"),
        ('per_grid = { "g2" = "wxid_gm2" }', 'per_grid = { "g2" = "wxid_x" }',
         "categories[0].per_grid.g2: 'wxid_x' is not the id of any [[staff]] member; "
         "'维修' reports would go to nobody on the staff list"),
    ],
)
def test_contradicting_rooms_and_people_are_refused(tmp_path, old, new, problem):
    assert PEOPLE.count(old) == 1
    problems = _problems(tmp_path, PEOPLE.replace(old, new))
    assert problem in problems, problems
    wrong_assignee = 'id = "wxid_wy"' in old  # the category's owner is gone too
    assert len(problems) == (2 if wrong_assignee else 1), problems


def test_a_manager_is_checked_against_the_demo_staff_when_no_staff_is_given(tmp_path):
    text = '[[grids]]\nid = "g1"\nroom_id = "r1"\nmanager = "wxid_gm_zhao"\n'
    assert _loads(tmp_path, text).grids[0].manager == "wxid_gm_zhao"
    problems = _problems(tmp_path, text.replace("wxid_gm_zhao", "wxid_nobody"))
    assert problems[0].startswith("grids[0].manager: 'wxid_nobody' is not the id")


def test_the_demo_community_agrees_with_itself():
    problems: list[str] = []
    check_people_and_rooms(load_config(None).community, DEMO_GRIDS, DEMO_STAFF,
                           DEFAULT_CATEGORIES, problems)
    assert problems == []


# --- 5. welcome.text -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{bot。", "welcome.text: not a valid template (expected '}' before end of "
                  "string); write {{ or }} for a literal brace"),
        ("欢迎}", "welcome.text: not a valid template (Single '}' encountered in format "
                 "string); write {{ or }} for a literal brace"),
        ("我是{0}", "welcome.text: not a valid template (Format string contains "
                   "positional fields); write {{ or }} for a literal brace"),
        ("我是{bot.name}", "welcome.text: not a valid template ('str' object has no "
                         "attribute 'name'); write {{ or }} for a literal brace"),
        ("我是{bot:d}", "welcome.text: not a valid template (Unknown format code 'd' for "
                       "object of type 'str'); write {{ or }} for a literal brace"),
        ("{name}你好", "welcome.text: unknown placeholder(s) {name}; only {bot} (the "
                     "bot's name) is filled in, the rest would reach residents as "
                     "typed; write {{ or }} for a literal brace"),
    ],
)
def test_a_broken_welcome_template_is_refused(tmp_path, text, problem):
    assert _problems(tmp_path, f"[welcome]\ntext = '{text}'\n") == [problem]


def test_a_welcome_with_literal_braces_is_accepted(tmp_path):
    config = _loads(tmp_path, "[welcome]\ntext = '我是{bot}，{{报修}}请直说'\n")
    assert config.welcome.text.format_map({"bot": "小助手"}) == "我是小助手，{报修}请直说"


# --- 6. a byte-order mark ------------------------------------------------------


def test_a_file_saved_with_a_bom_is_read(tmp_path, capsys):
    path = tmp_path / "bom.toml"
    path.write_bytes(EXAMPLE.read_text(encoding="utf-8").encode("utf-8-sig"))
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert load_config(path).community.name == "幸福社区"
    assert main(["check-config", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
