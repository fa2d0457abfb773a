"""The SDK pieces the WeChat channel builds on: guarded classes, wire facts, ids.

:func:`sdk` imports the SDK (after :func:`wechaty_compat.prepare_wechaty`) and
returns the two subclasses the channel uses instead of the SDK's own behaviour: a
puppet with timeouts, no endpoint discovery and no blocking probe, and a bot whose
event bridge is the channel's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from bot.config import ConfigError

logger = logging.getLogger(__name__)

# Message types as the puppet-service wire carries them: the TypeScript
# wechaty-puppet enum, not the grpc one (python-wechaty#115).
WIRE_MESSAGE_TYPES = {
    0: "unknown",
    1: "attachment",
    2: "audio",
    3: "contact",
    4: "chat_history",
    5: "emoticon",
    6: "image",
    7: "text",
    8: "location",
    9: "mini_program",
    10: "group_note",
    11: "transfer",
    12: "red_envelope",
    13: "recalled",
    14: "url",
    15: "video",
}
WIRE_TEXT = 7
DEDUPE_SIZE = 10_000
STOP: Any = object()  # ends a worker's loop
FETCH_RETRIES = 3  # a message whose payload could not be read is tried again
GIVE_UP_STATUSES = ("NOT_FOUND", "INVALID_ARGUMENT", "PERMISSION_DENIED")
FETCH_CONCURRENCY = 8

RoomEventHandler = Callable[[str, str, list[tuple[str, str]]], Awaitable[None] | None]


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` of a puppet-service gateway, or :class:`ConfigError`."""
    raw = endpoint.strip()
    if not raw:
        raise ConfigError(
            [
                "wechaty.endpoint: required; set it to your puppet-service gateway's "
                "host:port (or WECHATY_PUPPET_SERVICE_ENDPOINT). The bot never looks "
                "an endpoint up on the internet."
            ]
        )
    if "://" in raw:
        scheme, _, rest = raw.partition("://")
        if scheme.lower() not in ("http", "grpc"):
            raise ConfigError(
                [
                    f"wechaty.endpoint: scheme {scheme!r} is not supported; the SDK "
                    "speaks plaintext gRPC only, give host:port"
                ]
            )
        raw = rest
    try:
        parts = urlsplit(f"//{raw}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise ConfigError([f"wechaty.endpoint: expected host:port, got {endpoint!r}"])
    return host, port


def timestamp_from_payload(raw: int | float | None, fallback: datetime) -> datetime:
    """An aware UTC time from a payload timestamp in seconds, ms or µs."""
    if not raw or raw <= 0:
        return fallback
    value = float(raw)
    if value > 1e14:  # microseconds (seconds this large are year 3 million)
        value /= 1_000_000
    elif value > 1e11:  # milliseconds (seconds this large are after year 5000)
        value /= 1_000
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return fallback


class RecentIds:
    """A bounded set of recently seen ids."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, key: str) -> bool:
        """Remember ``key``; False if it was already known."""
        if key in self._ids:
            self._ids.move_to_end(key)
            return False
        self._ids[key] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return True

    def discard(self, key: str) -> None:
        self._ids.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._ids


@dataclass
class Session:
    """One connection: a fresh SDK instance, its puppet and its state."""

    number: int
    bot: Any
    puppet: Any
    started: asyncio.Event = field(default_factory=asyncio.Event)
    dong: asyncio.Event = field(default_factory=asyncio.Event)
    logged_in: bool = False
    closed: bool = False


@functools.cache
def sdk() -> SimpleNamespace:
    """The SDK classes, imported on first use (after :func:`prepare_wechaty`)."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from grpclib.client import Channel
    from grpclib.exceptions import GRPCError, StreamTerminatedError
    from wechaty import Wechaty, WechatyOptions
    from wechaty_grpc.wechaty import PuppetStub
    from wechaty_puppet import FileBox, PuppetOptions
    from wechaty_puppet_service import PuppetService

    class GuardedPuppet(PuppetService):  # type: ignore[misc]
        """The SDK's puppet with timeouts, no discovery and no blocking probe."""

        call_timeout: float = 10.0
        on_started: Callable[[], None] | None = None

        def _init_puppet(self) -> None:
            # The SDK would fetch an endpoint for a token from api.chatie.io and
            # probe it with a blocking telnet connect; neither happens here.
            host, port = parse_endpoint(self.options.end_point or "")
            self.channel = Channel(host=host, port=port)
            if self.options.token:
                # The gateway reads the token from the :authority header.
                self.channel._authority = self.options.token
            self._puppet_stub = PuppetStub(self.channel)

        async def start(self) -> None:
            self._init_puppet()
            try:
                await asyncio.wait_for(self.puppet_stub.stop(), self.call_timeout)
            except GRPCError as exc:
                logger.debug("wechaty Stop before Start refused status=%s", exc.status)
            await asyncio.wait_for(self.puppet_stub.start(), self.call_timeout)
            if self.on_started is not None:
                self.on_started()
            await self._listen_for_event()

        async def close(self, *, graceful: bool) -> None:
            """Drop listeners and the connection; ``graceful`` also sends Stop."""
            self._event_stream.remove_all_listeners()
            try:
                if graceful and self._puppet_stub is not None:
                    await asyncio.wait_for(self._puppet_stub.stop(), self.call_timeout)
            except Exception as exc:
                logger.debug(
                    "wechaty Stop on close failed error=%s", type(exc).__name__
                )
            finally:
                if self.channel is not None:
                    self.channel.close()
                self.channel = None
                self._puppet_stub = None

    class SessionBot(Wechaty):  # type: ignore[misc]
        """A Wechaty whose event bridge is ours (the SDK's drops and reorders)."""

        bridge: Callable[[Any], None]

        async def init_puppet_event_bridge(self, puppet: Any) -> None:
            self.bridge(puppet)

    return SimpleNamespace(
        AsyncIOScheduler=AsyncIOScheduler,
        FileBox=FileBox,
        GRPCError=GRPCError,
        GuardedPuppet=GuardedPuppet,
        PuppetOptions=PuppetOptions,
        SessionBot=SessionBot,
        StreamTerminatedError=StreamTerminatedError,
        WechatyOptions=WechatyOptions,
    )
