"""回访: after a resolution the bot asks the reporter whether it was done well.

    pending ─(ask_after_minutes)→ asked ─(garbled once)→ clarify
       │                           │  └─(retry_after_hours: asked once more)
       └─(petition reopened …)→ cancelled      ├─ 满意/是/1 → answered, petition closed
                                                ├─ 不满意/否/2 → answered, petition reopened
                                                └─(close_after_hours)→ unanswered, closed

One short question takes a one-word answer (满意 / 不满意, 是 / 否, 1 / 2) or three
(是 是 否: contacted, solved, satisfied). Only clear answers are taken: anything else
the reporter says is routed as usual, and a short unclear reply is asked about once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Config
from bot.context import MessageContext, Services
from bot.privacy import mask_personal
from handlers.petitions import staff_name, transition
from models.tables import Followup, Petition

log = logging.getLogger(__name__)

WAITING = ("asked", "clarify")

_SEP = r"[\s,，.。、;；:：!！~～…]*"
_YES = {
    "是": True,
    "1": True,
    "对": True,
    "有": True,
    "否": False,
    "2": False,
    "不": False,
    "没": False,
}
_TRIPLE = re.compile(
    rf"^([是否对有不没12]){_SEP}([是否对有不没12]){_SEP}([是否对有不没12])$"
)
_NEGATIVE_WORDS = (
    "非常不满意",
    "很不满意",
    "不太满意",
    "不满意",
    "还没解决",
    "没有解决",
    "没解决",
    "未解决",
    "还没修好",
    "没修好",
    "不行",
)
_NEGATIVE_TOKENS = ("否", "2", "不", "没有", "差评")
_POSITIVE_WORDS = ("非常满意", "很满意", "挺满意", "比较满意", "基本满意", "满意")
_POSITIVE_EXACT = frozenset(
    {
        "是",
        "1",
        "对",
        "好",
        "好的",
        "可以",
        "解决了",
        "已解决",
        "修好了",
        "是的",
        "满意了",
        "好评",
    }
)
_THANKS = ("谢谢", "感谢", "辛苦", "多谢", "点赞", "满意", "好评")
_NOT_CONTACTED = re.compile(r"没人联系|没有人联系|没联系|没有联系|没人来|没有人来")
_SOLVED = re.compile(r"(?<![没未不])(解决了|修好了|已经好了)")
_EDGE = re.compile(rf"^{_SEP}|{_SEP}$")


@dataclass(frozen=True)
class Answer:
    """What the reporter said; None where they did not say."""

    contacted: bool | None
    solved: bool | None
    satisfied: bool
    reason: str = ""


def _clean(text: str) -> str:
    return _EDGE.sub("", text.strip())


def parse_answer(text: str) -> Answer | None:
    """Read a clear follow-up answer, or None when the text is not one."""
    text = _clean(text)
    if not text or len(text) > 200:
        return None
    triple = _TRIPLE.match(text)
    if triple:
        contacted, solved, satisfied = (_YES[g] for g in triple.groups())
        return Answer(contacted, solved, satisfied)

    for word in _NEGATIVE_WORDS:
        if text.startswith(word):
            return _negative(text, _clean(text[len(word) :]))
    for token in _NEGATIVE_TOKENS:
        rest = text[len(token) :]
        if text.startswith(token) and (not rest or re.match(rf"{_SEP[:-1]}+", rest)):
            return _negative(text, _clean(rest))

    if text in _POSITIVE_EXACT:
        return Answer(True, True, True)
    for word in _POSITIVE_WORDS:
        if text.startswith(word):
            rest = _clean(text[len(word) :])
            if not rest or rest.startswith(_THANKS):
                return Answer(True, True, True)
    return None


def _negative(text: str, reason: str) -> Answer:
    contacted = False if _NOT_CONTACTED.search(text) else None
    return Answer(contacted, bool(_SOLVED.search(text)), False, reason[:200])


def looks_like_answer(text: str) -> bool:
    """A short or follow-up-flavoured reply that may be a muddled answer."""
    text = _clean(text)
    return len(text) <= 6 or (
        len(text) <= 30 and any(w in text for w in ("满意", "回访"))
    )


# --- asking ----------------------------------------------------------------------


def create_followup(
    session: AsyncSession, config: Config, petition: Petition, now: datetime
) -> Followup:
    """Plan the follow-up of a petition just resolved."""
    row = Followup(
        petition_id=petition.id,
        member_id=petition.reporter_id,
        room_id=None if petition.private else petition.room_id,
        due_at=now + timedelta(minutes=config.followup.ask_after_minutes),
        attempts=0,
        status="pending",
        answer="",
    )
    session.add(row)
    return row


async def cancel_followups(session: AsyncSession, petition_id: int) -> None:
    """Drop the unanswered follow-ups of a petition that is open again or withdrawn."""
    await session.execute(
        update(Followup)
        .where(
            Followup.petition_id == petition_id,
            Followup.status.in_(("pending", *WAITING)),
        )
        .values(status="cancelled")
    )


def question(petition: Petition, *, again: bool = False) -> str:
    """The follow-up question: one message, answerable in one word."""
    if again:
        return (
            f"再打扰一下：您反映的 #{petition.id} 已办结，您满意吗？"
            "回复“满意”（1）或“不满意”（2）即可，也可以写上原因。"
        )
    return (
        f"您反映的 #{petition.id} 已办结，回访三问：工作人员联系过您吗？问题解决了吗？"
        "您满意吗？都满意请回复“满意”或1，不满意请回复“不满意”或2并写上原因；"
        "也可逐项回复，如“是 是 否”。"
    )


def _ask(
    services: Services,
    session: AsyncSession,
    row: Followup,
    petition: Petition,
    *,
    again: bool,
) -> None:
    room = row.room_id or row.member_id
    mentions = [row.member_id] if row.room_id else []
    names = [petition.reporter_name] if row.room_id else []
    # asked in private: through the account of the reporter's grid, when one is named
    grid = None if row.room_id else services.config.grid(petition.grid_id or "")
    services.outbox.add(
        session,
        room,
        question(petition, again=again),
        mention_ids=mentions,
        mention_names=names,
        source=f"followup:{row.id}:{row.attempts}",
        account=grid.account if grid is not None and grid.account else None,
    )


async def run_followups(services: Services, session: AsyncSession | None = None) -> int:
    """Ask what is due, ask once more, close what stayed unanswered; returns changes."""
    now = services.now()
    cfg = services.config.followup
    retry = timedelta(hours=cfg.retry_after_hours)
    close = timedelta(hours=cfg.close_after_hours)
    quiet = services.config.in_quiet_hours(now)
    changed = 0
    async with services.transaction(session) as session:
        rows = (
            await session.execute(
                select(Followup, Petition)
                .join(Petition, Petition.id == Followup.petition_id)
                .where(
                    or_(
                        and_(Followup.status == "pending", Followup.due_at <= now),
                        and_(
                            Followup.status.in_(WAITING),
                            Followup.asked_at <= now - min(retry, close),
                        ),
                    )
                )
                .order_by(Followup.id)
            )
        ).all()
        for row, petition in rows:
            if row.status == "pending":
                if petition.status != "resolved":
                    row.status = "cancelled"
                elif quiet:
                    continue  # nobody is asked at night; the morning tick asks
                else:
                    row.attempts, row.asked_at, row.status = 1, now, "asked"
                    _ask(services, session, row, petition, again=False)
            elif now >= row.asked_at + close:
                row.status = "unanswered"
                if petition.status == "resolved":
                    transition(
                        session,
                        petition,
                        "close",
                        services.config.community.bot_id,
                        now,
                        "回访未答复，自动关闭",
                        config=services.config,
                    )
            elif row.attempts < 2 and now >= row.asked_at + retry and not quiet:
                row.attempts = 2
                _ask(services, session, row, petition, again=True)
            else:
                continue
            changed += 1
            log.info(
                "followup step followup=%s petition=%s status=%s attempts=%d",
                row.id,
                petition.id,
                row.status,
                row.attempts,
            )
    if changed:
        services.outbox.wake()
    return changed


# --- reading the answer -----------------------------------------------------------------


async def _waiting_members(session: AsyncSession) -> set[str]:
    """Who has a question waiting, read once per transaction (a batch of messages)."""
    waiting = session.info.get("followup_waiting")
    if waiting is None:
        waiting = set(await session.scalars(
            select(Followup.member_id).where(Followup.status.in_(WAITING))))
        session.info["followup_waiting"] = waiting
    return waiting


async def read_answer(ctx: MessageContext) -> bool:
    """Context handler: take the reporter's clear answer to a follow-up question."""
    answer = parse_answer(ctx.norm.text)
    if answer is None and not looks_like_answer(ctx.norm.text):
        return False  # most messages: no query at all
    if ctx.sender_id not in await _waiting_members(ctx.session):
        return False
    query = (
        select(Followup)
        .where(Followup.member_id == ctx.sender_id, Followup.status.in_(WAITING))
        .order_by(Followup.asked_at.desc(), Followup.id.desc())
        .limit(1)
    )
    if not ctx.is_private:
        query = query.where(Followup.room_id == ctx.message.room_id)
    row = (await ctx.session.scalars(query)).first()
    if row is None:
        return False

    petition = await ctx.session.get(Petition, row.petition_id)
    if petition is None:
        return False
    if answer is None:
        if row.status != "asked" or not looks_like_answer(ctx.norm.text):
            return False  # unrelated chatter goes to the router as usual
        row.status = "clarify"
        ctx.reply(
            f"抱歉，没看明白您的回复。#{petition.id} 办得您满意吗？"
            "请回复“满意”或“不满意”（也可以回复1或2）。",
            mention_sender=True,
        )
        ctx.outcome = "followup:clarify"
        return True

    row.contacted, row.solved, row.satisfied = (
        answer.contacted,
        answer.solved,
        answer.satisfied,
    )
    row.answer = ctx.message.text[:500]
    row.answered_at = ctx.now
    row.status = "answered"
    if answer.satisfied:
        _close(ctx, petition)
    else:
        _reopen(ctx, petition, answer.reason)
    log.info(
        "followup answered followup=%s petition=%s satisfied=%s",
        row.id,
        petition.id,
        answer.satisfied,
    )
    return True


