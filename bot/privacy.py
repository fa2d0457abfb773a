"""Masking personal data in anything the bot posts."""

from __future__ import annotations

import re

# Mainland mobile numbers, landlines with area code, and 18-digit ID card numbers.
_ID_CARD = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{3}[\dXx])(?!\d)")
# 13812345678, 138 1234 5678, 138-1234-5678
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[- ]?\d{3,4}(\d{4})(?!\d)")
# Full door numbers: keep the building, hide the flat (3号楼2单元502 -> 3号楼2单元***).
_DOOR = re.compile(r"((?:\d+|[一二三四五六七八九十]+)(?:号楼|栋|幢|号院)(?:\d+单元)?)[-\s]?(\d{3,4})(室|号)?")


_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def mask_personal(text: str) -> str:
    """Hide phone numbers, ID numbers and flat numbers, keeping enough to recognise.

    Full-width digits (an input method's ０１２) are read as digits first.
    """
    text = text.translate(_FULL_WIDTH_DIGITS)
    text = _ID_CARD.sub(lambda m: f"{m.group(1)}********{m.group(2)[-1]}", text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(2)}", text)
    text = _LANDLINE.sub(lambda m: f"{m.group(1)}-****{m.group(2)}", text)
    return _DOOR.sub(lambda m: f"{m.group(1)}***{m.group(3) or ''}", text)
