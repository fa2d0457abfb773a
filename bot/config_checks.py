"""Checks on a config beyond each key's type: bounds, templates, and keys that must agree.

:data:`LIMITS` is the one table of what every number may be. The bounds are generous
for a real community, but keep each value where the bot still works: a deadline of
a billion minutes overflows the date arithmetic, an interval of NaN removes the send
pacing, and ``max_chars = 1`` would send replies one character at a time.

The cross-checks catch settings that are each fine but contradict one another: two
grids on one group, the staff group also a residents' group, an owner who is no
staff member. Every problem is appended to the caller's list, naming its key.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.config import CategoryConfig, CommunityConfig, GridConfig, StaffConfig

# key -> (lowest, highest) allowed, in the unit the key's name says.
LIMITS: dict[str, tuple[float, float]] = {
    "stale_minutes": (1, 10_080),  # a week
    "max_message_chars": (100, 100_000),
    "deadlines.response_minutes": (1, 10_080),  # office minutes
    "deadlines.urgent_response_minutes": (1, 1_440),  # a day
    "deadlines.nudge_before_minutes": (1, 1_440),
    "deadlines.escalate_after_minutes": (1, 10_080),
    "deadlines.duplicate_window_hours": (1, 720),  # 30 days
    "followup.ask_after_minutes": (1, 10_080),
    "followup.retry_after_hours": (1, 720),
    "followup.close_after_hours": (1, 720),
    "points.praise_staff": (1, 100),
    "points.praise_resident": (1, 100),
    "points.volunteer_per_hour": (1, 100),
    "points.hazard_fixed": (1, 100),
    "points.suggestion_adopted": (1, 100),
    "points.daily_cap_per_giver": (1, 100),
    "schedules.honor_roll_top": (1, 50),
    "schedules.monthly_roll_day": (1, 28),  # every month has it
    "schedules.poll_seconds": (1, 600),
    "reminders.grace_minutes": (1, 10_080),
    "reminders.rollcall_minutes": (1, 10_080),
    "outbox.room_interval_seconds": (0, 60),
    "outbox.global_interval_seconds": (0, 60),
    "outbox.max_chars": (200, 5_000),  # longer texts go out in parts this long
    "outbox.max_attempts": (1, 50),
    "intake.buffer_size": (1, 1_000_000),
    "wechaty.call_timeout_seconds": (1, 300),
    "wechaty.ding_interval_seconds": (1, 3_600),
    "wechaty.dong_timeout_seconds": (1, 600),
    "wechaty.backoff_seconds": (0.1, 3_600),  # each delay
    "wechaty.plugin_port": (0, 65_535),
    "web.port": (0, 65_535),
    "database.journal_keep_days": (1, 3_650),  # ten years
}

MIN_SECRET_CHARS = 32  # as long as the one generated in the data folder
WELCOME_FIELDS = ("bot",)  # what bot.channels.wechaty_send fills into welcome.text


def out_of_bounds(key: str, value: float, whole: bool, shown: str = "") -> str:
    """The problem with ``value`` for ``key`` (its :data:`LIMITS`), or "" when fine."""
    low, high = LIMITS[key]
    if low <= value <= high:  # false for NaN and for either infinity too
        return ""
    if whole and low == 1:
        span = f"a positive whole number, at most {high}"
    elif whole:
        span = f"a whole number from {low} to {high}"
    else:
        span = f"a number from {low:g} to {high:g}"
    return f"{shown or key}: must be {span} (got {value})"


def read_delays(raw: list[Any], problems: list[str]) -> tuple[float, ...]:
    """``wechaty.backoff_seconds``: a non-empty list of numbers within their bounds."""
    key = "wechaty.backoff_seconds"
    if not raw:
        problems.append(f"{key}: give at least one delay, e.g. [1, 2, 5, 10, 30, 60]")
    delays = []
    for i, item in enumerate(raw):
        if isinstance(item, bool) or not isinstance(item, int | float):
            problems.append(f"{key}[{i}]: expected a number of seconds, "
                            f"got {type(item).__name__}")
            continue
        problem = out_of_bounds(key, item, False, f"{key}[{i}]")
        if problem:
            problems.append(problem)
        delays.append(float(item))
    return tuple(delays)


def check_secret(secret: str, problems: list[str]) -> None:
    """A configured ``web.secret`` must be long enough to sign cookies safely."""
    if secret and len(secret.strip()) < MIN_SECRET_CHARS:
        problems.append(
            f"web.secret: must be at least {MIN_SECRET_CHARS} characters "
            f"(got {len(secret.strip())}); or leave it empty and one is generated "
            "in data_dir"
        )


class _Placeholders(dict[str, str]):
    """As bot.channels.wechaty_send.Placeholders: an unknown name stays as written."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def check_lexicon(folder: str, problems: list[str]) -> None:
    """A community lexicon folder must exist and read cleanly (the router would refuse it)."""
    if not folder:
        return
    from handlers.rules import BUILTIN_LEXICON, LexiconError, load_lexicon

    path = Path(folder)
    if not path.is_dir():
        problems.append(f"community.lexicon_dir: {folder!r} is not a folder "
                        "(it holds the community's rules.toml and userdict.txt)")
        return
    try:
        load_lexicon([BUILTIN_LEXICON, path])
    except LexiconError as exc:
        problems.append(f"community.lexicon_dir: {exc}")


