"""Secrets stay secret: not in logs (tracebacks included), not in replies; config mode checked."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import warn_if_config_readable
from bot.config import load_config
from bot.logs import setup_logging
from bot.pipeline import APOLOGY
from tests.conftest import drain
from tests.fakes import make_message

TOKEN = "puppet_token_5f1c2b9a-SECRET"
SECRET = "session-secret-88c1d0e7f6-4b2a9e31d5"


@pytest.fixture
def operator_log() -> Iterator[io.StringIO]:
    """The command line's logging, with the secrets to redact, written to a buffer."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging("DEBUG", [TOKEN, SECRET])
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_secrets_are_redacted_in_messages_and_tracebacks(operator_log):
    log = logging.getLogger("weizhili.test")

    log.info("connecting endpoint=127.0.0.1:8788 token=%s", TOKEN)
    log.warning("cookie signed with %s", SECRET)
    try:
        raise RuntimeError(f"handshake refused for token {TOKEN} and secret {SECRET}")
    except RuntimeError:
        log.exception("channel failed")

    err = operator_log.getvalue()
    assert TOKEN not in err and SECRET not in err
    assert err.count("***") >= 4
    assert "RuntimeError: handshake refused for token *** and secret ***" in err


async def test_a_failing_handler_neither_leaks_into_the_reply_nor_the_log(
    app, channel, clock, monkeypatch, operator_log
):
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"upstream said: bad credentials {TOKEN} / {SECRET}")

    monkeypatch.setattr(app.services.router, "classify", broken)
    message = make_message(
        "@社区小助手\u2005楼道灯坏了",
        at=clock.now(),
        mentions=("wxid_weizhili_bot",),
        mention_names=("社区小助手",),
        mentions_bot=True,
    )

    outcome = await app.pipeline.deliver(message)
    await drain(app)

    assert outcome == "error"
    assert channel.texts() == [APOLOGY]
    err = operator_log.getvalue()
    assert "message failed" in err and "RuntimeError" in err
    assert TOKEN not in err and SECRET not in err


def _config_file(tmp_path: Path, mode: int, secret: bool = True) -> Path:
    path = tmp_path / "weizhili.toml"
    body = f'data_dir = "{tmp_path / "data"}"\n'
    if secret:
        body += f'[web]\nsecret = "{SECRET}"\n'
    path.write_text(body, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    ("mode", "secret", "warned"),
    [
        (0o644, True, True),
        (0o640, True, True),
        (0o600, True, False),
        (0o644, False, False),
    ],
)
def test_start_up_warns_when_the_config_with_secrets_is_readable_by_others(
    tmp_path, caplog, mode, secret, warned
):
    config = load_config(_config_file(tmp_path, mode, secret))
    caplog.set_level(logging.WARNING)

    assert warn_if_config_readable(config) is warned

    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert bool(lines) is warned
    assert all(SECRET not in line for line in lines)
    if warned:
        assert "chmod 600" in lines[0]


def test_token_from_the_environment_does_not_count_as_in_the_file(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", TOKEN)
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_ENDPOINT", "127.0.0.1:8788")
    config = load_config(_config_file(tmp_path, 0o644, secret=False))

    assert config.wechaty.token == TOKEN
    assert warn_if_config_readable(config) is False
