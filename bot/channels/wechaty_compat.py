"""Makes the unmaintained wechaty SDK (0.10.7) importable and quiet on Python 3.11.

Only this module and the channel modules ``bot/channels/wechaty*.py`` import
``wechaty*``. Call :func:`prepare_wechaty` before anything else touches the SDK; it

* points the SDK's cache folder (``CACHE_DIR``, read at import time) into a folder
  of the app's data directory instead of ``.wechaty`` in the working directory;
* applies the ``PuppetOptions.__hash__`` shim without which ``import wechaty`` fails
  on 3.11 with "mutable default ... PuppetOptions"
  (https://github.com/wechaty/python-wechaty/issues/422);
* routes the SDK's loggers (each has its own stderr handler and does not
  propagate) through the app's logging, lowers them to WARNING, lowers the
  ``PuppetService`` logger to ERROR because it writes the token into a warning,
  keeps hpack's header dumps (the token is the ``:authority`` header) below DEBUG,
  and redacts registered secrets from every SDK and gRPC log line.

:func:`reset_wechaty_globals` clears the class-level caches that outlive a bot
instance (defect 6 in the SDK notes): run it before every new SDK instance.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# The SDK's loggers are created with wechaty_puppet.get_logger under these names.
SDK_LOGGER_NAMES = (
    "Wechaty",
    "PuppetService",
    "WechatyPuppetServiceConfig",
    "Accessory",
    "Config",
    "Contact",
    "ContactSelf",
    "Favorite",
    "FileBox",
    "FriendShip",
    "Image",
    "Message",
    "MiniProgram",
    "Room",
    "RoomInvitation",
    "Tag",
    "UrlLink",
    "WechatyPuppet.Schema.Base",
    "WechatyPuppet.Schemas.Event",
    "wechaty.plugin",
)
# These write the token (or whole options) into WARNING lines.
TOKEN_LEAKING_LOGGERS = ("PuppetService",)
# The gRPC stack below the SDK: hpack dumps every header at DEBUG, and the token
# travels as the :authority header.
WIRE_LOGGERS = (
    "hpack",
    "hpack.hpack",
    "hpack.table",
    "h2",
    "grpclib",
    "grpclib.client",
    "grpclib.protocol",
    "grpclib.server",
)
HEADER_DUMPING_LOGGERS = ("hpack", "hpack.hpack", "hpack.table")
_VALID_WECHATY_LOG = ("silly", "verbose", "info", "warn", "error", "silent")

_secrets: set[str] = set()


class _RedactSecrets(logging.Filter):
    """Replaces every registered secret in a log record by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging
            return True
        redacted = message
        for secret in _secrets:
            redacted = redacted.replace(secret, "***")
        if redacted != message:
            record.msg = redacted
            record.args = None
        return True


_REDACTOR = _RedactSecrets()


def register_secret(value: str) -> None:
    """Never let ``value`` (a token) reach a log line written by the SDK or us."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


def is_imported() -> bool:
    """Whether the SDK has been imported in this process."""
    return "wechaty" in sys.modules


def prepare_wechaty(cache_dir: Path) -> None:
    """Point the SDK's cache into ``cache_dir``, shim it, import it, tame its logs."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # wechaty.config reads CACHE_DIR from the environment, at import time for the
    # plugin job store path and lazily afterwards.
    os.environ["CACHE_DIR"] = str(cache_dir.resolve())
    if is_imported():
        return

    # wechaty_puppet.get_logger raises at import time for an unknown WECHATY_LOG.
    level = os.environ.get("WECHATY_LOG")
    if level is not None and level.lower() not in _VALID_WECHATY_LOG:
        logger.warning("wechaty ignoring invalid WECHATY_LOG value")
        os.environ.pop("WECHATY_LOG")

    _apply_hash_shim()
    import wechaty  # noqa: F401
    import wechaty_puppet_service  # noqa: F401

    tame_sdk_loggers()
    logger.debug("wechaty SDK imported cache_dir=%s", cache_dir)


def _apply_hash_shim() -> None:
    # Python 3.11 refuses an unhashable dataclass instance as a field default;
    # WechatyOptions uses PuppetOptions() as one. Upstream: python-wechaty#422.
    from wechaty_puppet.schemas.puppet import PuppetOptions

    if PuppetOptions.__hash__ is None:
        PuppetOptions.__hash__ = object.__hash__  # type: ignore[method-assign]


def tame_sdk_loggers() -> None:
    """Send the SDK's log lines through the app's handlers, quieter and redacted."""
    for name in SDK_LOGGER_NAMES:
        sdk_logger = logging.getLogger(name)
        for handler in list(sdk_logger.handlers):
            sdk_logger.removeHandler(handler)
        sdk_logger.propagate = True
        sdk_logger.setLevel(
            logging.ERROR if name in TOKEN_LEAKING_LOGGERS else logging.WARNING
        )
        if _REDACTOR not in sdk_logger.filters:
            sdk_logger.addFilter(_REDACTOR)
    for name in WIRE_LOGGERS:
        wire_logger = logging.getLogger(name)
        if _REDACTOR not in wire_logger.filters:
            wire_logger.addFilter(_REDACTOR)
        if name in HEADER_DUMPING_LOGGERS and wire_logger.level < logging.INFO:
            wire_logger.setLevel(logging.INFO)


def reset_wechaty_globals() -> None:
    """Forget the SDK's class-level caches so a new instance starts clean."""
    if not is_imported():
        return
    from wechaty import Wechaty
    from wechaty.user import Contact, Room, Tag
    from wechaty.utils.async_helper import SingleIdContainer

    # Contact/Room/Tag objects live in class-level pools shared by every bot
    # instance; after a reconnect they would still point at the dead puppet.
    for cls in (Contact, Room, Tag):
        pool: Any = cls.__dict__.get("_pool")
        if pool is not None:
            pool.clear()
    SingleIdContainer._instance = None
    Wechaty._global_instance = None