def check_welcome(text: str, problems: list[str]) -> None:
    """``welcome.text`` must format as the channel formats it, with only known names."""
    braces = "write {{ or }} for a literal brace"
    try:
        text.format_map(_Placeholders({name: "社区小助手" for name in WELCOME_FIELDS}))
        names = {field for _, field, _, _ in string.Formatter().parse(text)
                 if field is not None}
    except (ValueError, KeyError, AttributeError, IndexError, TypeError) as exc:
        problems.append(f"welcome.text: not a valid template ({exc}); {braces}")
        return
    unknown = sorted(names - set(WELCOME_FIELDS))
    if unknown:
        shown = ", ".join("{" + name + "}" for name in unknown)
        problems.append(
            f"welcome.text: unknown placeholder(s) {shown}; only {{bot}} (the bot's "
            f"name) is filled in, the rest would reach residents as typed; {braces}"
        )


def check_people_and_rooms(
    community: CommunityConfig,
    grids: Sequence[GridConfig],
    staff: Sequence[StaffConfig],
    categories: Sequence[CategoryConfig],
    problems: list[str],
) -> None:
    """Rooms used once each, and every owner named a staff member.

    ``grids`` and ``staff`` are those in force (the demo's when the file has none);
    ``categories`` only those the file gives (the built-in ones name demo staff).
    """
    _check_rooms(community, grids, problems)
    ids = [member.id for member in staff if member.id]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"staff: id {dup!r} appears more than once")
    staff_ids = set(ids)
    grid_ids = {grid.id for grid in grids}

    def not_staff(key: str, who: str, what: str) -> None:
        problems.append(f"{key}: {who!r} is not the id of any [[staff]] member; {what} "
                        "would go to nobody on the staff list")

    for i, grid in enumerate(grids):
        if grid.manager and grid.manager not in staff_ids:
            not_staff(f"grids[{i}].manager", grid.manager, f"grid {grid.id!r}'s reports")
    for i, category in enumerate(categories):
        what = f"{category.name!r} reports"
        if category.assignee and category.assignee not in staff_ids:
            not_staff(f"categories[{i}].assignee", category.assignee, what)
        unknown = sorted(g for g in category.per_grid if g not in grid_ids)
        if unknown:
            problems.append(f"categories[{i}].per_grid: unknown grid id(s) {unknown}")
        for grid_id, who in sorted(category.per_grid.items()):
            if grid_id in grid_ids and who not in staff_ids:
                not_staff(f"categories[{i}].per_grid.{grid_id}", who, what)


def _check_rooms(
    community: CommunityConfig, grids: Sequence[GridConfig], problems: list[str]
) -> None:
    by_room: dict[str, list[GridConfig]] = {}
    by_topic: dict[str, list[GridConfig]] = {}
    for grid in grids:
        if grid.room_id:
            by_room.setdefault(grid.room_id, []).append(grid)
        if grid.room_topic:
            by_topic.setdefault(grid.room_topic, []).append(grid)
    for room, owners in sorted(by_room.items()):
        if len(owners) > 1:
            problems.append(f"grids: room_id {room!r} is given to grids "
                            f"{', '.join(g.id for g in owners)}; its messages would all "
                            "count for the first")
    for topic, owners in sorted(by_topic.items()):
        if len(owners) > 1 and any(not g.room_id for g in owners):  # found by topic
            problems.append(f"grids: room_topic {topic!r} is given to grids "
                            f"{', '.join(g.id for g in owners)}; give each its room_id")
    staff_room, staff_topic = community.staff_room, community.staff_room_topic
    for i, grid in enumerate(grids):
        if staff_room and grid.room_id == staff_room:
            problems.append(f"community.staff_room: {staff_room!r} is also the room_id of "
                            f"grids[{i}] ({grid.id}); staff digests and escalations would "
                            "be posted to residents")
        if staff_topic and grid.room_topic == staff_topic:
            problems.append(f"community.staff_room_topic: {staff_topic!r} is also the "
                            f"room_topic of grids[{i}] ({grid.id}); the staff group would "
                            "be taken for that grid's residents' group")
