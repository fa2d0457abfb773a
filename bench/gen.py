"""Generated grid-group traffic and bulk rows for the benchmarks, from a fixed seed.

Every sentence is composed here from short word lists: mostly chit-chat, some
petitions, praise and reminder requests, in 200 grid groups, with the breakfast and
after-dinner bursts of a real day. Bulk generators return plain tuples ready for
``executemany`` so that large databases can be filled quickly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.channels.base import IncomingMessage
from bot.config import Config, GridConfig, StaffConfig, demo_config

SEED = 20260302
TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 0, 0, tzinfo=TZ)  # a Monday
GRIDS = 200
RESIDENTS_PER_GRID = 150
BOT_ID = "wxid_weizhili_bot"
BOT_NAME = "社区小助手"

# Share of each kind of message, in per cent.
MIX = {"chat": 86, "petition": 7, "praise": 4, "reminder": 3}

# Messages per hour of the day (relative): bursts at breakfast and after dinner.
HOURLY = [1, 1, 0, 0, 0, 1, 4, 12, 14, 8, 6, 6, 7, 5, 4, 4, 5, 6, 8, 13, 14, 10, 5, 2]

PLACES = ["阳光", "和平", "桂花", "丁香", "东风", "新华", "锦绣", "翠园", "长青", "滨河",
          "春晖", "金桥", "银杏", "枫林", "望江", "明珠", "海棠", "松鹤", "青石", "南湖"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
GIVEN = ["建国", "秀英", "桂兰", "志强", "晓丽", "海燕", "国华", "玉梅", "文杰", "春生",
         "淑珍", "德胜", "佳怡", "子涵", "浩然", "雪梅", "永红", "凤英", "宏伟", "小燕"]
HONORIFICS = ["阿姨", "大爷", "师傅", "奶奶", "叔叔", "大姐", "老师"]

GREETINGS = ["早上好", "大家早", "各位邻居早上好", "晚上好", "各位邻居晚上好", "早安",
             "中午好", "大家周末愉快", "新的一周加油"]
WEATHER = ["今天太阳不错", "外面风挺大", "好像要下雨了", "今天降温了", "天气预报说有雪",
           "今天空气挺好", "外面雾很大"]
ADVICE = ["出门记得带伞", "老人孩子多穿点", "适合晒晒被子", "开车慢一点", "早点回家",
          "别忘了关窗户"]
GOODS = ["草莓", "鸡蛋", "大白菜", "排骨", "苹果", "豆腐", "西红柿", "带鱼", "馒头"]
SHOPS = ["菜市场", "门口超市", "东门早市", "小区便利店", "社区团购点"]
PRICE = ["挺便宜的", "涨价了", "很新鲜", "卖完了", "在打折", "有点贵"]
ACTIVITIES = ["一起去跳广场舞", "周末一起去爬山", "拼车去火车站", "明早一起去晨练",
              "一起组队打羽毛球", "去老年大学报书法班", "晚饭后去公园散步"]
PETS = ["小狗", "小猫", "柯基", "泰迪", "大橘猫"]
PET_ACTS = ["在楼下晒太阳", "跑到三楼平台了", "在花坛边睡觉", "跟着小朋友跑"]
KIDS = ["孩子今天期中考试", "我家孙子学会走路了", "女儿下周要高考", "儿子放寒假回来了"]
SHORT = ["哈哈", "好的", "谢谢分享", "收到了，谢谢", "[强]", "[呲牙]", "同意", "赞同",
         "是的是的", "太好了", "辛苦了", "好主意", "有道理", "哈哈哈哈", "[玫瑰][玫瑰]"]
GROUP_BUY = ["水果", "大米", "土鸡蛋", "牛奶", "年货", "羊肉"]

THINGS = ["电梯", "楼道灯", "水管", "门禁", "路灯", "单元门", "下水道", "消防栓", "窗户"]
BROKEN = {"电梯": ["坏了", "停了", "卡住了"], "楼道灯": ["坏了", "不亮了"],
          "水管": ["漏水了", "爆了"], "门禁": ["坏了", "刷不开了"], "路灯": ["不亮了", "坏了"],
          "单元门": ["关不上了", "坏了"], "下水道": ["堵了", "反味"],
          "消防栓": ["漏水了", "被挡住了"], "窗户": ["玻璃碎了", "关不上了"]}
ASKS = ["麻烦物业来看看", "谁能管一下", "请尽快修一下", "已经好几天了", "老人上下楼很不方便",
        "希望尽快处理", "麻烦网格员反映一下"]
MESS = ["垃圾桶", "楼道杂物", "绿化带里的垃圾", "小区门口的建筑垃圾", "车棚里的废旧自行车"]
NOISE = ["楼上装修", "楼下广场舞音响", "隔壁狗叫", "楼上小孩跑跳"]
NOISE_TIME = ["半夜十二点", "早上六点", "中午午休时间", "每天晚上"]
SERVICES = ["居住证", "老年卡", "低保", "医保报销", "开具居住证明", "电动车充电桩安装"]

DEEDS = ["修水管", "搬东西", "把快递送上楼", "照顾生病的老人", "清理楼道", "帮忙找回钥匙",
         "修好了路灯", "帮老人买菜", "帮忙推轮椅", "送药上门"]
PRAISE_OPEN = ["谢谢{n}帮忙{d}", "给{n}点赞，{d}很及时", "表扬一下{n}，{d}真热心",
               "{n}真负责，昨天{d}，谢谢", "特别感谢{n}{d}，辛苦了"]

DAYS = ["明天", "后天", "下周一", "下周三", "周六", "这周五"]
DAYPARTS = [("上午", range(8, 12)), ("下午", range(2, 6)), ("晚上", range(7, 10)),
            ("早上", range(7, 10))]
NUMERALS = ["零", "一", "两", "三", "四", "五", "六", "七", "八", "九", "十", "十一"]
TASKS = ["交物业费", "去体检", "取快递", "开家长会", "去社区打疫苗", "给花浇水", "交电费",
         "去银行办卡", "接孙子放学"]


@dataclass(frozen=True)
class Community:
    """The generated city district: grids, residents and the config the bot runs with."""

    config: Config
    residents: dict[str, list[tuple[str, str]]]  # grid id -> [(wechat id, name)]


def make_community(data_dir: Path, database_url: str, grids: int = GRIDS,
                   seed: int = SEED) -> Community:
    """A config of ``grids`` grid groups with staff, and their residents."""
    rng = random.Random(seed)
    base = demo_config(data_dir)
    grid_rows: list[GridConfig] = []
    staff: list[StaffConfig] = []
    residents: dict[str, list[tuple[str, str]]] = {}
    for index in range(1, grids + 1):
        gid = f"grid-{index:03d}"
        name = f"{PLACES[index % len(PLACES)]}社区{index}网格"
        manager = f"wxid_gm_{index:03d}"
        grid_rows.append(GridConfig(gid, name, f"room-{index:03d}", f"{name}居民群", manager))
        staff.append(StaffConfig(manager, f"{rng.choice(SURNAMES)}网格员", "网格员", (gid,)))
        residents[gid] = [(f"wxid_r{index:03d}_{n:03d}", _person(rng))
                          for n in range(RESIDENTS_PER_GRID)]
    staff += [StaffConfig("wxid_jwh_li", "李主任", "居委会"),
              StaffConfig("wxid_wy_wang", "王经理", "物业"),
              StaffConfig("wxid_admin", "管理员", "管理员")]
    config = replace(
        base, grids=tuple(grid_rows), staff=tuple(staff), database_url=database_url,
        outbox=replace(base.outbox, room_interval_seconds=0.0, global_interval_seconds=0.0),
        web=replace(base.web, port=0),
    )
    return Community(config, residents)


def _person(rng: random.Random) -> str:
    surname = rng.choice(SURNAMES)
    roll = rng.random()
    if roll < 0.4:
        return surname + rng.choice(GIVEN)
    if roll < 0.8:
        return surname + rng.choice(HONORIFICS)
    return rng.choice(["小", "老"]) + surname


# --- sentences ---------------------------------------------------------------------


def chat_text(rng: random.Random) -> str:
    """A neighbourly remark that asks nothing of anyone."""
    pick = rng.randrange(9)
    if pick == 0:
        return rng.choice(GREETINGS)
    if pick == 1:
        return f"{rng.choice(WEATHER)}，{rng.choice(ADVICE)}"
    if pick == 2:
        return f"{rng.choice(SHOPS)}的{rng.choice(GOODS)}今天{rng.choice(PRICE)}"
    if pick == 3:
        return f"有没有人{rng.choice(ACTIVITIES)}？"
    if pick == 4:
        return f"谁家的{rng.choice(PETS)}{rng.choice(PET_ACTS)}，好可爱"
    if pick == 5:
        return rng.choice(KIDS)
    if pick == 6:
        return f"团购{rng.choice(GROUP_BUY)}，要的在群里接龙"
    return rng.choice(SHORT)


def petition_text(rng: random.Random) -> str:
    """A repair request, complaint, hazard or question for the office."""
    building, unit = rng.randint(1, 30), rng.randint(1, 6)
    pick = rng.randrange(6)
    if pick <= 2:
        thing = rng.choice(THINGS)
        return (f"{building}号楼{unit}单元的{thing}{rng.choice(BROKEN[thing])}，"
                f"{rng.choice(ASKS)}")
    if pick == 3:
        return f"{building}号楼旁边的{rng.choice(MESS)}好几天没人清理了，味道很大"
    if pick == 4:
        return (f"{rng.choice(NOISE)}{rng.choice(NOISE_TIME)}还很吵，"
                f"影响休息，谁能管管")
    return f"请问{rng.choice(SERVICES)}在哪里办理？需要带什么材料"


def praise_text(rng: random.Random, name: str) -> str:
    """Thanks for a neighbour or a member of staff."""
    return rng.choice(PRAISE_OPEN).format(n=name, d=rng.choice(DEEDS))


def reminder_text(rng: random.Random) -> str:
    """A personal reminder request in everyday words."""
    part, hours = rng.choice(DAYPARTS)
    hour = NUMERALS[rng.choice(list(hours))]
    return f"{rng.choice(DAYS)}{part}{hour}点提醒我{rng.choice(TASKS)}"


# --- message streams ----------------------------------------------------------------


def _moments(rng: random.Random, count: int, per_day: int,
             start: datetime) -> list[datetime]:
    """``count`` sorted times at ``per_day`` a day, following the hourly pattern.

    Fewer than a day's messages are spread over a proportionally shorter "day", so
    that the density of traffic (and of the scheduler's ticks between messages) is
    the same whatever the count.
    """
    moments: list[datetime] = []
    day = 0
    day_seconds = 86400 * min(1.0, count / per_day)
    while len(moments) < count:
        today = min(per_day, count - len(moments))
        base = start + timedelta(days=day)
        hours = rng.choices(range(24), weights=HOURLY, k=today)
        moments += [base + timedelta(seconds=(h + rng.random()) * day_seconds / 24)
                    for h in hours]
        day += 1
    return sorted(moments)


def messages(community: Community, count: int, *, seed: int = SEED, per_day: int = 50_000,
             start: datetime = START, prefix: str = "m") -> list[IncomingMessage]:
    """``count`` incoming messages across every grid group, in time order."""
    rng = random.Random(seed)
    grids = community.config.grids
    kinds = [k for k, share in MIX.items() for _ in range(share)]
    out: list[IncomingMessage] = []
    for number, moment in enumerate(_moments(rng, count, per_day, start)):
        grid = grids[rng.randrange(len(grids))]
        talker_id, talker_name = rng.choice(community.residents[grid.id])
        kind = rng.choice(kinds)
        mentions: tuple[str, ...] = ()
        names: tuple[str, ...] = ()
        addressed = False
        if kind == "chat":
            text = chat_text(rng)
        elif kind == "petition":
            text = petition_text(rng)
        elif kind == "praise":
            target_id, target_name = rng.choice(community.residents[grid.id])
            text = praise_text(rng, target_name)
            if rng.random() < 0.5:
                mentions, names = (target_id,), (target_name,)
                text = f"@{target_name}\u2005{text}"
        else:
            text = reminder_text(rng)
        if kind != "chat" and rng.random() < 0.3:
            mentions, names = (BOT_ID, *mentions), (BOT_NAME, *names)
            text = f"@{BOT_NAME}\u2005{text}"
            addressed = True
        out.append(IncomingMessage(
            message_id=f"{prefix}{number:08d}", room_id=grid.room_id, talker_id=talker_id,
            talker_name=talker_name, text=text, timestamp=moment.astimezone(UTC),
            room_topic=grid.room_topic, mention_ids=mentions, mention_names=names,
            mentions_bot=addressed,
        ))
    return out


def texts(count: int, *, seed: int = SEED) -> list[str]:
    """Message texts only, in the same mix, for the classifier benchmark."""
    rng = random.Random(seed)
    kinds = [k for k, share in MIX.items() for _ in range(share)]
    out = []
    for _ in range(count):
        kind = rng.choice(kinds)
        if kind == "chat":
            out.append(chat_text(rng))
        elif kind == "petition":
            out.append(petition_text(rng))
        elif kind == "praise":
            out.append(praise_text(rng, _person(rng)))
        else:
            out.append(reminder_text(rng))
    return out


# --- bulk rows ------------------------------------------------------------------------


def stamp(moment: datetime, dialect: str = "sqlite") -> str | datetime:
    """A time as the UTC column type stores it (naive UTC text on SQLite)."""
    moment = moment.astimezone(UTC)
    if dialect == "sqlite":
        return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


JOURNAL_COLUMNS = ("message_id", "channel", "room_id", "grid_id", "talker_id",
                   "talker_name", "text", "mention_ids", "mentions_bot", "sent_at",
                   "received_at", "status", "outcome", "processed_at")


def journal_rows(community: Community, msgs: list[IncomingMessage],
                 dialect: str = "sqlite") -> list[tuple[object, ...]]:
    """Journal rows for ``msgs`` as the pipeline would have written them."""
    grid_of = {g.room_id: g.id for g in community.config.grids}
    rows = []
    for m in msgs:
        at = stamp(m.timestamp, dialect)
        rows.append((m.message_id, "", m.room_id, grid_of.get(m.room_id or ""), m.talker_id,
                     m.talker_name, m.text, json.dumps(list(m.mention_ids)),
                     m.mentions_bot, at, at, "done", "none", at))
    return rows


PETITION_COLUMNS = ("grid_id", "room_id", "reporter_id", "reporter_name",
                    "source_message_id", "text", "category", "party", "assignee_id",
                    "location", "keywords", "urgent", "private", "status", "created_at",
                    "updated_at", "response_due", "resolve_due", "accepted_at",
                    "resolved_at", "closed_at", "duplicate_of", "reopen_count", "escalation",
                    "due_at", "due_kind", "followers")
CATEGORIES = [("维修", "物业"), ("环境", "物业"), ("供暖", "物业"), ("安全", "网格员"),
              ("纠纷", "居委会"), ("助老", "网格员"), ("办事", "居委会"), ("其他", "网格员")]
OPEN_STATES = ("reported", "accepted", "in_progress", "transferred", "reopened")


def petition_rows(community: Community, count: int, *, now: datetime, days: int = 365,
                  seed: int = SEED, dialect: str = "sqlite", open_recent: bool = True,
                  ) -> Iterator[tuple[object, ...]]:
    """``count`` petitions over the ``days`` before ``now``; recent ones still open."""
    rng = random.Random(seed + 1)
    grids = community.config.grids
    for number in range(count):
        grid = grids[rng.randrange(len(grids))]
        reporter, name = rng.choice(community.residents[grid.id])
        created = now - timedelta(seconds=rng.random() * days * 86400)
        category, party = rng.choice(CATEGORIES)
        response_due = created + timedelta(hours=2)
        resolve_due = created + timedelta(hours=rng.choice([8, 12, 24]))
        age_days = (now - created).days
        if open_recent and age_days < 3 and rng.random() < 0.6:
            status = rng.choice(OPEN_STATES)
        elif rng.random() < 0.03:
            status = rng.choice(["withdrawn", "duplicate"])
        else:
            status = rng.choice(["resolved", "closed", "closed", "closed"])
        accepted = created + timedelta(minutes=rng.randint(5, 300))
        resolved = accepted + timedelta(hours=rng.randint(1, 30))
        done = status in ("resolved", "closed")
        open_ = status in OPEN_STATES
        due = (response_due if status in ("reported", "transferred", "reopened")
               else resolve_due) if open_ else None
        yield (grid.id, grid.room_id, reporter, name, f"p{number:08d}", petition_text(rng),
               category, party, grid.manager, f"{rng.randint(1, 30)}号楼", "[]",
               rng.random() < 0.05, category == "纠纷", status, stamp(created, dialect),
               stamp(resolved if done else created, dialect), stamp(response_due, dialect),
               stamp(resolve_due, dialect),
               stamp(accepted, dialect) if status != "reported" else None,
               stamp(resolved, dialect) if done else None,
               stamp(resolved + timedelta(days=2), dialect) if status == "closed" else None,
               None, 0, 0, stamp(due, dialect) if due else None,
               ("response" if status in ("reported", "transferred", "reopened")
                else "resolve") if open_ else "", "[]")


FOLLOWUP_COLUMNS = ("petition_id", "member_id", "room_id", "due_at", "asked_at", "attempts",
                    "status", "contacted", "solved", "satisfied", "answer", "answered_at")


def followup_rows(petitions: list[tuple[int, str, str, object]], *, seed: int = SEED,
                  ) -> Iterator[tuple[object, ...]]:
    """Answered follow-ups for resolved petitions: (id, reporter, room, resolved_at)."""
    rng = random.Random(seed + 2)
    for pid, reporter, room, resolved in petitions:
        if rng.random() < 0.2:
            continue
        yes = rng.random() < 0.9
        yield (pid, reporter, room, resolved, resolved, 1, "answered", yes,
               rng.random() < 0.85, rng.random() < 0.8, "满意" if yes else "不满意",
               resolved)


POINT_COLUMNS = ("member_id", "grid_id", "delta", "kind", "ref", "note", "created_at",
                 "created_by", "reverses")
POINT_KINDS = [("praise", 2, "帮邻居{d}"), ("volunteer", 5, "志愿服务：{d}"),
               ("hazard", 3, "报告隐患"), ("suggestion", 5, "建议被采纳")]


def point_rows(community: Community, count: int, *, now: datetime, days: int = 365,
               seed: int = SEED, dialect: str = "sqlite") -> Iterator[tuple[object, ...]]:
    """``count`` ledger lines over the ``days`` before ``now``."""
    rng = random.Random(seed + 3)
    grids = community.config.grids
    for number in range(count):
        grid = grids[rng.randrange(len(grids))]
        member, _ = rng.choice(community.residents[grid.id])
        kind, delta, note = rng.choice(POINT_KINDS)
        created = now - timedelta(seconds=rng.random() * days * 86400)
        yield (member, grid.id, delta, kind, f"bench:{number}",
               note.format(d=rng.choice(DEEDS)), stamp(created, dialect), grid.manager, None)


def member_rows(community: Community, *, now: datetime,
                dialect: str = "sqlite") -> Iterator[tuple[object, ...]]:
    """Every generated resident as a member row."""
    seen = stamp(now, dialect)
    for grid_id, people in community.residents.items():
        for member_id, name in people:
            yield (member_id, name, grid_id, False, seen, seen)


MEMBER_COLUMNS = ("id", "name", "grid_id", "opted_out", "first_seen", "last_seen")


def journal_fill(community: Community, count: int, *, end: datetime, seed: int = SEED,
                 prefix: str = "old", dialect: str = "sqlite",
                 ) -> Iterator[tuple[object, ...]]:
    """``count`` handled journal rows before ``end``, without building message objects."""
    rng = random.Random(seed + 4)
    grids = community.config.grids
    kinds = [k for k, share in MIX.items() for _ in range(share)]
    span = max(count / 50_000, 0.01) * 86400
    for number in range(count):
        grid = grids[rng.randrange(len(grids))]
        talker_id, talker_name = rng.choice(community.residents[grid.id])
        kind = rng.choice(kinds)
        text = chat_text(rng) if kind == "chat" else petition_text(rng)
        at = stamp(end - timedelta(seconds=span * (count - number) / count), dialect)
        yield (f"{prefix}{number:08d}", "", grid.room_id, grid.id, talker_id, talker_name,
               text, "[]", False, at, at, "done", "none" if kind == "chat" else kind, at)


OUTBOX_COLUMNS = ("room_id", "text", "mention_ids", "mention_names", "image_path", "source",
                  "status", "created_at", "not_before", "sent_at", "attempts", "last_error",
                  "platform_id")


def outbox_fill(community: Community, count: int, *, end: datetime, seed: int = SEED,
                dialect: str = "sqlite") -> Iterator[tuple[object, ...]]:
    """``count`` sent replies before ``end``."""
    rng = random.Random(seed + 5)
    grids = community.config.grids
    for number in range(count):
        grid = grids[rng.randrange(len(grids))]
        at = stamp(end - timedelta(seconds=number), dialect)
        yield (grid.room_id, "已收到，网格员会尽快处理。", "[]", "[]", "", f"bench:{number}",
               "sent", at, None, at, 1, "", f"old-{number}")
