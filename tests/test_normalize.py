"""Normalisation at the edge: NFKC, traditional → simplified, emoji codes, mentions."""

from __future__ import annotations

import pytest

from bot.normalize import normalize, strip_mentions
from bot.privacy import mask_personal


def test_full_width_digits_fold():
    # field report B04
    assert normalize("３号楼电梯坏了").text == normalize("3号楼电梯坏了").text == "3号楼电梯坏了"


def test_traditional_becomes_simplified_and_original_is_kept():
    # field report B01
    result = normalize("我要投訴樓上漏水")
    assert result.text == "我要投诉楼上漏水"
    assert result.original == "我要投訴樓上漏水"


def test_emoji_codes_are_lifted_out():
    result = normalize("王师傅修得真快[强][强][微笑]")
    assert result.text == "王师傅修得真快 赞 赞"
    assert result.emoji == ("强", "强", "微笑")


def test_unknown_bracket_text_is_left_alone():
    assert normalize("见[附件]").text == "见[附件]"


@pytest.mark.parametrize("separator", ["\u2005", " ", ""])
def test_mentions_are_removed_by_name_whatever_the_separator(separator):
    # field report B26
    text = f"@社区小助手(物业){separator}/表扬 @王 师傅{separator}修水管很及时"
    result = normalize(text, ["社区小助手(物业)", "王 师傅"])
    assert result.text == "/表扬 修水管很及时"


def test_emoji_nickname_mention_is_removed():
    assert strip_mentions("@🌸李阿姨\u2005谢谢", ["🌸李阿姨"]).strip() == "谢谢"


def test_control_characters_are_dropped_and_length_is_bounded():
    result = normalize("灯\x00坏\x07了" + "啊" * 5000, limit=100)
    assert result.text.startswith("灯坏了")
    assert len(result.text) <= 100 and result.truncated


def test_masking_of_personal_numbers():
    masked = mask_personal("电话13812345678 身份证23020319600101123X 住3号楼2单元502室")
    assert "13812345678" not in masked and "138****5678" in masked
    assert "19600101" not in masked
    assert "502" not in masked and "3号楼2单元" in masked


def test_other_peoples_mentions_stay_visible_to_the_router():
    norm = normalize("@社区小助手\u2005表扬@李姐\u2005天天扫雪", ["社区小助手"], keep_names=["李姐"])
    assert norm.text == "表扬 天天扫雪"  # what commands read
    assert norm.for_routing().text == "表扬 李姐 天天扫雪"  # what the router reads


def test_accents_stacked_on_chinese_characters_are_dropped() -> None:
    assert normalize("楼道有煤\u0300\u0301气味").text == "楼道有煤气味"
    assert normalize("café").text == "café"  # a Latin accent stays


def test_phone_numbers_written_with_spaces_dashes_or_full_width_are_masked() -> None:
    for written in ("138 1234 5678", "138-1234-5678", "１３８１２３４５６７８"):
        masked = mask_personal(f"联系我{written}")
        assert masked == "联系我138****5678", written


def test_a_petition_line_masks_before_it_cuts() -> None:
    from handlers.petitions import short

    line = short("13号楼垃圾没人清，我身份证21010219480315123x，电话13612345678")
    assert "19480315" not in line and "210102********x" in line and "3612345" not in line
