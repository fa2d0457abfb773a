"""Petitions (诉求), the 接诉即办 way: routing, deadlines, the lifecycle, 同问 +1.

    reported ─受理→ accepted ─进展→ in_progress ─办结→ resolved ─回访→ closed
        │                                              └─不满意→ reopened
        └─转派→ transferred          any open state ─撤回/重复→ withdrawn / duplicate

Every change is a :class:`PetitionEvent` row. An impossible change raises
:class:`PetitionStateError`, whose message is the Chinese reply; nothing changes.

    PetitionError              a Chinese reply for the person who asked
    ├── PetitionNotFoundError  no such number
    └── PetitionStateError     the change is not possible from the current state

Each open petition watches one deadline (``due_at``): the response deadline until
someone responds, then the same-day (矛盾不过夜) deadline; ``escalation`` counts the
steps taken for the deadline being watched and starts again when it moves.

A resident's report becomes a petition in :mod:`handlers.petition_reports`; the
staff commands that drive the lifecycle are in :mod:`handlers.commands.petitions`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config, GridConfig
from bot.context import StaffInfo
from bot.privacy import mask_personal
from handlers.petition_deadlines import (  # noqa: F401 - part of this module's API
    add_office_minutes,
    deadlines,
    in_office,
    response_deadline,
    same_day_deadline,
)
from models.tables import Petition, PetitionEvent

log = logging.getLogger(__name__)

STATUS_NAMES = {
    "reported": "待受理",
    "accepted": "已受理",
    "in_progress": "处理中",
    "transferred": "已转派",
    "resolved": "已办结",
    "closed": "已关闭",
    "reopened": "重新办理",
    "withdrawn": "已撤回",
    "duplicate": "重复诉求",
}
STATUS_BY_NAME = {v: k for k, v in STATUS_NAMES.items()} | {
    "待办": "reported",
    "未受理": "reported",
    "处理": "in_progress",
    "转派": "transferred",
    "办结": "resolved",
    "关闭": "closed",
    "重办": "reopened",
    "撤回": "withdrawn",
    "重复": "duplicate",
}
OPEN_STATES = frozenset(
    {"reported", "accepted", "in_progress", "transferred", "reopened"}
)
AWAITING_RESPONSE = frozenset({"reported", "transferred", "reopened"})
DONE_STATES = frozenset({"resolved", "closed", "withdrawn", "duplicate"})

# action -> (states it may start from, state it leads to, name in replies)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "accept": (frozenset({"reported", "transferred", "reopened"}), "accepted", "受理"),
    "progress": (
        frozenset({"accepted", "in_progress", "reopened", "transferred"}),
        "in_progress",
        "记录进展",
    ),
    "resolve": (OPEN_STATES, "resolved", "办结"),
    "close": (frozenset({"resolved"}), "closed", "关闭"),
    "reopen": (frozenset({"resolved", "closed"}), "reopened", "重新办理"),
    "transfer": (OPEN_STATES, "transferred", "转派"),
    "return": (OPEN_STATES - {"reported"}, "reported", "退回"),
    "withdraw": (OPEN_STATES, "withdrawn", "撤回"),
    "duplicate": (OPEN_STATES, "duplicate", "标记重复"),
}
ACTION_NAMES = {name: words for name, (_, _, words) in TRANSITIONS.items()} | {
    "report": "登记",
    "plus_one": "同问",
    "urge": "催办",
    "escalate": "督办",
}
PARTY_ROLES = {"物业": "物业", "居委会": "居委会", "网格员": "网格员"}


class PetitionError(Exception):
    """A petition action that cannot be done; the message is the Chinese reply."""


class PetitionNotFoundError(PetitionError):
    """No petition has that number."""


class PetitionStateError(PetitionError):
    """The change is not possible from the petition's current state."""


@dataclass(frozen=True)
class Routing:
    category: str
    party: str
    assignee_id: str


# --- routing (首接负责) -----------------------------------------------------------


