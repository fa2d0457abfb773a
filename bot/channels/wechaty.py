"""WeChat groups through the wechaty SDK (0.10.7), wrapped so the bot stays dependable.

The SDK is unmaintained and has measured defects (see the SDK notes); this module
keeps only what works and owns the rest:

* its own start: ``init_puppet`` + its own event bridge + the puppet's start, with
  the SDK's ``Wechaty.start()``/``restart()`` never called (they swallow errors,
  sleep 60 s and restart a broken instance);
* a supervisor that reconnects with back-off after a clean end of the event stream,
  an abrupt disconnect or an unreachable endpoint, each time with a fresh SDK
  instance after :func:`reset_wechaty_globals`;
* a ding/dong watchdog (the SDK drops heartbeats: python-wechaty#412);
* payloads read straight from the wire: message type in the TypeScript numbering
  (the SDK crashes on types >= 16), mention ids from the payload, timestamps in
  seconds or milliseconds (``Message.age()`` is wrong);
* dedupe by message id (bounded LRU), one ordered queue per room, every SDK call
  under a timeout, every handler call guarded;
* sends as one ``message_send_text`` call carrying the mention ids, with the
  ``@name`` + U+2005 text built here (``Message.say`` drops mentions:
  python-wechaty#402).

Errors: a missing or malformed endpoint raises :class:`bot.config.ConfigError` at
construction (no connection is ever attempted, and the SDK's internet discovery of
an endpoint from a token is unreachable); a failed send raises
:class:`ChannelSendError`, retryable when the link is down or slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import secrets
import warnings
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

from bot.channels import wechaty_compat
from bot.channels.base import (
    ChannelHealth,
    ChannelSendError,
    Deliver,
    IncomingMessage,
    OutgoingMessage,
    mention_prefix,
)
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, WechatyConfig, WelcomeConfig

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
_STOP: Any = object()  # ends a worker's loop
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


class _LRU:
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


class _PreparedFile:
    """A FileBox already serialised: all ``message_send_file`` asks of it."""

    def __init__(self, json_str: str) -> None:
        self._json = json_str

    def to_json_str(self) -> str:
        return self._json


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


@dataclass
class _Fetched:
    """A message's payload, read before it is put in order."""

    message_id: str
    room_id: str | None
    talker_id: str
    talker_name: str
    text: str
    timestamp: datetime
    mention_ids: tuple[str, ...]
    mention_names: tuple[str, ...]


@dataclass
class _Session:
    """One connection: a fresh SDK instance, its puppet and its state."""

    number: int
    bot: Any
    puppet: Any
    started: asyncio.Event = field(default_factory=asyncio.Event)
    dong: asyncio.Event = field(default_factory=asyncio.Event)
    logged_in: bool = False
    closed: bool = False


@functools.cache
def _sdk() -> SimpleNamespace:
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


