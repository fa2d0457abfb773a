"""Arrival: what a channel brings is made storable, and nothing is dropped."""

from __future__ import annotations

from bot.arrival import ID_MAX, fitted_id, storable
from tests.fakes import make_message


def test_clean_messages_pass_unchanged() -> None:
    message = make_message("3号楼楼道灯坏了😀", mention_names=("王师傅",))
    assert storable(message) is message


def test_nul_and_half_emoji_become_replacement_marks() -> None:
    message = make_message("灯\x00坏了\ud83d", name="张\udc00阿姨", topic="1网格\x00",
                           mention_names=("李\ud800",))
    fixed = storable(message)
    assert fixed.text == "灯\ufffd坏了\ufffd" and fixed.talker_name == "张\ufffd阿姨"
    assert fixed.room_topic == "1网格\ufffd" and fixed.mention_names == ("李\ufffd",)
    for value in (fixed.text, fixed.talker_name, fixed.room_topic):
        value.encode("utf-8")  # raises on a surrogate


def test_long_ids_fit_and_stay_distinct() -> None:
    first, second = "a" * 300 + "1", "a" * 300 + "2"
    assert len(fitted_id(first)) == ID_MAX and fitted_id(first) != fitted_id(second)
    assert fitted_id(first) == fitted_id(first)  # the same id every time it arrives
    assert fitted_id("wxid_ok") == "wxid_ok"
    message = storable(make_message("x", room=first, sender="wxid_\x00", message_id=second,
                                    mentions=("m" * 200,)))
    assert len(message.room_id) == len(message.message_id) == ID_MAX
    assert message.talker_id == "wxid_\ufffd" and len(message.mention_ids[0]) == ID_MAX
