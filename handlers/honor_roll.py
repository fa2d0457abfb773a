"""光荣榜: the week's (or month's) most helpful residents, with reasons, per grid.

What a roll holds, all computed with SQL aggregates over one period:

    top N residents     SUM(points) per member; reversed entries and staff left out
    reasons in words    the notes of those few members' entries (praise, volunteering …)
    staff thanks        confirmed praise of staff, counted per person
    same-day petitions  resolved on the same local date they were reported

Residents who sent ``/不上榜`` are shown as 一位热心居民. This module is the roll's
public face; the work is split by concern and re-exported here:

    handlers.honor_model    periods (ISO weeks, months) and the roll's dataclasses
    handlers.honor_queries  build_rolls (every grid in a fixed number of queries),
                            build_roll (one grid, or the whole community)
    handlers.honor_preview  ``weizhili honor-roll --preview`` (:func:`main_preview`)

Posting (once, across restarts) lives in :mod:`schedules.honor_roll`; the picture in
:mod:`handlers.honor_card`.
"""

from __future__ import annotations

from handlers.honor_model import (
    Period,
    Roll,
    RollEntry,
    StaffThanks,
    month_period,
    parse_week,
    previous_month,
    previous_week,
    public_reason,
    week_of,
    week_period,
)
from handlers.honor_queries import build_roll, build_rolls

__all__ = [
    "Period",
    "Roll",
    "RollEntry",
    "StaffThanks",
    "build_roll",
    "build_rolls",
    "format_roll",
    "main_preview",
    "month_period",
    "parse_week",
    "previous_month",
    "previous_week",
    "public_reason",
    "week_of",
    "week_period",
]


# --- words ------------------------------------------------------------------------------


def format_roll(roll: Roll, *, late_note: str = "") -> str:
    """The roll as the group reads it."""
    title = "光荣榜" if roll.period.kind == "week" else "月度光荣榜"
    lines = []
    if late_note:
        lines.append(late_note)
    lines.append(f"【{title}】{roll.grid_name} · {roll.period.heading()}")
    noun = roll.period.noun
    if roll.entries:
        lines.append(f"{noun}，感谢这些热心的邻居：")
        for entry in roll.entries:
            lines.append(
                f"{entry.rank}. {entry.name}（{entry.points}分）：{entry.reason_text()}"
            )
    else:
        lines.append(f"{noun}还没有人上榜，期待大家互帮互助！")
    if roll.staff:
        thanks = "、".join(
            f"{s.name}（{s.times}次" + (f"，{s.example}" if s.example else "") + "）"
            for s in roll.staff[:5]
        )
        lines.append(f"居民点名表扬的工作人员：{thanks}，辛苦了！")
    facts = []
    if roll.praise_count:
        facts.append(f"共收到表扬{roll.praise_count}次")
    if roll.same_day_resolved:
        facts.append(f"{roll.same_day_resolved}件诉求当天办结")
    if facts:
        lines.append(f"{noun}" + "，".join(facts) + "。")
    lines.append("积分可兑换社区小礼品。不想公开姓名，发送“/不上榜”即可。")
    return "\n".join(lines)


def main_preview(argv: list[str]) -> int:
    """``weizhili honor-roll --preview``: print the roll and write the picture; post nothing."""
    from handlers.honor_preview import main_preview as preview

    return preview(argv)
