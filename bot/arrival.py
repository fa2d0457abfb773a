"""A message from a channel, made storable before anything else touches it.

Chats, exports and the simulator can carry characters no database column takes: a
NUL (PostgreSQL refuses it in text) or a lone UTF-16 surrogate, half of an emoji cut
in two (no UTF-8 encoder takes it). Both become U+FFFD, the replacement character. An
id longer than its column (128 characters) keeps its start and gains a digest of the
whole, so two long ids stay two ids. Nothing is dropped: the message goes on as the
nearest thing that can be stored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from bot.channels.base import IncomingMessage

ID_MAX = 128  # the journal's id columns
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_TEXTS = ("text", "talker_name", "room_topic")
_IDS = ("message_id", "talker_id", "room_id")


def storable_text(value: str) -> str:
    """The text with each NUL and lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", value)


def fitted_id(value: str) -> str:
    """An id that fits its column and can be stored; unchanged when it already does."""
    clean = storable_text(value)
    if len(clean) <= ID_MAX:
        return clean
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{clean[:ID_MAX - len(digest) - 1]}~{digest}"


def _needs_fitting(value: str | None) -> bool:
    return value is not None and (len(value) > ID_MAX or _UNSTORABLE.search(value) is not None)


def storable(message: IncomingMessage) -> IncomingMessage:
    """The message with every field storable; the same object when it already is."""
    changes: dict[str, object] = {}
    for name in _TEXTS:
        value = getattr(message, name)
        if _UNSTORABLE.search(value):
            changes[name] = storable_text(value)
    for name in _IDS:
        value = getattr(message, name)
        if _needs_fitting(value):
            changes[name] = fitted_id(value)
    if any(map(_needs_fitting, message.mention_ids)):
        changes["mention_ids"] = tuple(map(fitted_id, message.mention_ids))
    if any(_UNSTORABLE.search(n) for n in message.mention_names):
        changes["mention_names"] = tuple(map(storable_text, message.mention_names))
    return replace(message, **changes) if changes else message
