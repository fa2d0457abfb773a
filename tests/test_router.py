"""The router: normalisation-dependent cases, each intent, urgency, places, targets."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jieba
import jieba.finalseg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.normalize import normalize
from handlers import evaluation, evaluation_cli
from handlers.intents import Intent
from handlers.router import LexiconError, Router

BOT = "社区小助手"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Router:
    saved = set(jieba.finalseg.Force_Split_Words)
    built = Router(cache_dir=tmp_path_factory.mktemp("jieba-cache"))
    yield built
    jieba.finalseg.Force_Split_Words.clear()
    jieba.finalseg.Force_Split_Words.update(saved)


def route(router: Router, text: str, addressed: bool = False):  # type: ignore[no-untyped-def]
    return router.classify(normalize(text, [BOT]), addressed=addressed)


def acted(router: Router, text: str, addressed: bool = False) -> str:
    """The intent the pipeline would act on (confident, or addressed)."""
    result = route(router, text, addressed)
    if result.intent is not Intent.NONE and (addressed or result.confident):
        return result.intent.value
    return "none"


# --- normalisation and segmentation (field reports B01, B04, B05, B06) -----------


def test_traditional_is_routed_like_simplified_b01(router: Router) -> None:
    trad = route(router, "我要投訴樓上漏水")
    simp = route(router, "我要投诉楼上漏水")
    assert trad.intent is simp.intent is Intent.PETITION
    assert trad.confident and trad.category == simp.category == "纠纷"


def test_full_width_digits_give_the_same_building_b04(router: Router) -> None:
    full = route(router, "３号楼电梯坏了")
    half = route(router, "3号楼电梯坏了")
    assert full.location == half.location == "3号楼"
    assert full.category == "维修" and full.confident


def test_suggest_freq_is_tuned_and_does_not_leak_b05(tmp_path: Path) -> None:
    saved = set(jieba.finalseg.Force_Split_Words)
    try:
        before = jieba.lcut("提醒我交物业费")
        own = Router(cache_dir=tmp_path)
        assert own.tokens("提醒我交物业费")[-3:] == ["我", "交", "物业费"]
        assert jieba.finalseg.Force_Split_Words == saved
        assert jieba.lcut("提醒我交物业费") == before
        assert own._tok is not jieba.dt
    finally:
        jieba.finalseg.Force_Split_Words.clear()
        jieba.finalseg.Force_Split_Words.update(saved)


def test_jieba_cache_file_is_written_in_the_given_folder_b06(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    Router(cache_dir=cache)
    assert (cache / "jieba.weizhili.cache").is_file()


def test_emoji_codes_count_as_words(router: Router) -> None:
    result = route(router, "王师傅修暖气[强][强]")
    assert result.intent is Intent.PRAISE
    assert result.targets == ["王师傅"]


def test_building_a_router_prints_no_jieba_chatter(tmp_path: Path) -> None:
    code = (
        "from pathlib import Path; import sys; from handlers.router import Router; "
        "Router(cache_dir=Path(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    assert "prefix dict" not in done.stderr and "Loading model" not in done.stderr
    assert (tmp_path / "cache" / "jieba.weizhili.cache").is_file()


def test_router_modules_stay_small() -> None:
    handlers = Path(__file__).resolve().parents[1] / "handlers"
    for name in ("router", "rules", "matching", "extract", "intent_scores"):
        lines = (handlers / f"{name}.py").read_text(encoding="utf-8").count("\n")
        assert lines <= 400, f"handlers/{name}.py has {lines} lines"


# --- petitions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("3号楼楼道灯坏了好几天了", "维修"),
        ("家里暖气不热，屋里才十五度", "供暖"),
        ("垃圾桶都满了 两天没人收了 埋汰死了", "环境"),
        ("有人在楼道里飞线充电，太危险了", "安全"),
        ("楼上天天半夜蹦跶，吵得睡不着", "纠纷"),
        ("我妈腿脚不好一个人住，想请社区帮忙找人陪她去医院", "助老"),
        ("请问低保怎么申请，要带什么材料", "办事"),
        ("建议在小区里多安几个长椅", "建议"),
        ("电悌坏了咋整", "维修"),
        ("暖气片拔凉拔凉的咋整啊", "供暖"),
    ],
)
def test_petitions_get_their_category(router: Router, text: str, category: str) -> None:
    result = route(router, text)
    assert result.intent is Intent.PETITION and result.confident, router.explain(
        normalize(text)
    )
    assert result.category == category


@pytest.mark.parametrize(
    "text",
    [
        "咱们小区门口那条路挖开快一个月了，出门只能绕道",
        "东门外的公交站牌被撤了，老人都不知道在哪等车",
        "楼后那个工地天天夜间施工，孩子没法睡觉",
        "十五路公交车太难等了，早上半小时都不来一趟",
        "小区北边那家超市倒闭了，办的储值卡找谁退",
        "我们这几栋楼手机信号差，打电话老断",
    ],
)
def test_city_matters_without_a_complaint_word_are_petitions(
    router: Router, text: str
) -> None:
    assert acted(router, text) == "petition", router.explain(normalize(text))


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("水管半夜爆了，网格员小孙十分钟就赶到帮着关了阀门，谢谢她", "小孙"),
        ("我爸在菜市场走丢了，是派出所的钱警官给送回家的，感谢", "钱警官"),
        ("电梯卡在半截吓坏了，保安大哥一直在外面陪着说话，谢谢他", "保安"),
    ],
)
def test_thanks_at_the_end_of_a_trouble_story_is_praise(
    router: Router, text: str, target: str
) -> None:
    result = route(router, text)
    assert acted(router, text) == "praise", router.explain(normalize(text))
    assert any(target in t for t in result.targets)


@pytest.mark.parametrize(
    "text",
    [
        "老家来电话说那边零下三十度了，让我们多穿点",
        "这天冻得手都伸不出来，赶紧回家猫着吧",
        "孩子说学校下礼拜开运动会，让家长去看",
    ],
)
def test_family_chatter_about_cold_and_school_is_none(
    router: Router, text: str
) -> None:
    assert acted(router, text) == "none", router.explain(normalize(text))


@pytest.mark.parametrize(
    "text",
    [
        "今天真冷啊",
        "楼道灯已经修好了，谢谢大家关心",
        "不用了不用了 已经好了",
        "没事了 刚才是我家自己跳闸了",
        "电梯修好了吗？",
        "你家暖气热吗？",
        "有人知道几点来水吗",
        "我手机坏了 最近回消息慢",
        "通知：明天上午9点至下午4点计划停水，请大家提前储水",
        "收到，我下午过去看一下",
        "我家暖气挺热的 二十三度",
    ],
)
def test_not_petitions(router: Router, text: str) -> None:
    assert acted(router, text) == "none", router.explain(normalize(text))


def test_negation_cancels_a_problem_word(router: Router) -> None:
    assert acted(router, "我家没漏水，放心吧") == "none"
    result = route(router, "电梯还没修好，都三天了")
    assert result.intent is Intent.PETITION and result.confident


def test_a_report_put_as_a_question_is_still_a_report(router: Router) -> None:
    assert acted(router, "我家暖气不热，你们家热吗") == "petition"
    assert acted(router, "你们家暖气热吗") == "none"


# --- urgency and places ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "楼道里一股煤气味",
        "着火了 5号楼3楼窗户往外冒黑烟",
        "水管爆了跑水了 楼道里都是水",
        "电梯里有人被困 4号楼 快",
        "楼下王大爷摔倒了起不来",
        "独居老人好几天没见了，敲门没人应",
        "2单元电梯坏了，有人困在里面了！快来人！",
        "电梯卡住了，里面有人出不来",
    ],
)
def test_urgent_matters(router: Router, text: str) -> None:
    result = route(router, text)
    assert result.intent is Intent.PETITION and result.confident
    assert result.urgent, router.explain(normalize(text))


def test_not_urgent(router: Router) -> None:
    assert not route(router, "3号楼楼道灯坏了").urgent
    assert acted(router, "不是煤气味 是谁家酸菜缸的味儿") == "none"
    assert acted(router, "我家孙子摔了一跤 没事 已经好了") == "none"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("3号楼2单元的楼道灯坏了", "3号楼2单元"),
        ("5栋电梯门关不上", "5栋"),
        ("8号楼1单元502漏水了", "8号楼1单元502"),
        ("地下车库的灯坏了一半，黑乎乎的", "地下车库"),
    ],
)
def test_location(router: Router, text: str, where: str) -> None:
    assert route(router, text).location == where


# --- praise ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target", "reason_part"),
    [
        ("谢谢5号楼张阿姨帮我拿快递", "张阿姨", "帮我拿快递"),
        ("给王师傅点个赞，修水管很及时", "王师傅", "修水管"),
        ("表扬@李姐 天天扫雪", "李姐", "扫雪"),
        ("多亏了小刘陪我去医院", "小刘", "陪我去医院"),
        ("感謝物業張師傅，冒雪把單元門口清出一條路", "张师傅", "清出"),
    ],
)
def test_praise_targets_and_reason(
    router: Router, text: str, target: str, reason_part: str
) -> None:
    result = route(router, text)
    assert result.intent is Intent.PRAISE and result.confident, router.explain(
        normalize(text)
    )
    assert target in result.targets
    assert reason_part in result.reason


@pytest.mark.parametrize(
    "text",
    [
        "好的谢谢",
        "谢谢大家",
        "谢谢提醒",
        "谢谢物业，又停水了",
        "收到谢谢",
        "那就谢谢张哥了",
    ],
)
def test_thanks_that_are_not_praise(router: Router, text: str) -> None:
    assert acted(router, text) != "praise"


def test_sarcastic_thanks_is_a_complaint(router: Router) -> None:
    result = route(router, "谢谢物业，又停水了")
    assert result.intent is Intent.PETITION and result.category == "维修"


def test_thanks_once_solved_is_praise(router: Router) -> None:
    result = route(router, "电梯修好了 谢谢王师傅 辛苦了")
    assert result.intent is Intent.PRAISE and result.targets == ["王师傅"]


# --- reminders -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "addressed"),
    [
        ("明天下午三点提醒我去社区医院体检", True),
        ("明天上午九点提醒我交物业费", False),
        ("每天晚上八点提醒我吃降压药", False),
        ("礼拜六上午提醒大家来活动室领春联", False),
        ("后天早上七点叫我去早市", True),
        ("小助手 明天早上七点叫我起床", False),
    ],
)
def test_reminders(router: Router, text: str, addressed: bool) -> None:
    result = route(router, text, addressed)
    assert result.intent is Intent.REMINDER, router.explain(normalize(text))
    assert result.category is None
    assert addressed or result.confident


@pytest.mark.parametrize(
    "text",
    [
        "谢谢提醒 我差点忘了交",
        "我昨天提醒过他了",
        "温馨提醒 明天交物业费最后一天",
        "明早要记得叫我",
        "我家孩子说明天要去同学家玩 叫我早点做饭",
    ],
)
def test_not_reminders(router: Router, text: str) -> None:
    assert acted(router, text) != "reminder"


# --- addressing, commands, explain -----------------------------------------------


def test_addressed_messages_take_weaker_evidence(router: Router) -> None:
    text = "暖气不热"
    assert route(router, text, addressed=True).intent is Intent.PETITION
    assert acted(router, "@社区小助手 你好", addressed=True) == "none"


def test_commands_are_not_routed(router: Router) -> None:
    result = route(router, "/受理 12 电梯坏了")
    assert result.intent is Intent.NONE and not result.confident


def test_explain_names_the_rules(router: Router) -> None:
    text = router.explain(normalize("3号楼楼道灯坏了好几天了"))
    assert "坏了" in text and "petition" in text and "category" in text
    assert "tokens:" in text


def test_the_trace_is_written_only_when_explaining(router: Router) -> None:
    for text in ("3号楼楼道灯坏了好几天了", "谢谢王师傅帮忙修水管", "今天真冷啊"):
        quiet = route(router, text)
        told = router.classify(normalize(text, [BOT]), explain=True)
        assert quiet.trace == [] and told.trace
        assert quiet.as_dict() == told.as_dict()


# --- the matcher against a plain forward-maximum-matching reference --------------


def _reference_hits(router: Router, text: str) -> list[tuple[int, str]]:
    """The lexicon words of ``text`` found the slow, obvious way: at each place the
    longest word that starts there; a single character only where the tokenizer cut
    it alone or where it is a negation."""
    matcher = router._matcher
    entries, anywhere = matcher.entries, matcher._anywhere
    single, offset = set(), 0
    for tok in router.tokens(text):
        offset = text.find(tok, offset)
        if offset < 0:
            break
        if len(tok) == 1:
            single.add(offset)
        offset += len(tok)
    longest = max(map(len, entries))
    found, i = [], 0
    while i < len(text):
        best = None
        for k in range(min(len(text), i + longest), i, -1):
            piece = text[i:k]
            if piece in entries and (k - i > 1 or i in single or piece in anywhere):
                best = piece
                break
        if best is None:
            i += 1
        else:
            found.append((i, best))
            i += len(best)
    return found


def _matched(router: Router, text: str) -> list[tuple[int, str]]:
    return [(h.pos, h.word) for h in router._matcher.match(text).hits]


def test_matcher_agrees_with_the_reference_on_the_devset(router: Router) -> None:
    rows = evaluation.load_tsv(Path(__file__).parent / "data" / "devset.tsv")
    texts = [normalize(r.text, [BOT]).text for r in rows]
    with_hits = 0
    for text in texts:
        expected = _reference_hits(router, text)
        assert _matched(router, text) == expected, text
        with_hits += bool(expected)
    assert with_hits > len(texts) // 2  # the comparison saw real matches


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_matcher_agrees_with_the_reference_on_mixed_text(
    router: Router, data: st.DataObject
) -> None:
    words = sorted(router._matcher.entries)
    piece = st.one_of(
        st.sampled_from(words),
        st.sampled_from(list("的了楼灯修坏不没我是🙂😀a1 ，。？")),
        st.text(min_size=1, max_size=3),
    )
    text = "".join(data.draw(st.lists(piece, max_size=12)))
    assert _matched(router, text) == _reference_hits(router, text)


# --- lexicon files ---------------------------------------------------------------


def test_a_community_lexicon_adds_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(
        '[petition]\n"冒黑水" = 4\n\n[category."环境"]\n"冒黑水" = 4\n'
        '\n[remove]\nwords = ["埋汰"]\n',
        encoding="utf-8",
    )
    (tmp_path / "userdict.txt").write_text("冒黑水 50 v\n", encoding="utf-8")
    own = Router(tmp_path, cache_dir=tmp_path / "cache")
    result = own.classify(normalize("井里冒黑水"))
    assert result.intent is Intent.PETITION and result.category == "环境"
    assert "埋汰" not in own.lexicon.petition


def test_a_bad_weight_is_named(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text('[petition]\n"坏了" = "很多"\n', "utf-8")
    with pytest.raises(LexiconError, match="坏了"):
        Router(tmp_path, cache_dir=tmp_path / "cache")


# --- evaluation helpers ----------------------------------------------------------


def test_evaluate_counts_by_hand(router: Router) -> None:
    rows = [
        evaluation.Row("1", "3号楼楼道灯坏了好几天了", "petition", "维修"),
        evaluation.Row("2", "今天真冷啊", "none"),
        evaluation.Row("3", "谢谢王师傅帮忙修水管", "praise"),
        evaluation.Row("4", "今天吃饺子了", "petition", "维修"),  # a deliberate miss
    ]
    report = evaluation.evaluate(router, rows, "hand")
    assert report.confusion["petition"]["petition"] == 1
    assert report.confusion["petition"]["none"] == 1
    assert report.per_intent["petition"]["recall"] == 0.5
    assert report.per_intent["petition"]["precision"] == 1.0
    assert report.per_intent["none"]["precision"] == 0.5
    assert report.category_accuracy == 1.0
    assert report.errors[0].row.id == "4"
    assert "worst misrouted" in evaluation.format_report(report)


def test_load_tsv_skips_comments_and_reads_split(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text(
        "# a comment\nid\ttext\tintent\tcategory\tsplit\n"
        "a\t暖气不热\tpetition\t供暖\tdev\nb\t@社区小助手 你好\tnone\t\ttest\n",
        encoding="utf-8",
    )
    assert [r.id for r in evaluation.load_tsv(path)] == ["a", "b"]
    test_rows = evaluation.load_tsv(path, "test")
    assert [r.id for r in test_rows] == ["b"] and test_rows[0].addressed


def test_gov_title_is_the_text_before_the_first_full_stop() -> None:
    assert evaluation.gov_title("标题一句。正文。还有") == "标题一句"


def test_classify_command_prints_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("WEIZHILI_DATA", str(tmp_path))
    monkeypatch.delenv("WEIZHILI_CONFIG", raising=False)
    monkeypatch.setattr(
        "sys.stdin",
        io.StringIO(
            "3号楼楼道灯坏了好几天了\n今天真冷啊\n@社区小助手 明天下午三点提醒我去体检\n"
        ),
    )
    assert evaluation_cli.main_classify(["--now", "2026-12-01T09:00:00+08:00"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["intent"] for x in lines] == ["petition", "none", "reminder"]
    assert lines[0]["category"] == "维修" and lines[0]["party"] == "物业"
    assert "楼道灯" in lines[0]["keywords"]
    assert lines[2]["acts"] and lines[2]["text"].startswith("明天")
    assert "time" in lines[2]


def test_classify_names_a_bad_now(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        evaluation_cli.main_classify(["--now", "bogus"])
    assert info.value.code == 2 and "--now 'bogus'" in capsys.readouterr().err


@pytest.mark.parametrize("rules", [
    '[petition]\n"" = 4\n', '[petition]\n" " = 4\n', '[petition]\n"漏水" = nan\n',
    '[praise]\n"好人" = 1e308\n', '[lists]\nurgent = ["", "冒烟"]\n',
])
def test_words_and_weights_that_would_break_routing_are_refused(
        tmp_path: Path, rules: str) -> None:
    (tmp_path / "rules.toml").write_text(rules, encoding="utf-8")
    with pytest.raises(LexiconError):
        Router(tmp_path, cache_dir=tmp_path / "cache")
