"""Petitions: routing, deadlines, the lifecycle matrix, rights, 同问 +1, privacy, residents."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.config import CategoryConfig, StaffConfig, demo_config
from handlers.petitions import (
    OPEN_STATES,
    TRANSITIONS,
    PetitionStateError,
    Routing,
    deadlines,
    route,
    transition,
)
from models.tables import AuditEntry, Petition, PetitionEvent
from tests.conftest import ADMIN, COMMITTEE, GM_1, PROPERTY, local
from tests.petition_steps import NEIGHBOUR, RESIDENT, STAFF_ROOM, events, petition, say

GM_2 = "wxid_gm_qian"
CONFIG = demo_config()


# --- routing -------------------------------------------------------------------------


def test_categories_route_to_their_party_and_assignee():
    grid = CONFIG.grid("grid-01")
    assert route(CONFIG, "维修", grid) == Routing("维修", "物业", PROPERTY)
    assert route(CONFIG, "纠纷", grid) == Routing("纠纷", "居委会", COMMITTEE)
    assert route(CONFIG, "安全", grid) == Routing("安全", "网格员", GM_1)
    assert route(CONFIG, "安全", CONFIG.grid("grid-02")).assignee_id == GM_2


def test_unknown_category_belongs_to_the_grid_manager():
    assert route(CONFIG, "外星人", CONFIG.grid("grid-01")) == Routing(
        "其他", "网格员", GM_1
    )
    assert route(CONFIG, None, CONFIG.grid("grid-02")) == Routing(
        "其他", "网格员", GM_2
    )


def test_per_grid_assignee_wins_even_for_grid_manager_categories():
    config = replace(
        CONFIG,
        categories=(
            CategoryConfig("维修", "物业", "wxid_wy_wang", {"grid-02": "wxid_wy_liu"}),
            CategoryConfig("安全", "网格员", "", {"grid-01": "wxid_safety"}),
            CategoryConfig("其他", "网格员"),
        ),
        staff=(*CONFIG.staff, StaffConfig("wxid_wy_liu", "刘师傅", "物业"),
               StaffConfig("wxid_safety", "安全员", "网格员")),
    )
    assert route(config, "维修", config.grid("grid-02")).assignee_id == "wxid_wy_liu"
    assert route(config, "维修", config.grid("grid-01")).assignee_id == "wxid_wy_wang"
    assert route(config, "安全", config.grid("grid-01")).assignee_id == "wxid_safety"
    assert route(config, "安全", config.grid("grid-03")).assignee_id == "wxid_gm_sun"


def test_party_without_assignee_falls_to_its_staff_then_the_grid_manager():
    config = replace(
        CONFIG,
        categories=(CategoryConfig("环境", "物业"), CategoryConfig("其他", "网格员")),
    )
    assert route(config, "环境", config.grid("grid-01")).assignee_id == PROPERTY
    nobody = replace(config, staff=tuple(s for s in config.staff if s.role != "物业"))
    assert route(nobody, "环境", nobody.grid("grid-01")) == Routing(
        "环境", "物业", GM_1
    )


# --- deadlines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created", "urgent", "response", "same_day"),
    [
        # Friday afternoon, office hours: two hours later, same-day 21:00
        (
            local(2026, 12, 4, 15, 0),
            False,
            local(2026, 12, 4, 17, 0),
            local(2026, 12, 4, 21, 0),
        ),
        # 16:30: one hour today, one after Saturday's opening
        (
            local(2026, 12, 4, 16, 30),
            False,
            local(2026, 12, 5, 9, 30),
            local(2026, 12, 5, 9, 30),
        ),
        # 22:00 Friday: two hours after Saturday 08:30; same-day moves to Saturday
        (
            local(2026, 12, 4, 22, 0),
            False,
            local(2026, 12, 5, 10, 30),
            local(2026, 12, 5, 21, 0),
        ),
        # just after midnight: the same day's opening
        (
            local(2026, 12, 5, 0, 10),
            False,
            local(2026, 12, 5, 10, 30),
            local(2026, 12, 5, 21, 0),
        ),
        # Sunday is closed: Monday 10:30
        (
            local(2026, 12, 6, 11, 0),
            False,
            local(2026, 12, 7, 10, 30),
            local(2026, 12, 7, 10, 30),
        ),
        # early morning before opening
        (
            local(2026, 12, 7, 7, 0),
            False,
            local(2026, 12, 7, 10, 30),
            local(2026, 12, 7, 21, 0),
        ),
        # urgent: 30 minutes at any hour, also at night and on Sunday
        (
            local(2026, 12, 4, 23, 50),
            True,
            local(2026, 12, 5, 0, 20),
            local(2026, 12, 5, 21, 0),
        ),
        (
            local(2026, 12, 6, 3, 0),
            True,
            local(2026, 12, 6, 3, 30),
            local(2026, 12, 6, 21, 0),
        ),
        # 20:30: less than an hour to 21:00, so tomorrow's 21:00
        (
            local(2026, 12, 4, 20, 30),
            True,
            local(2026, 12, 4, 21, 0),
            local(2026, 12, 5, 21, 0),
        ),
    ],
)
def test_deadlines(created, urgent, response, same_day):
    assert deadlines(CONFIG, created, urgent) == (response, same_day)


# --- the lifecycle matrix ------------------------------------------------------------

ALL_STATES = (
    "reported",
    "accepted",
    "in_progress",
    "transferred",
    "resolved",
    "closed",
    "reopened",
    "withdrawn",
    "duplicate",
)
EXPECTED = {  # action -> the states it may start from
    "accept": {"reported", "transferred", "reopened"},
    "progress": {"accepted", "in_progress", "transferred", "reopened"},
    "resolve": set(OPEN_STATES),
    "close": {"resolved"},
    "reopen": {"resolved", "closed"},
    "transfer": set(OPEN_STATES),
    "return": set(OPEN_STATES) - {"reported"},
    "withdraw": set(OPEN_STATES),
    "duplicate": set(OPEN_STATES),
}


class _Session:
    def __init__(self) -> None:
        self.added: list[object] = []

    def add(self, row: object) -> None:
        self.added.append(row)


def _bare(status: str) -> Petition:
    now = local(2026, 12, 4, 15, 0)
    return Petition(
        id=7,
        status=status,
        urgent=False,
        reopen_count=0,
        escalation=0,
        created_at=now,
        updated_at=now,
        response_due=now,
        resolve_due=now,
        assignee_id=PROPERTY,
        due_at=None,
        due_kind="",
    )


@pytest.mark.parametrize("status", ALL_STATES)
@pytest.mark.parametrize("action", sorted(TRANSITIONS))
def test_transition_matrix(action, status):
    session = _Session()
    p = _bare(status)
    now = local(2026, 12, 4, 16, 0)
    if status in EXPECTED[action]:
        transition(session, p, action, GM_1, now, "说明", config=CONFIG)  # type: ignore[arg-type]
        assert p.status == TRANSITIONS[action][1]
        (event,) = session.added
        assert isinstance(event, PetitionEvent)
        assert (event.from_status, event.to_status, event.actor_id, event.note) == (
            status,
            p.status,
            GM_1,
            "说明",
        )
        assert (p.due_at is None) == (p.status not in OPEN_STATES)
    else:
        with pytest.raises(PetitionStateError) as info:
            transition(session, p, action, GM_1, now, config=CONFIG)  # type: ignore[arg-type]
        assert p.status == status and session.added == []
        assert f"#{p.id} 目前是" in str(info.value)


def test_watched_deadline_moves_with_the_lifecycle():
    session = _Session()
    p = _bare("reported")
    p.resolve_due = local(2026, 12, 4, 21, 0)
    p.escalation = 2
    transition(session, p, "accept", PROPERTY, local(2026, 12, 4, 16, 0), config=CONFIG)  # type: ignore[arg-type]
    assert (p.due_at, p.due_kind, p.escalation) == (
        local(2026, 12, 4, 21, 0),
        "resolve",
        0,
    )
    transition(
        session,
        p,
        "progress",
        PROPERTY,
        local(2026, 12, 4, 18, 0),
        "明早上门",  # type: ignore[arg-type]
        config=CONFIG,
    )
    assert p.due_at == local(2026, 12, 5, 21, 0)
    transition(session, p, "transfer", GM_1, local(2026, 12, 5, 9, 0), config=CONFIG)  # type: ignore[arg-type]
    assert (p.due_at, p.due_kind) == (local(2026, 12, 5, 11, 0), "response")
    transition(session, p, "resolve", GM_1, local(2026, 12, 5, 10, 0), config=CONFIG)  # type: ignore[arg-type]
    assert p.due_at is None and p.resolved_at == local(2026, 12, 5, 10, 0)
    transition(session, p, "reopen", RESIDENT, local(2026, 12, 5, 11, 0), config=CONFIG)  # type: ignore[arg-type]
    assert p.reopen_count == 1 and p.resolved_at is None and p.due_kind == "response"


# --- through the pipeline ------------------------------------------------------------


async def test_report_accept_progress_resolve_writes_history(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/受理 1", sender=PROPERTY, name="王经理")
    await say(app, clock, "/进展 1 已联系电工", sender=PROPERTY, name="王经理")
    await say(app, clock, "/办结 1 已换灯泡", sender=PROPERTY, name="王经理")

    history = [
        (e.action, e.from_status, e.to_status, e.actor_id, e.note)
        for e in await events(app, 1)
    ]
    assert history == [
        ("report", "", "reported", RESIDENT, ""),
        ("accept", "reported", "accepted", PROPERTY, ""),
        ("progress", "accepted", "in_progress", PROPERTY, "已联系电工"),
        ("resolve", "in_progress", "resolved", PROPERTY, "已换灯泡"),
    ]
    texts = channel.texts("grid-01")
    assert any("#1 已受理" in t for t in texts)
    assert any("有新进展：已联系电工" in t for t in texts)


async def test_impossible_change_gets_a_clear_reply_and_changes_nothing(
    app, channel, clock
):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "撤回 1")
    before = len(await events(app, 1))
    await say(app, clock, "/受理 1", sender=PROPERTY)
    assert "#1 目前是“已撤回”，不能受理" in channel.sent[-1].text
    assert (await petition(app, 1)).status == "withdrawn"
    assert len(await events(app, 1)) == before


@pytest.mark.parametrize(
    ("sender", "text", "allowed"),
    [
        (PROPERTY, "/受理 1", True),  # 物业 on a 物业 matter
        (PROPERTY, "/受理 2", False),  # 物业 on a 居委会 matter (纠纷)
        (GM_1, "/受理 2", True),  # grid manager in their grid
        (GM_2, "/受理 1", False),  # grid manager of another grid
        (COMMITTEE, "/受理 1", True),  # 居委会: everywhere
        (ADMIN, "/受理 2", True),  # 管理员: everywhere
        (RESIDENT, "/受理 1", False),  # residents: never
        (PROPERTY, "/催办 1", False),  # 催办 is for managers
        (GM_1, "/催办 1", True),
        (GM_2, "/查看 1", False),
    ],
)
async def test_permission_matrix(app, channel, clock, sender, text, allowed):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(
        app,
        clock,
        "@社区小助手 楼上邻居天天半夜吵闹",
        mentions_bot=True,
        sender=NEIGHBOUR,
        name="李大爷",
    )
    assert (await petition(app, 2)).category == "纠纷"
    outcome = await say(app, clock, text, sender=sender, name="某人")
    number = int(text.split()[-1])
    async with app.services.db.session() as session:
        refused = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.allowed.is_(False))
        )
    changed = [e.action for e in await events(app, number)][1:]
    if allowed:
        assert refused == 0
        assert changed or text.startswith("/查看")
    else:
        assert refused == 1, channel.texts()
        assert changed == []
        assert outcome.startswith("command:")
        assert any(
            w in channel.sent[-1].text
            for w in ("不能处理", "不在您负责", "只有工作人员")
        )


async def test_transfer_moves_ownership_and_the_old_party_loses_it(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/转派 1 居委会 属于公共照明改造", sender=PROPERTY)
    p = await petition(app, 1)
    assert (p.status, p.party, p.assignee_id) == ("transferred", "居委会", COMMITTEE)
    assert any("转给您办理" in t for t in channel.texts(STAFF_ROOM))
    await say(app, clock, "/受理 1", sender=PROPERTY)
    assert "由居委会负责" in channel.sent[-1].text
    await say(app, clock, "/受理 1", sender=COMMITTEE)
    assert (await petition(app, 1)).status == "accepted"


async def test_return_sends_it_back_to_the_grid_manager(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/受理 1", sender=PROPERTY)
    await say(app, clock, "/退回 1", sender=PROPERTY)
    assert "请写上退回原因" in channel.sent[-1].text
    await say(app, clock, "/退回 1 不归物业管", sender=PROPERTY)
    p = await petition(app, 1)
    assert (p.status, p.party, p.assignee_id) == ("reported", "网格员", GM_1)
    assert any("被退回" in t and "不归物业管" in t for t in channel.texts(STAFF_ROOM))


async def test_urge_tells_the_assignee_and_is_recorded(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/催办 1", sender=GM_1)
    urge = [m for m in channel.sent if m.room_id == STAFF_ROOM and "催办" in m.text]
    assert urge and urge[0].mention_ids == (PROPERTY,)
    assert [e.action for e in await events(app, 1)] == ["report", "urge"]


async def test_list_filters_by_status_grid_and_category(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "2号楼暖气不热", room="grid-02", sender=NEIGHBOUR)
    await say(app, clock, "/受理 2", sender=PROPERTY)
    await say(app, clock, "/列表 已受理", sender=ADMIN, room=None)
    assert "#2" in channel.sent[-1].text and "#1 " not in channel.sent[-1].text
    await say(app, clock, "/列表 维修 grid-01", sender=ADMIN, room=None)
    assert "#1" in channel.sent[-1].text and "#2" not in channel.sent[-1].text
    await say(app, clock, "/list", sender=GM_2, room=None)
    assert "#2" in channel.sent[-1].text and "#1 " not in channel.sent[-1].text
    await say(app, clock, "/列表 火星", sender=ADMIN, room=None)
    assert "看不懂" in channel.sent[-1].text


async def test_view_shows_details_and_history_to_staff(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了，电话13812345678")
    await say(app, clock, "/受理 1", sender=PROPERTY)
    await say(app, clock, "/查看 1", sender=GM_1, room=None)
    text = channel.sent[-1].text
    assert "3号楼楼道灯坏了" in text and "办理记录" in text and "受理" in text
    assert channel.sent[-1].room_id == GM_1


async def test_help_lists_only_what_the_caller_may_run(app, channel, clock):
    await say(app, clock, "/帮助")
    resident_help = channel.sent[-1].text
    await say(app, clock, "/帮助", sender=GM_1)
    staff_help = channel.sent[-1].text
    assert "/我的" in resident_help and "/受理" not in resident_help
    assert "/统计" not in resident_help and "/转派" not in resident_help
    for command in (
        "/受理",
        "/转派",
        "/进展",
        "/办结",
        "/退回",
        "/催办",
        "/列表",
        "/查看",
        "/统计",
    ):
        assert command in staff_help


async def test_english_alias_and_did_you_mean(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/accept 1", sender=PROPERTY)
    assert (await petition(app, 1)).status == "accepted"
    await say(app, clock, "/转排 1 物业", sender=GM_1)
    assert "您是不是想用“/转派”" in channel.sent[-1].text


# --- urgent --------------------------------------------------------------------------


async def test_urgent_mentions_assignee_and_grid_manager_at_once(app, channel, clock):
    clock.set(local(2026, 12, 5, 2, 0))  # the middle of the night
    await say(app, clock, "厨房有煤气味")
    p = await petition(app, 1)
    assert p.urgent and p.response_due == local(2026, 12, 5, 2, 30)
    alerts = [m for m in channel.sent if "【紧急】" in m.text]
    assert {m.room_id for m in alerts} == {"grid-01", STAFF_ROOM}
    for alert in alerts:
        assert GM_1 in alert.mention_ids


# --- 同问 +1 ---------------------------------------------------------------------------


async def test_similar_report_is_linked_not_numbered(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    clock.advance(timedelta(hours=5))
    outcome = await say(
        app, clock, "3号楼楼道灯也不亮了", sender=NEIGHBOUR, name="李大爷"
    )
    assert outcome == "petition:follow:1"
    async with app.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Petition)) == 1
    assert (await petition(app, 1)).followers == [NEIGHBOUR]
    assert "#1" in channel.sent[-1].text and "同问 +1" in channel.sent[-1].text
    assert channel.sent[-1].mention_ids == (NEIGHBOUR,)

    await say(app, clock, "/查询 1", sender=NEIGHBOUR)
    assert "#1 目前：待受理" in channel.sent[-1].text
    await say(app, clock, "/办结 1 已换灯泡", sender=PROPERTY)
    told = [
        m
        for m in channel.sent
        if m.room_id == "grid-01" and "同问" in m.text and "已办结" in m.text
    ]
    assert told and told[0].mention_ids == (NEIGHBOUR,)


@pytest.mark.parametrize(
    ("first", "second", "hours", "linked"),
    [
        (
            "3号楼楼道灯坏了",
            "3号楼2单元楼道灯不亮",
            1,
            True,
        ),  # location inside the other
        ("3号楼楼道灯坏了", "5号楼的楼道灯也坏了", 1, False),  # another building
        ("1号楼电梯坏了", "11号楼电梯坏了", 1, False),  # not a prefix match
        ("3号楼楼道灯坏了", "3号楼电梯坏了", 1, False),  # same place, other thing
        ("3号楼楼道灯坏了", "3号楼楼道灯坏了", 73, False),  # outside the 72 hours
        ("2号楼暖气不热", "3号楼楼道灯坏了", 1, False),  # another category
    ],
)
async def test_duplicate_rules(app, clock, first, second, hours, linked):
    await say(app, clock, first)
    clock.advance(timedelta(hours=hours))
    outcome = await say(app, clock, second, sender=NEIGHBOUR)
    assert outcome.startswith("petition:follow") is linked


async def test_same_person_repeating_is_told_their_number(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "3号楼楼道灯坏了")
    assert "您反映的问题已在办理，编号 #1" in channel.sent[-1].text
    assert (await petition(app, 1)).followers == []


async def test_staff_marks_a_duplicate(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "3号楼电梯坏了", sender=NEIGHBOUR)
    await say(app, clock, "/重复 2 1", sender=GM_1)
    second = await petition(app, 2)
    assert (second.status, second.duplicate_of) == ("duplicate", 1)
    assert (await petition(app, 1)).followers == [NEIGHBOUR]


# --- privacy -------------------------------------------------------------------------


async def test_dispute_is_acknowledged_without_details(app, channel, clock):
    await say(
        app,
        clock,
        "@社区小助手 楼上邻居天天半夜吵闹，我电话13812345678",
        mentions_bot=True,
    )
    group = channel.texts("grid-01")
    assert group == ["已登记诉求 #1，工作人员会私下联系您，请留意消息。"]
    staff = channel.texts(STAFF_ROOM)
    assert staff and "私下联系" in staff[0] and "13812345678" not in staff[0]
    assert "138****5678" in staff[0]

    await say(app, clock, "/查看 1", sender=COMMITTEE, room="grid-01")
    assert "楼上邻居" not in " ".join(channel.texts("grid-01"))
    assert any("楼上邻居" in t for t in channel.texts(COMMITTEE))
    await say(app, clock, "/列表", sender=COMMITTEE, room="grid-01")
    assert "内容仅工作人员可见" in channel.sent[-1].text


async def test_group_replies_mask_phone_id_and_door_numbers(app, channel, clock):
    await say(
        app, clock, "3号楼2单元502漏水到楼下，电话13812345678，身份证110101199003071234"
    )
    await say(app, clock, "/列表", sender=GM_1)
    await say(
        app, clock, "/进展 1 已联系3号楼2单元502住户 13987654321", sender=PROPERTY
    )
    everything = " ".join(channel.texts())
    for secret in ("13812345678", "110101199003071234", "502", "13987654321"):
        assert secret not in everything
    assert "3号楼2单元***" in everything


# --- residents -----------------------------------------------------------------------


async def test_mine_lists_own_and_followed(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "2号楼暖气不热", sender=NEIGHBOUR)
    await say(app, clock, "3号楼2单元楼道灯不亮", sender=NEIGHBOUR)  # 同问 #1
    await say(app, clock, "/我的", sender=NEIGHBOUR)
    text = channel.sent[-1].text
    assert "#1" in text and "#2" in text


@pytest.mark.parametrize(
    "question",
    ["1号诉求怎么样了", "#1怎么样了？", "1号报修处理了吗", "/查询 1", "查询 1"],
)
async def test_status_question_in_plain_words(app, channel, clock, question):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "/受理 1", sender=PROPERTY)
    await say(app, clock, "/进展 1 电工明早上门", sender=PROPERTY)
    outcome = await say(app, clock, question)
    assert outcome in ("petition:status", "command:查询")
    assert "#1 目前：处理中" in channel.sent[-1].text
    assert "电工明早上门" in channel.sent[-1].text


async def test_others_cannot_query_or_withdraw(app, channel, clock):
    await say(app, clock, "3号楼楼道灯坏了")
    await say(app, clock, "1号诉求怎么样了", sender=NEIGHBOUR)
    assert "没有找到您反映的 #1" in channel.sent[-1].text
    await say(app, clock, "撤回 1", sender=NEIGHBOUR)
    assert "只能撤回您自己反映的诉求" in channel.sent[-1].text
    assert (await petition(app, 1)).status == "reported"
    await say(app, clock, "撤回 1")
    assert (await petition(app, 1)).status == "withdrawn"


async def test_private_report_uses_the_members_grid(app, channel, clock):
    await say(
        app, clock, "今天天气不错", sender=NEIGHBOUR, room="grid-02"
    )  # seen in grid-02
    await say(app, clock, "2号楼暖气不热", sender=NEIGHBOUR, room=None)
    p = await petition(app, 1)
    assert (p.grid_id, p.room_id) == ("grid-02", None)


def test_built_in_categories_go_to_the_communitys_own_staff(config) -> None:
    """A config that lists its own staff but keeps the built-in categories: the demo
    ids those categories name are nobody here, so the role decides who takes it."""
    from handlers.petitions import party_assignee

    own = replace(config, staff=(StaffConfig("wxid_my_wuye", "刘经理", "物业"),
                                 StaffConfig("wxid_my_jwh", "孙主任", "居委会"),
                                 StaffConfig("wxid_gm_zhao", "赵网格员", "网格员",
                                             grids=("grid-01",))))
    grid = own.grid("grid-01")
    assert route(own, "维修", grid).assignee_id == "wxid_my_wuye"
    assert party_assignee(own, "物业", "维修", grid) == "wxid_my_wuye"
    assert route(config, "维修", config.grid("grid-01")).assignee_id == "wxid_wy_wang"  # demo
