"""Hostile and odd input: nothing crashes, nothing hangs, replies stay short.

Property-based (hypothesis) over normalisation, routing, time parsing, command
parsing and the whole pipeline. The time bound is a hang detector, not a speed goal.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.app import App
from bot.clock import ManualClock
from bot.config import Config
from bot.normalize import normalize
from handlers.intents import Classification, Intent
from handlers.registry import commands
from handlers.timeparse import TimeParse, parse_time
from models.tables import InboundMessage, OutboundMessage
from tests.conftest import TZ
from tests.fakes import RecordingChannel, make_message

HANG = 10.0  # seconds; far above any real message
NFKC_GROWTH = 18  # the most characters NFKC makes of one (U+FDFA)
FIXED = [
    "'; DROP TABLE petitions; --",
    "1 OR 1=1; DELETE FROM inbound_messages",
    "<script>alert('x')</script>3号楼灯坏了",
    '<img src=x onerror="fetch(`/api`)">',
    "/受理 99999999999999999999999",
    "/ 　",
    "／撤回 #-1",
    "提醒我 9999年99月99日 99点99分",
    "每隔0秒提醒我",
    "[强]" * 500,
    "😀" * 5000,
    "\u202e\u0000\u0007\u001b[31m楼道灯坏了\ufeff",
    "@" * 3000,
    "\u2005" * 1000 + "@社区小助手",
    "ﷺ" * 3000,
    "з҆๏̯͡๏ 3号楼 العربية 한국어 ภาษาไทย 電梯壞了",
]
SCRIPTS = "中文繁體АБВгдاَلْعَرَبِيَّة한국어ภาษาไทยעבריתहिन्दीabcXYZ0123456789 \n\t"
EMOJI = ["😀", "👍🏻", "🏳️‍🌈", "[强]", "[流泪]", "\u200d", "\ufe0f", "🧱"]

hostile = st.one_of(
    st.text(max_size=400),  # any code point: controls, combining marks, private use
    st.sampled_from(FIXED),
    st.text(alphabet=SCRIPTS, max_size=400),
    st.builds(lambda e, n: e * n, st.sampled_from(EMOJI), st.integers(1, 4000)),
    st.builds(lambda a, b: a + b, st.sampled_from(FIXED), st.text(max_size=100)),
)
NOW = datetime(2026, 12, 4, 15, 0, tzinfo=TZ)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def timed(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = func(*args, **kwargs)
    elapsed = time.perf_counter() - started
    assert elapsed < HANG, f"took {elapsed:.1f}s"
    return result


@SETTINGS
@given(text=hostile)
def test_normalize_never_fails_and_stays_bounded(text: str):
    norm = timed(normalize, text, ["社区小助手"], limit=2000)

    assert norm.original == text
    assert norm.truncated == (len(text) > 2000)
    assert len(norm.text) <= 2000 * NFKC_GROWTH
    assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in norm.text)


@SETTINGS
@given(text=hostile, addressed=st.booleans())
def test_router_classifies_anything(shared_router, text: str, addressed: bool):
    verdict = timed(shared_router.classify, normalize(text), addressed=addressed)

    assert isinstance(verdict, Classification)
    assert isinstance(verdict.intent, Intent)


@SETTINGS
@given(text=hostile)
def test_time_parser_answers_anything(text: str):
    result = timed(parse_time, text, NOW, tz=TZ)

    assert isinstance(result, TimeParse)
    assert result.status in ("ok", "ambiguous", "past", "invalid", "none")
    assert result.status != "ok" or result.when is not None or result.recurrence


@SETTINGS
@given(text=hostile)
def test_command_parsing_takes_anything(text: str):
    parsed = timed(commands().parse, normalize(text).text)

    assert parsed is None or (
        isinstance(parsed[0], str) and isinstance(parsed[1], list)
    )


def test_the_pipeline_survives_hostile_messages(config: Config, tmp_path: Path):
    """Every message is journalled whole, handled without error, answered briefly."""
    limit = config.outbox.max_chars
    clock = ManualClock(NOW)
    channel = RecordingChannel()
    with asyncio.Runner() as runner:
        app = App(
            config,
            channel=channel,
            clock=clock,
            web_enabled=False,
            scheduler_enabled=False,
        )
        runner.run(app.start())
        try:
            seen: list[str] = []

            @settings(
                max_examples=80,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            )
            @given(
                text=hostile,
                mentions_bot=st.booleans(),
                private=st.booleans(),
                staff=st.booleans(),
            )
            def check(
                text: str, mentions_bot: bool, private: bool, staff: bool
            ) -> None:
                message = make_message(
                    text,
                    at=clock.now(),
                    room=None if private else "grid-01",
                    sender="wxid_gm_zhao" if staff else "wxid_resident_009",
                    mentions_bot=mentions_bot,
                )
                outcome = runner.run(_deliver_timed(app, message))
                seen.append(outcome)
                assert outcome not in ("error", "held", "dropped", "deferred"), text[
                    :80
                ]
                journal, replies = runner.run(_rows(app, message.message_id))
                assert journal == text.replace("\x00", "\ufffd")  # NUL: see pipeline
                assert all(len(r) <= limit for r in replies)
                assert len(replies) <= 3, f"{len(replies)} replies to one message"

            check()
            assert len(seen) >= 20
        finally:
            runner.run(app.stop())


async def test_a_huge_message_is_stored_whole_and_handled_truncated(
    app, clock, channel
):
    text = "3号楼楼道灯坏了好几天了，" + "请尽快来修。" * 16_665  # > 100,000 characters
    assert len(text) > 100_000
    message = make_message(text, at=clock.now(), message_id="huge")

    outcome = await _deliver_timed(app, message)
    journal, replies = await _rows(app, "huge")

    assert journal == text
    assert outcome.startswith("petition")
    assert replies and all(len(r) <= app.config.outbox.max_chars for r in replies)
    assert sum(len(r) for r in replies) < 2 * app.config.outbox.max_chars


async def _deliver_timed(app: App, message) -> str:  # type: ignore[no-untyped-def]
    assert app.pipeline is not None
    started = time.perf_counter()
    outcome = await app.pipeline.deliver(message)
    elapsed = time.perf_counter() - started
    assert elapsed < HANG, f"message took {elapsed:.1f}s"
    return outcome


async def _rows(app: App, message_id: str) -> tuple[str | None, list[str]]:
    assert app.services is not None
    async with app.services.db.session() as session:
        journal = await session.scalar(
            select(InboundMessage.text).where(InboundMessage.message_id == message_id)
        )
        replies = list(
            await session.scalars(
                select(OutboundMessage.text).where(
                    OutboundMessage.source.endswith(f":{message_id}")
                )
            )
        )
    return journal, replies