class WechatyChannel:
    """The ChatChannel for real WeChat groups behind a puppet-service gateway."""

    name = "wechaty"

    def __init__(
        self,
        config: WechatyConfig,
        *,
        bot_id_hint: str = "",
        data_dir: Path,
        welcome: WelcomeConfig | None = None,
        on_room_event: RoomEventHandler | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._host, self._port = parse_endpoint(config.endpoint)
        if not config.backoff_seconds:
            raise ConfigError(["wechaty.backoff_seconds: give at least one delay"])
        wechaty_compat.register_secret(config.token)
        self._config = config
        self._bot_id_hint = bot_id_hint
        self._data_dir = Path(data_dir)
        self._welcome = welcome
        self._on_room_event = on_room_event
        self._clock: Clock = clock or SystemClock()

        self._deliver: Deliver | None = None
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._sequencer: asyncio.Task[None] | None = None
        self._session: _Session | None = None
        self._sessions = 0
        self._reconnects = 0
        self._self_id = ""
        self._self_name = ""
        self._last_error = ""
        self._health = ChannelHealth(connected=False, since=None, last_event=None)
        self._seen = _LRU(DEDUPE_SIZE)
        self._intake: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._room_queues: dict[str, asyncio.Queue[Any]] = {}
        self._room_workers: dict[str, asyncio.Task[None]] = {}
        self._fetch_limit = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._background: set[asyncio.Task[Any]] = set()
        self._retries: dict[str, int] = {}
        self._connected = asyncio.Event()

    # --- the ChatChannel protocol ----------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        """Start the supervisor, which connects and reconnects; returns at once."""
        if self._supervisor is not None:
            raise RuntimeError("WechatyChannel.start() called twice")
        wechaty_compat.prepare_wechaty(self._data_dir / "wechaty-cache")
        self._deliver = deliver
        self._stopping = False
        self._intake = asyncio.Queue()
        self._sequencer = asyncio.create_task(
            self._sequence(), name="wechaty-sequencer"
        )
        self._supervisor = asyncio.create_task(
            self._supervise(), name="wechaty-supervisor"
        )
        await asyncio.sleep(0)
        logger.info("wechaty channel started endpoint=%s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Stop reconnecting, let queued messages finish briefly, close everything."""
        self._stopping = True
        session = self._session
        if session is not None:
            session.closed = True
        await self._drain(min(self._config.call_timeout_seconds, 5.0))
        # A sentinel ends the workers even when a cancellation gets lost: on 3.11
        # asyncio.wait_for can swallow one if its inner call finishes meanwhile.
        self._intake.put_nowait(_STOP)
        for queue in self._room_queues.values():
            queue.put_nowait(_STOP)
        tasks = [self._supervisor, self._sequencer, *self._room_workers.values()]
        tasks = [t for t in (*tasks, *self._background) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=5.0)
            for task in pending:
                logger.warning("wechaty task did not stop task=%s", task.get_name())
        if session is not None:
            await self._close_session(session, graceful=True)
        self._supervisor = self._sequencer = None
        self._room_workers.clear()
        self._room_queues.clear()
        wechaty_compat.reset_wechaty_globals()
        self._set_connected(False, "stopped")
        logger.info("wechaty channel stopped")

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send text (with mentions) or a picture; returns the gateway's message id."""
        session = self._session
        if session is None or session.closed or not self._health.connected:
            raise ChannelSendError("wechaty not connected", retryable=True)
        puppet = session.puppet
        ids = [i for i in message.mention_ids if i]
        text = message.text
        if ids:
            names = await self._mention_names_for_send(session, message, ids)
            text = mention_prefix(names) + text

        message_id: str | None = None
        try:
            if message.image_path is not None:
                box = await self._file_box(message.image_path)
                message_id = await self._call(
                    puppet.message_send_file(message.room_id, box)
                )
            if text:
                message_id = await self._call(
                    puppet.message_send_text(message.room_id, text, ids or None)
                )
        except ChannelSendError:
            raise
        except TimeoutError:
            raise ChannelSendError("wechaty send timed out", retryable=True) from None
        except _sdk().GRPCError as exc:
            retryable = exc.status.name not in (
                "INVALID_ARGUMENT",
                "NOT_FOUND",
                "PERMISSION_DENIED",
                "FAILED_PRECONDITION",
                "UNIMPLEMENTED",
            )
            raise ChannelSendError(
                f"wechaty send refused status={exc.status.name}", retryable=retryable
            ) from None
        except Exception as exc:
            raise ChannelSendError(
                f"wechaty send failed error={type(exc).__name__}", retryable=True
            ) from None

        logger.info(
            "wechaty sent room=%s outbox_id=%s message_id=%s mentions=%d image=%s",
            message.room_id,
            message.outbox_id,
            message_id,
            len(ids),
            message.image_path is not None,
        )
        logger.debug("wechaty sent text=%r", text)
        return message_id or None

    def health(self) -> ChannelHealth:
        """Connected or not, since when, the last event, and some detail."""
        return replace(self._health, detail=dict(self._health.detail))

    # --- supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            session: _Session | None = None
            reason = "unknown"
            try:
                session = self._new_session()
                self._session = session
                reason = await self._run_session(session)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {wechaty_compat.redact(str(exc))}"
                if isinstance(exc, ConfigError):
                    logger.error("wechaty configuration error: %s", reason)
            finally:
                if session is not None and not self._stopping:
                    await self._close_session(session, graceful=False)
            if self._stopping:
                return

            self._last_error = reason
            self._set_connected(False, reason)
            if session is not None and session.logged_in:
                attempt = 0
            delays = self._config.backoff_seconds
            delay = delays[min(attempt, len(delays) - 1)]
            attempt += 1
            self._reconnects += 1
            logger.warning(
                "wechaty connection lost reason=%s reconnect_in=%gs attempt=%d",
                reason,
                delay,
                attempt,
            )
            await asyncio.sleep(delay)

    def _new_session(self) -> _Session:
        sdk = _sdk()
        wechaty_compat.reset_wechaty_globals()
        self._sessions += 1
        token = self._config.token or None
        endpoint = f"{self._host}:{self._port}"
        # Always explicit options: WechatyOptions() shares one mutable default.
        puppet = sdk.GuardedPuppet(sdk.PuppetOptions(end_point=endpoint, token=token))
        puppet.call_timeout = self._config.call_timeout_seconds
        options = sdk.WechatyOptions(
            puppet=puppet,
            puppet_options=sdk.PuppetOptions(end_point=endpoint, token=token),
            host="127.0.0.1",
            port=self._config.plugin_port,
            scheduler=sdk.AsyncIOScheduler(),
        )
        bot = sdk.SessionBot(options)
        session = _Session(number=self._sessions, bot=bot, puppet=puppet)
        bot.bridge = functools.partial(self._bridge, session)
        puppet.on_started = session.started.set
        return session

    async def _run_session(self, session: _Session) -> str:
        bot = session.bot
        await bot.init_puppet()
        await bot.init_puppet_event_bridge(bot.puppet)
        logger.info(
            "wechaty connecting endpoint=%s:%d session=%d",
            self._host,
            self._port,
            session.number,
        )
        stream = asyncio.create_task(bot.puppet.start(), name="wechaty-stream")
        watchdog = asyncio.create_task(self._watchdog(session), name="wechaty-watchdog")
        try:
            done, _ = await asyncio.wait(
                {stream, watchdog}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (stream, watchdog):
                task.cancel()
            for task in (stream, watchdog):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if (
            watchdog in done
            and not watchdog.cancelled()
            and watchdog.exception() is None
        ):
            return watchdog.result()
        if stream in done and not stream.cancelled():
            exc = stream.exception()
            if exc is None:
                return "event stream ended"
            if isinstance(exc, ConfigError):
                raise exc
            return f"{type(exc).__name__}: {wechaty_compat.redact(str(exc))}"
        return "session ended"

    async def _watchdog(self, session: _Session) -> str:
        await session.started.wait()
        interval = self._config.ding_interval_seconds
        wait = self._config.dong_timeout_seconds
        while True:
            await asyncio.sleep(interval)
            session.dong.clear()
            try:
                await self._call(session.puppet.ding(secrets.token_hex(4)))
            except Exception as exc:
                return f"ding failed: {type(exc).__name__}"
            try:
                await asyncio.wait_for(session.dong.wait(), wait)
            except TimeoutError:
                return f"no dong within {wait:g}s"

    async def _close_session(self, session: _Session, *, graceful: bool) -> None:
        session.closed = True
        if self._session is session:
            self._session = None
        with contextlib.suppress(Exception):
            await session.puppet.close(graceful=graceful)

    async def _drain(self, timeout: float) -> None:
        queues = [q for q in self._room_queues.values() if not q.empty()]
        if not queues:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(q.join() for q in queues)), timeout=timeout
            )

    # --- health ----------------------------------------------------------------------

    def _set_connected(self, connected: bool, reason: str = "") -> None:
        detail = {
            "endpoint": f"{self._host}:{self._port}",
            "self_id": self._self_id or self._bot_id_hint,
            "reconnects": self._reconnects,
            "last_error": self._last_error,
        }
        if connected:
            self._connected.set()
        else:
            self._connected.clear()
        if connected == self._health.connected and self._health.since is not None:
            self._health.detail = detail
            return
        self._health = ChannelHealth(
            connected=connected,
            since=self._clock.now(),
            last_event=self._health.last_event,
            detail=detail,
        )
        logger.info(
            "wechaty health connected=%s since=%s reconnects=%d reason=%s",
            connected,
            self._health.since.isoformat() if self._health.since else "",
            self._reconnects,
            reason or "-",
        )

    def _touch(self) -> None:
        self._health.last_event = self._clock.now()

    # --- the event bridge (replaces the SDK's) ---------------------------------------

    def _bridge(self, session: _Session, puppet: Any) -> None:
        handlers: dict[str, Callable[[Any], None]] = {
            "login": lambda p: self._on_login(session, p),
            "logout": lambda p: self._on_logout(session, p),
            "message": lambda p: self._on_message(session, p),
            "dong": lambda p: session.dong.set(),
            "heartbeat": lambda p: None,
            "ready": lambda p: None,
            "scan": lambda p: logger.warning(
                "wechaty account not logged in; scan on the gateway status=%s",
                getattr(p, "status", ""),
            ),
            "error": lambda p: logger.warning(
                "wechaty gateway error=%s",
                wechaty_compat.redact(str(getattr(p, "data", p))),
            ),
            "room-join": lambda p: self._on_room_change(session, "join", p),
            "room-leave": lambda p: self._on_room_change(session, "leave", p),
            "room-topic": lambda p: self._on_room_change(session, "topic", p),
        }
        for event, handler in handlers.items():
            puppet.on(event, self._guarded(session, event, handler))

    def _guarded(
        self, session: _Session, event: str, handler: Callable[[Any], None]
    ) -> Callable[[Any], None]:
        # Sync listeners run inline, in stream order; an exception here would
        # otherwise end the SDK's event loop for this stream.
        def listener(payload: Any) -> None:
            if session.closed:
                return
            self._touch()
            try:
                handler(payload)
            except Exception:
                logger.exception("wechaty event handler failed event=%s", event)

        return listener

    def _on_login(self, session: _Session, payload: Any) -> None:
        session.logged_in = True
        self._self_id = payload.contact_id
        self._last_error = ""
        self._set_connected(True, "login")
        logger.info(
            "wechaty logged in self_id=%s session=%d", self._self_id, session.number
        )
        self._spawn(self._load_self_name(session))

    def _on_logout(self, session: _Session, payload: Any) -> None:
        session.logged_in = False
        self._set_connected(False, "logout")

    def _on_message(self, session: _Session, payload: Any) -> None:
        message_id = payload.message_id
        if not message_id or not self._seen.add(message_id):
            logger.debug("wechaty duplicate message id=%s skipped", message_id)
            return
        fetch = asyncio.create_task(self._fetch(session, message_id))
        self._intake.put_nowait(
            functools.partial(self._route, session, message_id, fetch)
        )

    def _on_room_change(self, session: _Session, kind: str, payload: Any) -> None:
        self._intake.put_nowait(
            functools.partial(self._room_event, session, kind, payload)
        )

    # --- incoming messages -------------------------------------------------------------

    async def _sequence(self) -> None:
        # Jobs run one by one in stream order, so a room's messages and its
        # topic changes reach the room queues in the order they happened.
        while True:
            job = await self._intake.get()
            if job is _STOP:
                return
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("wechaty event processing failed")

    async def _fetch(self, session: _Session, message_id: str) -> _Fetched | None:
        async with self._fetch_limit:
            stub = session.puppet.puppet_stub
            payload = await self._call(stub.message_payload(id=message_id))
            wire_type = int(payload.type)
            kind = WIRE_MESSAGE_TYPES.get(wire_type)
            if kind is None:
                logger.warning(
                    "wechaty message of unknown type skipped id=%s type=%d",
                    message_id,
                    wire_type,
                )
                return None
            if wire_type != WIRE_TEXT:
                logger.debug("wechaty message skipped id=%s kind=%s", message_id, kind)
                return None

            talker_id = payload.from_id
            if talker_id and talker_id in (self._self_id, self._bot_id_hint):
                logger.debug("wechaty own message skipped id=%s", message_id)
                return None

            room_id = payload.room_id or None
            now = self._clock.now()
            mention_ids = tuple(dict.fromkeys(i for i in payload.mention_ids if i))
            talker_name = await self._contact_name(session, talker_id)
            mention_names: list[str] = []
            for contact_id in mention_ids:
                for name in await self._display_names(session, room_id, contact_id):
                    if name and name not in mention_names:
                        mention_names.append(name)
            return _Fetched(
                message_id=message_id,
                room_id=room_id,
                talker_id=talker_id,
                talker_name=talker_name,
                text=payload.text or "",
                timestamp=timestamp_from_payload(payload.timestamp, now),
                mention_ids=mention_ids,
                mention_names=tuple(mention_names),
            )

    def _retry_later(self, message_id: str, error: Exception) -> None:
        status = getattr(getattr(error, "status", None), "name", "")
        attempts = self._retries.get(message_id, 0) + 1
        if status in GIVE_UP_STATUSES or attempts > FETCH_RETRIES or self._stopping:
            self._retries.pop(message_id, None)
            logger.warning(
                "wechaty message dropped id=%s status=%s", message_id, status
            )
            return
        if len(self._retries) >= DEDUPE_SIZE:
            self._retries.pop(next(iter(self._retries)))
        self._retries[message_id] = attempts
        self._spawn(self._refetch(message_id, attempts))

    async def _refetch(self, message_id: str, attempts: int) -> None:
        delays = self._config.backoff_seconds
        await asyncio.sleep(delays[min(attempts - 1, len(delays) - 1)])
        await self._connected.wait()
        session = self._session
        if session is None or session.closed or message_id in self._seen:
            return
        logger.info(
            "wechaty message payload retry id=%s attempt=%d", message_id, attempts
        )
        self._on_message(session, SimpleNamespace(message_id=message_id))

    async def _route(
        self, session: _Session, message_id: str, fetch: asyncio.Task[_Fetched | None]
    ) -> None:
        try:
            fetched = await fetch
        except Exception as exc:
            # Forget the id so a redelivery gets another chance, and ask again
            # ourselves once connected: the gateway may still have the message.
            self._seen.discard(message_id)
            logger.warning(
                "wechaty message payload failed id=%s error=%s",
                message_id,
                type(exc).__name__,
            )
            self._retry_later(message_id, exc)
            return
        self._retries.pop(message_id, None)
        if fetched is None:
            return

        if session.closed and self._session is not None:
            session = self._session  # fetched just before a reconnect
        topic = (
            await self._room_topic(session, fetched.room_id) if fetched.room_id else ""
        )
        bot_ids = {i for i in (self._self_id, self._bot_id_hint) if i}
        incoming = IncomingMessage(
            message_id=fetched.message_id,
            room_id=fetched.room_id,
            talker_id=fetched.talker_id,
            talker_name=fetched.talker_name,
            text=fetched.text,
            timestamp=fetched.timestamp,
            room_topic=topic,
            mention_ids=fetched.mention_ids,
            mention_names=fetched.mention_names,
            mentions_bot=bool(bot_ids.intersection(fetched.mention_ids)),
            is_self=False,
            kind="text",
        )
        logger.info(
            "wechaty message id=%s room=%s talker=%s mentions=%d mentions_bot=%s",
            incoming.message_id,
            incoming.room_id,
            incoming.talker_id,
            len(incoming.mention_ids),
            incoming.mentions_bot,
        )
        logger.debug("wechaty message text=%r", incoming.text)
        self._enqueue(incoming.room_id or f"private:{incoming.talker_id}", incoming)

    def _enqueue(
        self, key: str, item: IncomingMessage | Callable[[], Awaitable[None]]
    ) -> None:
        queue = self._room_queues.get(key)
        if queue is None:
            queue = asyncio.Queue()
            self._room_queues[key] = queue
            self._room_workers[key] = asyncio.create_task(
                self._room_worker(key, queue), name=f"wechaty-room-{key}"
            )
        queue.put_nowait(item)

    async def _room_worker(self, key: str, queue: asyncio.Queue[Any]) -> None:
        while True:
            item = await queue.get()
            if item is _STOP:
                queue.task_done()
                return
            try:
                if isinstance(item, IncomingMessage):
                    if self._deliver is not None:
                        await self._deliver(item)
                else:
                    await item()
            except asyncio.CancelledError:
                raise
            except Exception:
                message_id = getattr(item, "message_id", "-")
                logger.exception(
                    "wechaty handler failed queue=%s message_id=%s", key, message_id
                )
            finally:
                queue.task_done()

    # --- rooms and contacts ------------------------------------------------------------

    async def _room_topic(self, session: _Session, room_id: str) -> str:
        try:
            room = session.bot.Room.load(room_id)
            if not room.is_ready():
                await self._call(room.ready())
            return room.payload.topic or ""
        except Exception as exc:
            logger.warning(
                "wechaty room payload failed room=%s error=%s",
                room_id,
                type(exc).__name__,
            )
            return ""

    async def _refresh_room(self, session: _Session, room_id: str) -> None:
        # Room.ready(force_sync=True) returns early once ready (SDK notes, defect 7).
        room = session.bot.Room.load(room_id)
        room._payload = None
        try:
            await self._call(room.ready())
        except Exception as exc:
            logger.warning(
                "wechaty room refresh failed room=%s error=%s",
                room_id,
                type(exc).__name__,
            )

    async def _contact_name(self, session: _Session, contact_id: str) -> str:
        if not contact_id:
            return ""
        try:
            contact = session.bot.Contact.load(contact_id)
            if not contact.is_ready():
                await self._call(contact.ready())
            return contact.name or ""
        except Exception as exc:
            logger.debug(
                "wechaty contact payload failed id=%s error=%s",
                contact_id,
                type(exc).__name__,
            )
            return ""

    async def _display_names(
        self, session: _Session, room_id: str | None, contact_id: str
    ) -> list[str]:
        """The group nickname (if any) and the contact name of a member."""
        names: list[str] = []
        if room_id:
            try:
                member = await self._call(
                    session.puppet.room_member_payload(room_id, contact_id)
                )
                names += [member.room_alias, member.name]
            except Exception as exc:
                logger.debug(
                    "wechaty member payload failed room=%s id=%s error=%s",
                    room_id,
                    contact_id,
                    type(exc).__name__,
                )
        names.append(await self._contact_name(session, contact_id))
        return [n for n in dict.fromkeys(names) if n]

    async def _mention_names_for_send(
        self, session: _Session, message: OutgoingMessage, ids: Sequence[str]
    ) -> list[str]:
        given = [n for n in message.mention_names if n]
        if len(given) == len(ids):
            return given
        names = []
        for contact_id in ids:
            found = await self._display_names(session, message.room_id, contact_id)
            names.append(found[0] if found else "")
        return names

    async def _load_self_name(self, session: _Session) -> None:
        name = await self._contact_name(session, self._self_id)
        if name:
            self._self_name = name

    async def _room_event(self, session: _Session, kind: str, payload: Any) -> None:
        room_id = payload.room_id
        if session.closed or not room_id:
            return
        await self._refresh_room(session, room_id)
        if kind == "topic":
            logger.info("wechaty room topic changed room=%s", room_id)
            logger.debug("wechaty room topic new=%r", payload.new_topic)
            self._enqueue(
                room_id, functools.partial(self._notify_room, kind, room_id, [])
            )
            return

        ids = payload.invited_ids if kind == "join" else payload.removed_ids
        ids = [i for i in ids or [] if i]
        if self._self_id and self._self_id in ids:
            logger.warning("wechaty bot itself %s room=%s", kind, room_id)
            ids = [i for i in ids if i != self._self_id]
        members = [(i, await self._contact_name(session, i)) for i in ids]
        logger.info("wechaty room %s room=%s members=%d", kind, room_id, len(members))
        if members:
            self._enqueue(
                room_id, functools.partial(self._notify_room, kind, room_id, members)
            )

    async def _notify_room(
        self, kind: str, room_id: str, members: list[tuple[str, str]]
    ) -> None:
        if self._on_room_event is not None:
            result = self._on_room_event(kind, room_id, members)
            if inspect.isawaitable(result):
                await result
            return
        if kind == "join" and self._welcome is not None and self._welcome.enabled:
            bot_name = self._self_name or self._bot_id_hint
            text = self._welcome.text.format_map(_Defaults(bot=bot_name))
            welcome = OutgoingMessage(
                room_id=room_id,
                text=text,
                mention_ids=tuple(i for i, _ in members),
                mention_names=tuple(n for _, n in members)
                if all(n for _, n in members)
                else (),
            )
            try:
                await self.send(welcome)
            except ChannelSendError as exc:
                logger.warning(
                    "wechaty welcome not sent room=%s error=%s", room_id, exc
                )

    # --- helpers ---------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        """One SDK call under the configured timeout (the SDK sets none)."""
        return await asyncio.wait_for(awaitable, self._config.call_timeout_seconds)

    async def _file_box(self, path: Path) -> _PreparedFile:
        if not Path(path).is_file():
            raise ChannelSendError(f"image not found path={path}", retryable=False)
        # FileBox calls the deprecated Logger.warn when it reads and serialises.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            box = _sdk().FileBox.from_file(str(path))
            return _PreparedFile(box.to_json_str())

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
