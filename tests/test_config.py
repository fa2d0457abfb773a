"""Configuration: defaults, validation that names every bad key, the CLI check."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.toml"


def test_no_file_gives_the_demo_community():
    config = load_config(None)
    assert [g.id for g in config.grids] == ["grid-01", "grid-02", "grid-03"]
    assert config.community.timezone == "Asia/Shanghai"
    assert {s.role for s in config.staff} == {"网格员", "居委会", "物业", "管理员"}


def test_example_file_is_valid():
    config = load_config(EXAMPLE)
    assert config.grids and config.categories


def test_every_bad_key_is_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(
        '[community]\ntimezone = "Mars/Olympus"\ncolour = "red"\n'
        '[web]\nport = "eighty"\n[deadlines]\nsame_day = "25:00"\n'
        '[[staff]]\nid = "wxid_a"\nname = "A"\nrole = "boss"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    for key in ("community.timezone", "community.colour", "web.port", "deadlines.same_day",
                "staff[0].role"):
        assert key in text


def test_broken_toml_is_reported_not_raised(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text("[community\nname=", encoding="utf-8")
    assert main(["check-config", str(path)]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_check_config_accepts_the_example(capsys):
    assert main(["check-config", str(EXAMPLE)]) == 0
    assert "OK" in capsys.readouterr().out


def test_token_without_endpoint_is_an_error(monkeypatch):
    monkeypatch.delenv("WECHATY_PUPPET_SERVICE_ENDPOINT", raising=False)
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "secret-token-1")
    with pytest.raises(ConfigError) as info:
        load_config(None)
    assert "endpoint" in str(info.value)
    assert "secret-token-1" not in str(info.value)


def test_grids_may_name_the_bot_account_in_their_group(tmp_path):
    path = tmp_path / "bot.toml"
    path.write_text(
        '[community]\nbot_id = "wxid_bot_a"\n'
        '[[grids]]\nid = "g1"\nroom_id = "r1@chatroom"\naccount = "wxid_bot_a"\n'
        '[[grids]]\nid = "g2"\nroom_topic = "2网格群"\naccount = "wxid_bot_b"\n',
        encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: grids[1].room_id: a grid with an account needs its room_id"]

    path.write_text(
        '[community]\nbot_id = "wxid_bot_b"\n'
        '[[grids]]\nid = "g1"\nroom_id = "r1@chatroom"\naccount = "wxid_bot_a"\n'
        '[[grids]]\nid = "g2"\nroom_id = "r2@chatroom"\n', encoding="utf-8")
    config = load_config(path)
    assert config.account_for_room("r1@chatroom") == "wxid_bot_a"
    assert config.account_for_room("r2@chatroom") == "wxid_bot_b"  # this process's

    path.write_text(  # every grid has an account, and none is this process's
        '[community]\nbot_id = "wxid_bot_c"\n'
        '[[grids]]\nid = "g1"\nroom_id = "r1@chatroom"\naccount = "wxid_bot_a"\n',
        encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        f"{path}: community.bot_id: 'wxid_bot_c' is the account of no grid (grids name "
        "wxid_bot_a); this process would serve no group"]


def test_the_communitys_own_words_reach_the_running_router(tmp_path):
    from bot.app import build_router
    from bot.normalize import normalize

    words = tmp_path / "my-community"
    words.mkdir()
    (words / "rules.toml").write_text('[petition]\n"冒黑水" = 4\n\n[category."环境"]\n'
                                      '"冒黑水" = 4\n', encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n[community]\n'
                    f'lexicon_dir = "{words}"\n', encoding="utf-8")
    config = load_config(path)
    router = build_router(config)
    result = router.classify(normalize("井里冒黑水好几天了"))
    assert result.intent.value == "petition" and result.category == "环境", router.explain(
        normalize("井里冒黑水好几天了"))

    (words / "rules.toml").write_text('[petition]\n"冒黑水" = "很多"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"community\.lexicon_dir"):
        load_config(path)
    path.write_text(f'[community]\nlexicon_dir = "{tmp_path / "nowhere"}"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="is not a folder"):
        load_config(path)
