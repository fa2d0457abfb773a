"""Held messages on disk, so a crash while the database is sick loses none of them.

While the journal cannot be written, each held message is also appended to a file in
the data folder, one JSON line per message, flushed and fsync'd before the sender is
told "held". Once every held message is journalled the file is removed. At the next
start a file left behind by a crash is read back and its messages journalled; ids
already journalled are skipped by the journal's unique message id.

The file is bounded like the memory buffer: when it would pass its capacity it is
rewritten (atomically, by rename) from the messages still held. A process holds
``flock`` on its file while it uses it, so two processes sharing a data folder never
write into one file, and start-up recovery takes only files no live process holds.
The spool never raises :class:`OSError` (which would read as a sick database): a
failed write returns ``False`` and the caller keeps the message in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.channels.base import IncomingMessage

log = logging.getLogger(__name__)

SPOOL_NAME = "intake-spool.jsonl"
FORMAT = 1


def encode(message: IncomingMessage) -> bytes:
    """One JSON line for ``message`` (timestamp in ISO 8601 with its offset)."""
    record: dict[str, Any] = {
        "v": FORMAT,
        "message_id": message.message_id,
        "room_id": message.room_id,
        "talker_id": message.talker_id,
        "talker_name": message.talker_name,
        "text": message.text,
        "timestamp": message.timestamp.isoformat(),
        "room_topic": message.room_topic,
        "mention_ids": list(message.mention_ids),
        "mention_names": list(message.mention_names),
        "mentions_bot": message.mentions_bot,
        "is_self": message.is_self,
        "kind": message.kind,
    }
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def decode(line: bytes) -> IncomingMessage:
    """The message of one spool line; raises ``ValueError`` on a torn or foreign line."""
    try:
        record = json.loads(line)
        timestamp = datetime.fromisoformat(record["timestamp"])
        if timestamp.tzinfo is None:
            raise ValueError("timestamp without a time zone")
        return IncomingMessage(
            message_id=str(record["message_id"]),
            room_id=record["room_id"],
            talker_id=str(record["talker_id"]),
            talker_name=str(record["talker_name"]),
            text=str(record["text"]),
            timestamp=timestamp,
            room_topic=str(record.get("room_topic", "")),
            mention_ids=tuple(record.get("mention_ids", ())),
            mention_names=tuple(record.get("mention_names", ())),
            mentions_bot=bool(record.get("mentions_bot", False)),
            is_self=bool(record.get("is_self", False)),
            kind=str(record.get("kind", "text")),
        )
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from exc


def read_spool(path: Path) -> list[IncomingMessage]:
    """Every readable message of a spool file; unreadable lines are logged and skipped."""
    messages = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                messages.append(decode(line))
            except ValueError as exc:  # a line torn by a power cut, most likely
                log.warning(
                    "intake spool line unreadable; skipped path=%s line=%d error=%s",
                    path,
                    number,
                    exc,
                )
    return messages


class IntakeSpool:
    """The on-disk copy of the messages held for a sick database."""

    def __init__(self, folder: Path, capacity: int) -> None:
        self.folder = folder
        self.capacity = capacity
        self.path: Path | None = None  # the file in use, once opened
        self.count = 0  # messages in the file
        self._fd: int | None = None
        self._size = 0  # bytes of whole lines; a failed write is cut back to this
        # The pipeline calls in from worker threads; close() may come from the loop.
        self._mutex = threading.Lock()

    # -- writing -------------------------------------------------------------------

    def append(
        self, messages: Sequence[IncomingMessage], held: Iterable[IncomingMessage] = ()
    ) -> bool:
        """Store ``messages`` durably; False (nothing stored) if the disk refuses.

        ``held`` are the messages already held and not yet journalled: when the file
        would pass its capacity it is rewritten from them plus ``messages``, leaving
        out lines whose messages were journalled meanwhile.
        """
        if not messages:
            return True
        with self._mutex:
            return self._append(messages, held)

    def _append(
        self, messages: Sequence[IncomingMessage], held: Iterable[IncomingMessage]
    ) -> bool:
        try:
            if self.count + len(messages) > self.capacity:
                self._rewrite([*held, *messages])
                return True
            fd = self._open()
            self._write(fd, b"".join(encode(m) for m in messages))
        except OSError as exc:
            log.error(
                "intake spool write failed path=%s count=%d error=%s",
                self.path or self.folder,
                len(messages),
                exc,
            )
            return False
        self.count += len(messages)
        return True

    def clear(self) -> None:
        """Every held message is journalled: remove the file."""
        with self._mutex:
            self._clear()

    def _clear(self) -> None:
        if self._fd is None:
            return
        assert self.path is not None
        try:
            self.path.unlink(missing_ok=True)
            _sync_folder(self.folder)
        except OSError as exc:  # harmless: a later start journals nothing twice
            log.error(
                "intake spool could not be removed path=%s error=%s", self.path, exc
            )
        self._close()

    def close(self) -> None:
        """Let go of the file (and its lock), leaving it on disk for the next start."""
        with self._mutex:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self.path = None
        self.count = self._size = 0

    # -- start-up ------------------------------------------------------------------

    def recover(self) -> list[IncomingMessage]:
        """Messages of spool files no live process holds; they become this spool's.

        Call it before anything is held. The files found are merged into this spool's
        own file (rewritten by rename) and the others removed, so the spool then
        holds exactly what is returned.
        """
        with self._mutex:
            return self._recover()

    def _recover(self) -> list[IncomingMessage]:
        if self._fd is not None:
            log.warning(
                "intake spool already in use; nothing recovered path=%s", self.path
            )
            return []
        found: dict[Path, int] = {}
        messages: list[IncomingMessage] = []
        seen: set[str] = set()
        for path in sorted(self.folder.glob("intake-spool*.jsonl")):
            fd = _lock(path)
            if fd is None:
                log.info(
                    "intake spool in use by another process; left alone path=%s", path
                )
                continue
            found[path] = fd
            for message in read_spool(path):
                if message.message_id not in seen:
                    seen.add(message.message_id)
                    messages.append(message)
        own = self.folder / SPOOL_NAME
        if own in found:  # adopted: it is this process's file from now on
            self._fd, self.path = found.pop(own), own
            self._size = os.fstat(self._fd).st_size
            self.count = len(messages)  # an upper bound until the rewrite below
        try:
            if messages:
                self._rewrite(messages)
            for path in found:
                path.unlink()
            _sync_folder(self.folder)
        except OSError as exc:  # the files stay; a later start journals nothing twice
            log.error(
                "intake spool could not be merged folder=%s error=%s", self.folder, exc
            )
        finally:
            for fd in found.values():
                os.close(fd)
        if not messages:
            self._clear()  # an adopted file without a readable line
        return messages

    # -- the file ------------------------------------------------------------------

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in (
            self.folder / SPOOL_NAME,
            self.folder / f"intake-spool.{os.getpid()}.jsonl",
        ):
            fd = _lock(path, create=True)
            if fd is not None:
                break
        else:
            raise OSError(
                f"every spool file in {self.folder} is held by another process"
            )
        self._fd, self.path = fd, path
        self._size = os.fstat(fd).st_size
        self.count = 0
        if self._size:  # the file of a crashed run: recover() has not taken it
            self.count = len(read_spool(path))
        _sync_folder(self.folder)
        return fd

    def _write(self, fd: int, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # no torn line for the next one to join
                os.ftruncate(fd, self._size)
            raise
        self._size += len(data)

    def _rewrite(self, messages: Sequence[IncomingMessage]) -> None:
        """Replace the file by one holding ``messages``, atomically."""
        self._open()
        assert self.path is not None
        target = self.path
        temporary = target.with_name(target.name + ".tmp")
        fd = os.open(
            temporary, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600
        )
        try:
            fcntl.flock(
                fd, fcntl.LOCK_EX | fcntl.LOCK_NB
            )  # a new file: nobody holds it
            self._size = 0
            self._write(fd, b"".join(encode(m) for m in messages))
            os.replace(temporary, target)
            _sync_folder(self.folder)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            self._size = os.fstat(self._fd).st_size if self._fd is not None else 0
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self.path = fd, target
        self.count = len(messages)


def _lock(path: Path, create: bool = False) -> int | None:
    """An open, ``flock``-ed descriptor of ``path``; None if a live process holds it."""
    while True:
        flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT if create else 0)
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # removed or replaced while we waited: open the path again
        if not create:
            return None


def _sync_folder(folder: Path) -> None:
    """Make a created, renamed or removed file name survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