def route(config: Config, category: str | None, grid: GridConfig | None) -> Routing:
    """Who owns a petition of this category in this grid; unrouted: the grid manager."""
    settings = config.category(category) or config.category("其他")
    name = settings.name if settings else "其他"
    party = settings.party if settings else "网格员"
    assignee = ""
    if settings is not None:
        assignee = _known(config, (
            settings.per_grid.get(grid.id, "") if grid else ""
        ) or settings.assignee)
    if not assignee and party != "网格员":
        assignee = _first_staff(config, party, grid)
    if not assignee:
        assignee = grid.manager if grid else ""
    return Routing(name, party, assignee)


def party_assignee(
    config: Config, party: str, category: str, grid: GridConfig | None
) -> str:
    """The person of ``party`` who takes a petition of ``category`` in ``grid``."""
    settings = config.category(category)
    if settings is not None and settings.party == party:
        chosen = _known(config, (
            settings.per_grid.get(grid.id, "") if grid else ""
        ) or settings.assignee)
        if chosen:
            return chosen
    if party == "网格员":
        return grid.manager if grid else ""
    return _first_staff(config, party, grid)


def _known(config: Config, member_id: str) -> str:
    """The id when it is one of the config's staff, else "" (so the role decides).

    The built-in categories name the demo community's 物业 and 居委会; a community
    that lists its own staff but keeps those categories gets its own people.
    """
    return member_id if any(s.id == member_id for s in config.staff) else ""


def _first_staff(config: Config, role: str, grid: GridConfig | None) -> str:
    for staff in config.staff:
        if staff.role == role and (
            not staff.grids or (grid and grid.id in staff.grids)
        ):
            return staff.id
    return ""


def staff_name(config: Config, member_id: str) -> str:
    """The configured name of a staff member, or empty."""
    return next((s.name for s in config.staff if s.id == member_id), "")


def committee_ids(config: Config) -> list[str]:
    """The 居委会 members, who hear of what the grid managers could not settle."""
    return [s.id for s in config.staff if s.role == "居委会"]


def may_handle(staff: StaffInfo, petition: Petition) -> bool:
    """Staff rights on one petition: 物业 only its own matters, 网格员 only its grids."""
    if staff.role in ("管理员", "居委会"):
        return True
    if staff.role == "物业":
        return petition.party == "物业" and staff.covers(petition.grid_id)
    return staff.covers(petition.grid_id)


def watch(petition: Petition, due: datetime | None, kind: str = "") -> None:
    """Watch a new deadline; the escalation steps start again for it."""
    petition.due_at = due
    petition.due_kind = kind if due is not None else ""
    petition.escalation = 0


# --- reading -------------------------------------------------------------------


async def get_petition(session: AsyncSession, number: int) -> Petition:
    """The petition with this number, or :class:`PetitionNotFoundError`."""
    petition = await session.get(Petition, number)
    if petition is None:
        raise PetitionNotFoundError(f"没有找到 #{number} 号诉求，请核对编号。")
    return petition


def label(petition: Petition) -> str:
    """``#12（物业·维修）``"""
    return f"#{petition.id}（{petition.party}·{petition.category}）"


def status_name(petition: Petition) -> str:
    """The petition's state in Chinese."""
    return STATUS_NAMES.get(petition.status, petition.status)


def summary_line(petition: Petition, config: Config, *, details: bool = True) -> str:
    """One line of a list: number, state, and the matter unless it is private."""
    local = petition.created_at.astimezone(config.tz)
    what = (
        "（内容仅工作人员可见）"
        if petition.private and not details
        else short(petition.text)
    )
    flag = "【紧急】" if petition.urgent else ""
    return (
        f"#{petition.id} {flag}{status_name(petition)}"
        f" {petition.category} {local:%m-%d %H:%M} {what}"
    )


