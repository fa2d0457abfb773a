"""The WeChat channel's sending: texts with mentions, pictures, welcomes.

A send is one ``message_send_text`` call carrying the mention ids, with the
``@name`` + U+2005 text built here (``Message.say`` drops mentions:
python-wechaty#402); pictures go as files. A send that fails while the link is
down or slow raises a retryable :class:`ChannelSendError`, so the outbox tries
again after the reconnect; a send the gateway refuses outright is not retried.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from bot.channels.base import (
    ChannelHealth,
    ChannelSendError,
    OutgoingMessage,
    mention_prefix,
)
from bot.channels.wechaty_sdk import RoomEventHandler, Session, sdk
from bot.config import WelcomeConfig

logger = logging.getLogger(__name__)

# A refusal the gateway will repeat: retrying cannot help.
REFUSED_STATUSES = (
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "FAILED_PRECONDITION",
    "UNIMPLEMENTED",
)


class PreparedFile:
    """A FileBox already serialised: all ``message_send_file`` asks of it."""

    def __init__(self, json_str: str) -> None:
        self._json = json_str

    def to_json_str(self) -> str:
        return self._json


class Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class Sender:
    """Outgoing messages of :class:`~bot.channels.wechaty.WechatyChannel` (a mixin)."""

    # State owned by the channel.
    _session: Session | None
    _health: ChannelHealth
    _self_name: str
    _bot_id_hint: str
    _welcome: WelcomeConfig | None
    _on_room_event: RoomEventHandler | None

    # Provided by the channel and the event bridge.
    _call: Callable[[Awaitable[Any]], Awaitable[Any]]
    _display_names: Callable[[Session, str | None, str], Awaitable[list[str]]]

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
        except sdk().GRPCError as exc:
            retryable = exc.status.name not in REFUSED_STATUSES
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

    async def _mention_names_for_send(
        self, session: Session, message: OutgoingMessage, ids: Sequence[str]
    ) -> list[str]:
        given = [n for n in message.mention_names if n]
        if len(given) == len(ids):
            return given
        names = []
        for contact_id in ids:
            found = await self._display_names(session, message.room_id, contact_id)
            names.append(found[0] if found else "")
        return names

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
            text = self._welcome.text.format_map(Placeholders(bot=bot_name))
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

    async def _file_box(self, path: Path) -> PreparedFile:
        if not Path(path).is_file():
            raise ChannelSendError(f"image not found path={path}", retryable=False)
        # FileBox calls the deprecated Logger.warn when it reads and serialises.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            box = sdk().FileBox.from_file(str(path))
            return PreparedFile(box.to_json_str())