def _close(ctx: MessageContext, petition: Petition) -> None:
    if petition.status == "resolved":
        transition(
            ctx.session,
            petition,
            "close",
            ctx.sender_id,
            ctx.now,
            "回访：满意",
            config=ctx.config,
        )
    ctx.reply(f"感谢您的反馈！#{petition.id} 已办结归档。", mention_sender=True)
    ctx.outcome = "followup:satisfied"


def _reopen(ctx: MessageContext, petition: Petition, reason: str) -> None:
    note = f"回访不满意：{reason}" if reason else "回访不满意"
    if petition.status in ("resolved", "closed"):
        transition(
            ctx.session,
            petition,
            "reopen",
            ctx.sender_id,
            ctx.now,
            note,
            config=ctx.config,
        )
    ctx.reply(
        f"抱歉没有让您满意，#{petition.id} 已重新交给负责人办理，会尽快联系您。",
        mention_sender=True,
    )
    who = petition.assignee_id
    ctx.tell(
        ctx.config.community.staff_room,
        mask_personal(
            f"#{petition.id}（{petition.party}·{petition.category}）回访不满意，"
            f"已重新办理，请尽快联系反映人。原因：{reason or '未说明'}"
        ),
        mention_ids=(who,) if who else (),
        mention_names=(staff_name(ctx.config, who) or who,) if who else (),
        source="followup-reopen",
    )
    ctx.outcome = "followup:unsatisfied"