def short(text: str, limit: int = 30) -> str:
    """The text on one line, masked, then cut at ``limit`` characters.

    Masked before the cut: a number cut in half no longer looks like a phone or ID
    number to the mask, and most of it would reach the group.
    """
    text = mask_personal(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def open_petitions(
    session: AsyncSession, *, grid_id: str | None = None
) -> list[Petition]:
    """Every open petition, oldest first."""
    query = (
        select(Petition).where(Petition.status.in_(OPEN_STATES)).order_by(Petition.id)
    )
    if grid_id:
        query = query.where(Petition.grid_id == grid_id)
    return list(await session.scalars(query))


# --- changing ------------------------------------------------------------------


def record(
    session: AsyncSession,
    petition: Petition,
    actor_id: str,
    action: str,
    to_status: str,
    now: datetime,
    note: str = "",
) -> PetitionEvent:
    """Write one history row and move the petition to ``to_status``."""
    event = PetitionEvent(
        petition_id=petition.id,
        at=now,
        actor_id=actor_id,
        action=action,
        from_status=petition.status,
        to_status=to_status,
        note=note[:500],
    )
    session.add(event)
    petition.status = to_status
    petition.updated_at = now
    return event


def transition(
    session: AsyncSession,
    petition: Petition,
    action: str,
    actor_id: str,
    now: datetime,
    note: str = "",
    *,
    config: Config | None = None,
) -> None:
    """Apply a lifecycle action, or raise :class:`PetitionStateError` and change nothing.

    With ``config`` the watched deadline moves too (response, same-day, none).
    """
    allowed_from, to_status, name = TRANSITIONS[action]
    if petition.status not in allowed_from:
        raise PetitionStateError(
            f"#{petition.id} 目前是“{status_name(petition)}”，不能{name}。"
        )
    was = petition.status
    record(session, petition, actor_id, action, to_status, now, note)

    if action in ("accept", "progress") and petition.accepted_at is None:
        petition.accepted_at = now
    if action == "accept" and not petition.assignee_id:
        petition.assignee_id = actor_id  # 首接负责: whoever takes it first owns it
    elif action == "resolve":
        petition.resolved_at = now
        petition.accepted_at = petition.accepted_at or now
    elif action in ("close", "withdraw", "duplicate"):
        petition.closed_at = now
    elif action == "reopen":
        petition.reopen_count += 1
        petition.resolved_at = None
        petition.closed_at = None

    if to_status not in OPEN_STATES:
        watch(petition, None)
    elif config is not None:
        if to_status in AWAITING_RESPONSE:
            watch(petition, response_deadline(config, now, petition.urgent), "response")
        elif action == "progress" and was not in AWAITING_RESPONSE:
            # today's note is in: the next one is due by tomorrow's same-day time
            watch(petition, same_day_deadline(config, now, next_day=True), "resolve")
        else:
            due = petition.resolve_due
            if due <= now:
                due = same_day_deadline(config, now)
            watch(petition, due, "resolve")
    log.info(
        "petition changed petition=%s action=%s actor=%s to=%s",
        petition.id,
        action,
        actor_id,
        to_status,
    )


def add_follower(
    session: AsyncSession,
    petition: Petition,
    member_id: str,
    now: datetime,
    note: str = "同问 +1",
) -> bool:
    """Link a neighbour to a petition as 同问 +1; False when already linked."""
    if member_id == petition.reporter_id or member_id in (petition.followers or []):
        return False
    petition.followers = [
        *(petition.followers or []),
        member_id,
    ]  # a new list: JSON changes
    petition.updated_at = now
    session.add(
        PetitionEvent(
            petition_id=petition.id,
            at=now,
            actor_id=member_id,
            action="plus_one",
            from_status=petition.status,
            to_status=petition.status,
            note=note,
        )
    )
    return True


def mark_duplicate(
    session: AsyncSession,
    petition: Petition,
    original: Petition,
    actor_id: str,
    now: datetime,
) -> None:
    """Close ``petition`` as a duplicate; its reporter and followers follow ``original``."""
    if original.id == petition.id:
        raise PetitionStateError("不能把一条诉求标记为它自己的重复。")
    if original.status not in OPEN_STATES:
        raise PetitionStateError(
            f"#{original.id} 已经{status_name(original)}，请直接办结。"
        )
    transition(session, petition, "duplicate", actor_id, now, f"与 #{original.id} 重复")
    petition.duplicate_of = original.id
    for member_id in [petition.reporter_id, *(petition.followers or [])]:
        add_follower(session, original, member_id, now, f"由 #{petition.id} 合并")
