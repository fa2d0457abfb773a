"""Telling a sick database apart from a bug.

A read-only file, a full disk, a lock that never clears or a server that went away
make writes fail; the pipeline then holds messages and retries. A duplicate id, a
constraint or a bad statement is not trouble of that kind and must surface.
"""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

# What a sick database raises, as opposed to a bug or a duplicate id.
DB_TROUBLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
)


def is_db_trouble(exc: BaseException) -> bool:
    """Whether an exception means the database is unavailable, not that the code is wrong."""
    return isinstance(exc, DB_TROUBLE)


def db_reason(exc: BaseException | None) -> str:
    """The driver's own words for a failure, without the statement or its values."""
    if exc is None:
        return ""
    return str(getattr(exc, "orig", None) or type(exc).__name__)[:200]
