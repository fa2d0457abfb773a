"""Text normalisation, done once at the edge of the pipeline.

Order matters: mentions are removed first (their U+2005 separator would not survive
NFKC), then NFKC folds full-width forms, OpenCC turns traditional characters into
simplified ones, and WeChat emoji codes such as ``[强]`` are lifted out of the text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

import opencc

# WeChat's built-in emoji arrive as bracketed codes. The ones that carry meaning for
# the router are mapped to a word; the rest are simply removed.
EMOJI_MEANING = {
    "强": "赞",
    "赞": "赞",
    "点赞": "赞",
    "鼓掌": "赞",
    "玫瑰": "赞",
    "抱拳": "谢谢",
    "合十": "谢谢",
    "爱心": "赞",
    "心": "赞",
    "握手": "",
    "OK": "",
    "ok": "",
    "流泪": "",
    "大哭": "",
    "快哭了": "",
    "发怒": "",
    "难过": "",
    "捂脸": "",
    "微笑": "",
    "呲牙": "",
    "偷笑": "",
    "憨笑": "",
    "奸笑": "",
    "机智": "",
    "耶": "",
    "皱眉": "",
    "叹气": "",
    "炸弹": "",
    "便便": "",
    "太阳": "",
    "月亮": "",
    "咖啡": "",
    "蛋糕": "",
    "红包": "",
    "庆祝": "",
    "烟花": "",
    "福": "",
    "胜利": "",
    "拳头": "",
    "勾引": "",
    "嘿哈": "",
    "天啊": "",
    "Emm": "",
    "社会社会": "",
    "旺柴": "",
    "好的": "",
    "打脸": "",
    "哇": "",
    "翻白眼": "",
    "666": "",
    "让我看看": "",
    "苦涩": "",
    "裂开": "",
}
_EMOJI_CODE = re.compile(r"\[([A-Za-z0-9\u4e00-\u9fff]{1,6})\]")
_SPACES = re.compile(r"[ \t\u3000\u00a0]+")
# Accents stacked on Chinese characters (煤̀气) mean nothing and would hide the word.
_MARKS_ON_HAN = re.compile(
    "(?<=[\u3400-\u9fff\uf900-\ufaff])"
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
MAX_NORMALISED_CHARS = 2000


@dataclass(frozen=True)
class NormalizedText:
    """A message's text, cleaned for understanding; ``original`` is kept for the record."""

    original: str
    text: str  # mentions removed: what commands read
    emoji: tuple[str, ...] = ()
    truncated: bool = False
    routing_text: str = ""  # other people's mentions kept as plain names: what the router reads

    def for_routing(self) -> NormalizedText:
        """The same message as the router should see it ("表扬@李姐…" still names 李姐)."""
        if not self.routing_text or self.routing_text == self.text:
            return self
        return replace(self, text=self.routing_text)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def strip_mentions(text: str, names: Iterable[str]) -> str:
    """Remove ``@name`` for each mentioned name, whatever separator follows it."""
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        text = re.sub("@" + re.escape(name) + r"[\u2005\u0020\u3000]?", " ", text)
    # Whatever else still looks like a WeChat mention (name then U+2005) goes too.
    return re.sub(r"@[^@\u2005\n]{1,32}\u2005", " ", text)


def to_simplified(text: str) -> str:
    """Traditional → simplified characters (OpenCC ``t2s``)."""
    return _t2s().convert(text)


def normalize(
    text: str,
    mention_names: Iterable[str] = (),
    limit: int = MAX_NORMALISED_CHARS,
    keep_names: Iterable[str] = (),
) -> NormalizedText:
    """Normalise one message; ``keep_names`` are mentions the router should still see."""
    original = text
    truncated = len(text) > limit
    if truncated:
        text = text[:limit]
    keep = [n for n in keep_names if n]
    cleaned = _clean(strip_mentions(text, [*mention_names, *keep]))
    routing = cleaned.text
    if keep:
        for name in sorted(set(keep), key=len, reverse=True):
            text = re.sub("@" + re.escape(name) + r"[\u2005\u0020\u3000]?", f" {name} ", text)
        routing = _clean(strip_mentions(text, mention_names)).text
    return NormalizedText(original, cleaned.text, cleaned.emoji, truncated, routing)


def _clean(text: str) -> NormalizedText:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if ch in "\n" or unicodedata.category(ch)[0] != "C")
    text = to_simplified(_MARKS_ON_HAN.sub("", text))

    emoji: list[str] = []

    def _lift(match: re.Match[str]) -> str:
        code = match.group(1)
        if code not in EMOJI_MEANING:
            return match.group(0)
        emoji.append(code)
        meaning = EMOJI_MEANING[code]
        return f" {meaning} " if meaning else " "

    text = _EMOJI_CODE.sub(_lift, text)
    text = _SPACES.sub(" ", text).strip()
    return NormalizedText(text, text, tuple(emoji))
