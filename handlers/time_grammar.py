"""The time-word grammar: numerals, the rule vocabulary and scanning a message.

Finds runs of adjacent time words in a prepared message (NFKC, a few traditional
characters folded) and says which slot (recurrence, day, part of day, clock,
relative time) each match fills; turning them into dates is time_resolve's job.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# every part-of-day word → the key whose default time it takes
_DAYPART_KEY: dict[str, str] = {
    "早上": "早上", "早晨": "早上", "清晨": "早上", "早": "早上", "明早": "早上",
    "今早": "早上", "明晨": "早上", "今晨": "早上",
    "上午": "上午",
    "中午": "中午", "正午": "中午",
    "下午": "下午", "午后": "下午",
    "傍晚": "傍晚",
    "晚上": "晚上", "晚间": "晚上", "晚": "晚上", "夜里": "晚上", "夜间": "晚上",
    "夜": "晚上", "今晚": "晚上", "明晚": "晚上", "昨晚": "晚上", "今夜": "晚上", "明夜": "晚上",
    "深夜": "半夜", "半夜": "半夜", "午夜": "半夜",
    "凌晨": "凌晨",
}  # fmt: skip

_TRADITIONAL = str.maketrans(
    "點週禮號鐘時後個兩這裡從淩晝臘於節慶",
    "点周礼号钟时后个两这里从凌昼腊于节庆",
)
_EDGE_PUNCT = " \t\r\n，。！？、,.!?;；:：~～…—-「」“”\"'（）()【】[]"

# ---------------------------------------------------------------- numbers

_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
              "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}  # fmt: skip
_N = r"(?:\d{1,4}|[零〇一二两三四五六七八九十廿卅]{1,4})"
_N2 = r"(?:\d{1,2}|[零〇一二两三四五六七八九十廿卅]{1,3})"


_CN_NUMBER = re.compile(
    r"[一二两三四五六七八九]?十[一二三四五六七八九]?|[零〇一二两三四五六七八九]+"
    r"|廿[一二三四五六七八九]?|卅一?"
)


def cn_number(text: str) -> int:
    """Arabic or Chinese numeral (up to 9999) → int; raises ValueError."""
    if text.isdecimal():
        return int(text)
    if not _CN_NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text!r}")
    if text[0] in "廿卅":
        units = _CN_DIGITS[text[1]] if text[1:] else 0
        return (20 if text[0] == "廿" else 30) + units
    if "十" in text:
        tens, _, units = text.partition("十")
        value = (_CN_DIGITS[tens] if tens else 1) * 10
        return value + (_CN_DIGITS[units] if units else 0)
    value = 0
    for ch in text:
        value = value * 10 + _CN_DIGITS[ch]
    return value


# ---------------------------------------------------------------- grammar

_WEEK = r"(?:周|星期|礼拜)"
_WD = r"[一二三四五六七日天1-7]"
_WD_VALUE = {**{c: i for i, c in enumerate("一二三四五六")}, "七": 6, "日": 6, "天": 6,
             **{str(i + 1): i for i in range(7)}}  # fmt: skip
_DAYPART_RE = (
    r"早上|早晨|清晨|上午|中午|正午|午后|下午|傍晚|晚上|晚间|夜里|夜间|深夜|半夜|午夜|凌晨"
    r"|[早晚夜](?=\d|[二两三四五六七八九十]+[点时])"
)
_REL_DAY = {
    "大大后天": 4, "大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明儿": 1,
    "今天": 0, "今日": 0, "今儿": 0, "昨天": -1, "前天": -2, "大前天": -3,
    "明早": 1, "明晨": 1, "明晚": 1, "明夜": 1, "今早": 0, "今晨": 0, "今晚": 0,
    "今夜": 0, "昨晚": -1, "昨日": -1, "前日": -2, "后日": 2, "大后日": 3, "本日": 0,
}  # fmt: skip
_YEAR_WORD = {"前年": -2, "去年": -1, "今年": 0, "明年": 1, "后年": 2}
_NOT_DAY_OF_MONTH = "楼门线院房室单元床窗口车位机桥栋层排座期届次份路号文人件"


def _alt(words: dict[str, int]) -> str:
    return "|".join(sorted(words, key=len, reverse=True))


def _rx(pattern: str) -> re.Pattern[str]:
    """Compile a rule, expanding «WEEK», «WD», «N» and «N2»."""
    macros = {"WEEK": _WEEK, "WD": _WD, "N": _N, "N2": _N2}
    return re.compile(re.sub(r"«(\w+)»", lambda m: macros[m[1]], pattern))


_MONTH_REL = r"(?P<rel>下下个?月|下个?月|上上个?月|上个?月|本月|这个?月|今个月)"
# tried in this order at each position; the first that matches wins
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("workdays", _rx(
        r"(?:每个?|所有)?工作日(?:每天)?|每个?«WEEK»一(?:到|至|-|~)«WEEK»?五"
        r"|«WEEK»一(?:到|至)«WEEK»?五每天"
    )),
    ("weekend", _rx(r"每个?(?:周末|«WEEK»六[和、]?«WEEK»?[日天])")),
    ("weekly", _rx(r"每个?«WEEK»(?P<wds>«WD»(?:(?:[、,，/和及与跟]|以及)?«WEEK»?«WD»)*)")),
    ("monthly", _rx(r"每个?月的?(?P<d>«N2»)[号日]")),
    ("daily_part", _rx(r"每个?(?P<dp>晚上?|早上?|早晨|夜里)")),
    ("daily", _rx(r"每一?[天日]的?|天天|日日")),
    ("rel_hm", _rx(
        r"(?P<pre>再?过)?(?:(?P<h>«N»|半)个?(?P<hh>半)?(?:小时|钟头))?"
        r"(?:(?P<m>«N»)分钟?|(?P<qk>[一两三])刻钟)?(?P<suf>以后|之后|过后|后|以前|之前|前)?"
    )),
    ("rel_days", _rx(
        r"(?P<pre>再?过)?(?P<n>«N»)(?P<unit>天|日|个?星期|个?礼拜|周|个月)"
        r"(?P<suf>以后|之后|过后|后|以前|之前|前)?"
    )),
    ("abs_date", _rx(
        r"(?:(?P<y>\d{4}|\d{2}|[零〇一二三四五六七八九]{4}|[零〇一二三四五六七八九]{2})年"
        r"|(?P<yw>前年|去年|今年|明年|后年))?(?P<m>«N2»)月份?(?P<d>«N2»)"
        r"(?:[号日]|(?![点时:：分个天年月周\d零〇一二两三四五六七八九十]))"
    )),
    ("num_date", _rx(r"(?P<y>\d{4})(?P<sep>[-/. ])(?P<m>\d{1,2})(?P=sep)(?P<d>\d{1,2})(?![\d:])[日号]?")),
    ("md_slash", _rx(r"(?<![\d/])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?![\d/])[日号]?")),
    ("month_end", _rx(_MONTH_REL + r"?(?P<mon>«N2»)?月?的?(?:月底|(?<=月)底)")),
    ("month_dom", _rx(_MONTH_REL + r"的?(?P<d>«N2»)[号日]")),
    ("rel_day", _rx(_alt(_REL_DAY))),
    ("weekday", _rx(
        r"(?P<pre>下下个?|下一?个?|这一?个?|本|今个|上上个?|上一?个?)?«WEEK»(?:的?«WEEK»)?"
        r"(?P<wd>«WD»|末)"
    )),
    ("dom", _rx(r"(?:(?P<d>«N2»)号|(?P<dd>\d{1,2})日)(?![" + _NOT_DAY_OF_MONTH + r"])")),
    ("daypart", _rx(_DAYPART_RE)),
    ("hhmm", _rx(
        r"(?P<h>\d{1,2})[:：](?P<m>\d{2})(?:[:：]\d{2})?(?!\d)"
        r"(?:\s?(?P<ampm>[aApP])\.?[mM]\.?)?"
    )),
    ("ampm", _rx(r"(?P<h>\d{1,2})\s?(?P<ampm>[aApP])\.?[mM]\b\.?")),
    ("clock", _rx(
        r"(?P<h>«N2»)(?P<unit>点钟?|时)"
        r"(?:(?P<half>半)|(?P<q>[一三13])刻"
        r"|(?P<m>«N2»)(?:分钟?|(?![个天号日月年周岁人次点小]))|整)?"
    )),
]  # fmt: skip
# which slot each rule fills; two matches filling one slot never merge
_SLOT = {
    "workdays": "rec", "weekend": "rec", "weekly": "rec", "monthly": "rec",
    "daily_part": "rec", "daily": "rec", "rel_hm": "rel", "rel_days": "day",
    "abs_date": "day", "num_date": "day", "md_slash": "day", "month_end": "day", "month_dom": "day",
    "rel_day": "day", "weekday": "day", "dom": "day", "daypart": "part",
    "hhmm": "clock", "ampm": "clock", "clock": "clock",
}  # fmt: skip
_JOINER = re.compile(r"[\s的]*")
_CLOCK_BLOCKERS = "这那有几第快慢早晚多少好大小高低差些一"
_ONE_OCLOCK_AFTER = "午上晨夜天日号凌 "


@dataclass
class _Expr:
    """The slots filled by one run of adjacent time words."""

    start: int
    end: int
    parts: dict[str, tuple[str, re.Match[str]]] = field(default_factory=dict)


def _match_at(text: str, pos: int) -> tuple[str, re.Match[str]] | None:
    for name, pattern in _RULES:
        found = pattern.match(text, pos)
        if found is None or found.end() == pos:
            continue
        if name == "rel_hm" and not _valid_rel_hm(found):
            continue
        if name == "rel_days" and not (found["pre"] or found["suf"]):
            continue
        if name == "clock" and not _plausible_clock(text, found):
            continue
        if not _numbers_ok(found):
            continue
        return name, found
    return None


def _numbers_ok(found: re.Match[str]) -> bool:
    for group in ("h", "m", "d", "dd", "n", "y"):
        if group in found.re.groupindex and found[group] and found[group] != "半":
            try:
                cn_number(found[group])
            except ValueError:
                return False
    return True


def _valid_rel_hm(found: re.Match[str]) -> bool:
    return bool(
        (found["h"] or found["m"] or found["qk"]) and (found["pre"] or found["suf"])
    )


def _plausible_clock(text: str, found: re.Match[str]) -> bool:
    """Reject decimals (八点八, 24点5度) and 'a little' (快一点, 一点都不, 这两点)."""
    minute = found["m"]
    if minute and len(minute) == 1 and not text.startswith("分", found.end()):
        return False  # a one-digit minute without 分 reads as a decimal
    if found["h"] not in ("一", "两", "二") or found["half"] or found["q"] or minute:
        return True
    before = text[found.start() - 1] if found.start() > 0 else ""
    after = text[found.end() : found.end() + 1]
    if (before and before in _CLOCK_BLOCKERS) or (after and after in "点儿都也"):
        return False
    if found["h"] == "一" and found["unit"] == "点" and before:
        # 一点 mostly means 'a little': a time only after a day or part of day
        return before in _ONE_OCLOCK_AFTER
    return True


def _scan(text: str) -> list[_Expr]:
    """Find runs of time words; each run fills each slot at most once."""
    exprs: list[_Expr] = []
    pos = 0
    while pos < len(text):
        hit = _match_at(text, pos)
        if hit is None:
            pos += 1
            continue
        expr = _Expr(start=pos, end=pos)
        while hit is not None:
            name, found = hit
            slot = _SLOT[name]
            if slot in expr.parts:
                break
            expr.parts[slot] = (name, found)
            expr.end = found.end()
            gap = _JOINER.match(text, expr.end)
            hit = _match_at(text, gap.end() if gap else expr.end)
        exprs.append(expr)
        pos = expr.end
    return exprs


def _merge(exprs: list[_Expr]) -> list[_Expr]:
    """Join the first run with later ones that add new slots (明天提醒我下午3点…)."""
    if not exprs:
        return []
    taken = [exprs[0]]
    slots = dict(exprs[0].parts)
    for expr in exprs[1:]:
        if any(slot in slots for slot in expr.parts):
            break
        if "rel" in slots or "rel" in expr.parts:
            break
        slots.update(expr.parts)
        taken.append(expr)
    merged = _Expr(start=taken[0].start, end=taken[-1].end, parts=slots)
    return [merged, *taken]


@dataclass(frozen=True)
class _Text:
    """A message as written and as scanned (NFKC, a few traditional characters)."""

    original: str
    prepared: str
    offsets: tuple[int, ...]  # original index of each prepared character, and the end

    @classmethod
    def of(cls, original: str) -> _Text:
        pieces: list[str] = []
        offsets: list[int] = []
        for index, ch in enumerate(original):
            folded = unicodedata.normalize("NFKC", ch).translate(_TRADITIONAL)
            pieces.append(folded)
            offsets.extend([index] * len(folded))
        offsets.append(len(original))
        return cls(original, "".join(pieces), tuple(offsets))

    def words(self, spans: list[tuple[int, int]]) -> str:
        """The original characters of the given prepared spans, joined."""
        return "".join(
            self.original[self.offsets[a] : self.offsets[b]] for a, b in spans
        )

    def rest(self, spans: list[tuple[int, int]]) -> str:
        """The original text without the given prepared spans, ends stripped."""
        pieces: list[str] = []
        pos = 0
        for start, end in sorted(spans):
            pieces.append(self.original[pos : self.offsets[start]])
            pos = self.offsets[end]
        pieces.append(self.original[pos:])
        return _strip(re.sub(r"\s{2,}", " ", "".join(pieces)))


def _strip(text: str) -> str:
    return text.strip(_EDGE_PUNCT)
