"""Pulling details out of a routed message: places, praise targets, reasons, times."""

from __future__ import annotations

import re
from collections.abc import Iterable

from handlers.matching import Evidence
from handlers.rules import Lexicon

_NUM = r"[0-9一二三四五六七八九十两]+"
LOCATION = re.compile(
    rf"(?:[A-Za-z]|{_NUM})\s*(?:号楼|号院|栋楼|栋|幢|号门|楼)"
    rf"(?:\s*的?\s*{_NUM}\s*(?:单元|门洞))?(?:\s*[0-9]{{3,4}}\s*(?:室|号|户)?)?"
    rf"|{_NUM}\s*(?:单元|门洞)(?:\s*[0-9]{{3,4}}\s*(?:室|号|户)?)?"
)
_PLACE = re.compile(
    r"(?:[A-Z][0-9]{0,2}|[\u4e00-\u9fff]{2,4})(?:省|市|县|区|镇|乡|村|街道|小区|花园|大道|路)"
)
TIME = re.compile(
    rf"{_NUM}\s*(?:点|:[0-5][0-9]|号|日|分钟|个小时|小时|天后|周后)"
    r"|(?:周|星期|礼拜)[一二三四五六日天1-7]|[0-9]{1,2}月"
)


class Extractor:
    """Places, names and reasons, with the word lists of one lexicon."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._not_places = frozenset(lexicon.words("not_places"))
        self._not_names = tuple(lexicon.words("not_names"))
        self._name_re = _name_pattern(lexicon)

    def place(self, text: str) -> str | None:
        """A numbered building or a named place (市, 县, 区, 镇, 村, 小区 …)."""
        m = LOCATION.search(text)
        if m:
            return m.group(0)
        for m in _PLACE.finditer(text):
            name = m.group(0)
            if name[-2:] not in self._not_places and name[-3:] not in self._not_places:
                return name
        return None

    def location(self, text: str, ev: Evidence) -> str | None:
        """The building and unit of a petition or praise, as written ("3号楼2单元")."""
        m = LOCATION.search(text)
        if m:
            return re.sub(r"\s+", "", m.group(0))
        places = ev.words("places")
        return places[0].word if places else None

    def targets(self, text: str) -> list[str]:
        """People praised: 王师傅, 小李, 保安大哥 … (at most five)."""
        found: list[str] = []
        for m in self._name_re.finditer(text):
            name = m.group(0)
            if any(text.startswith(x, m.start()) for x in self._not_names):
                continue
            if name[0] == "谢" and m.start() > 0 and text[m.start() - 1] in "谢感多":
                continue  # the thanks itself, as in 谢谢师傅
            if name not in found and not any(name in f for f in found):
                found.append(name)
        return found[:5]

    def praise_reason(self, text: str, words: Iterable[str]) -> str:
        """The praise text less the thanks, the names and the building number."""
        reason = LOCATION.sub(" ", text)
        for word in sorted(set(words), key=len, reverse=True):
            reason = reason.replace(word, " ")
        reason = re.sub(r"^[\s,，。!！@的给为了向和跟]+|[\s,，。!！~～@]+$", "", reason)
        reason = re.sub(r"\s+", " ", reason)
        return reason[:80]


def _name_pattern(lexicon: Lexicon) -> re.Pattern[str]:
    surnames = "".join(lexicon.words("surnames")) or "王李张刘陈杨赵"
    hon = sorted(lexicon.words("honorifics"), key=len, reverse=True)
    roles = sorted(lexicon.words("praise_roles"), key=len, reverse=True)
    parts = [f"[小老][{surnames}]"]
    if hon:
        parts.insert(0, f"[{surnames}](?:{'|'.join(map(re.escape, hon))})")
    if roles:
        parts.append("|".join(map(re.escape, roles)))
    return re.compile("|".join(f"(?:{p})" for p in parts))
