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

The work is shared by four modules, the only ones that import ``wechaty*``:
this one (the channel, its supervisor and health), :mod:`.wechaty_events` (the event
bridge and payload reading), :mod:`.wechaty_send` (sending) and :mod:`.wechaty_sdk`
(the guarded SDK subclasses and wire facts), plus :mod:`.wechaty_compat`, which
makes the SDK importable and quiet.

Errors: a missing or malformed endpoint raises :class:`bot.config.ConfigError` at
construction (no connection is ever attempted, and the SDK's internet discovery of
an endpoint from a token is unreachable); a failed send raises
:class:`ChannelSendError`, retryable when the link is down or slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.channels import wechaty_compat
from bot.channels.base import ChannelHealth, Deliver
from bot.channels.wechaty_events import EventBridge
from bot.channels.wechaty_sdk import (
    DEDUPE_SIZE,
    FETCH_CONCURRENCY,
    STOP,
    RecentIds,
    RoomEventHandler,
    Session,
    parse_endpoint,
    sdk,
    timestamp_from_payload,
)
from bot.channels.wechaty_send import Sender
from bot.clock import Clock, SystemClock
from bot.config import ConfigError, WechatyConfig, WelcomeConfig

logger = logging.getLogger(__name__)

__all__ = ["WechatyChannel", "parse_endpoint", "timestamp_from_payload"]


class WechatyChannel(EventBridge, Sender):
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
        self._session: Session | None = None
        self._sessions = 0
        self._reconnects = 0
        self._self_id = ""
        self._self_name = ""
        self._last_error = ""
        self._health = ChannelHealth(connected=False, since=None, last_event=None)
        self._seen = RecentIds(DEDUPE_SIZE)
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
        self._intake.put_nowait(STOP)
        for queue in self._room_queues.values():
            queue.put_nowait(STOP)
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

    def health(self) -> ChannelHealth:
        """Connected or not, since when, the last event, and some detail."""
        return replace(self._health, detail=dict(self._health.detail))

    # --- supervisor ----------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            session: Session | None = None
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

    def _new_session(self) -> Session:
        classes = sdk()
        wechaty_compat.reset_wechaty_globals()
        self._sessions += 1
        token = self._config.token or None
        endpoint = f"{self._host}:{self._port}"
        # Always explicit options: WechatyOptions() shares one mutable default.
        puppet = classes.GuardedPuppet(
            classes.PuppetOptions(end_point=endpoint, token=token)
        )
        puppet.call_timeout = self._config.call_timeout_seconds
        options = classes.WechatyOptions(
            puppet=puppet,
            puppet_options=classes.PuppetOptions(end_point=endpoint, token=token),
            host="127.0.0.1",
            port=self._config.plugin_port,
            scheduler=classes.AsyncIOScheduler(),
        )
        bot = classes.SessionBot(options)
        session = Session(number=self._sessions, bot=bot, puppet=puppet)
        bot.bridge = functools.partial(self._bridge, session)
        puppet.on_started = session.started.set
        return session

    async def _run_session(self, session: Session) -> str:
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

    async def _watchdog(self, session: Session) -> str:
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

    async def _close_session(self, session: Session, *, graceful: bool) -> None:
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

    # --- helpers ---------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        """One SDK call under the configured timeout (the SDK sets none)."""
        return await asyncio.wait_for(awaitable, self._config.call_timeout_seconds)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
