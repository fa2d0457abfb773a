"""Telling a sick database apart from a bug.

A read-only file, a full disk, a lock that never clears or a server that went away
make writes fail; the pipeline then holds messages and retries. A duplicate id, a
constraint or a bad statement is not trouble of that kind and must surface.

SQLite reports trouble as ``OperationalError``. PostgreSQL through asyncpg reports
most of it as a bare ``DBAPIError`` carrying a SQLSTATE, so the session layer
(:meth:`models.db.Database.session`) raises :class:`DatabaseSickError`, an
``OperationalError``, in its place: ``except DB_TROUBLE`` then holds on both.

    DB_TROUBLE
    ├── OperationalError ── DatabaseSickError (SQLSTATE below, or a dropped connection)
    ├── InterfaceError      (the driver's connection is closed)
    └── OSError             (connection refused or timed out while connecting)
"""

from __future__ import annotations

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)

# SQLSTATEs (whole classes by their first two characters) that mean the server cannot
# take the work now, while the same statement will succeed once it recovers.
SICK_SQLSTATE_CLASSES = frozenset(
    {
        "08",  # connection exception: lost, refused, broken
        "53",  # insufficient resources: disk full, out of memory, too many connections
        "58",  # system error: an I/O error on the server's files
    }
)
SICK_SQLSTATES = frozenset(
    {
        "25006",  # read_only_sql_transaction: a read-only database or standby
        "55P03",  # lock_not_available: lock_timeout expired
        "57014",  # query_canceled: statement_timeout expired or an operator cancelled
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now: starting up or shutting down
    }
)
# Never trouble, whatever their SQLSTATE or connection state: a constraint (class 23)
# is a duplicate or a bug, bad data or a bad statement is a bug. Left out of the lists
# above for the same reason: a serialization failure (40001) or a deadlock (40P01) is
# the caller's to retry, not an outage.
NEVER_TROUBLE: tuple[type[DBAPIError], ...] = (
    IntegrityError,
    DataError,
    ProgrammingError,
)


class DatabaseSickError(OperationalError):
    """A driver error meaning the database cannot serve now, as sessions raise it."""

    @classmethod
    def wrap(cls, exc: DBAPIError) -> DatabaseSickError:
        """The same failure (statement, driver error) under this class."""
        return cls(
            exc.statement,
            exc.params,
            exc.orig,
            hide_parameters=exc.hide_parameters,
            connection_invalidated=exc.connection_invalidated,
            ismulti=exc.ismulti,
        )


# What a sick database raises, as opposed to a bug or a duplicate id.
DB_TROUBLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
)


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE a PostgreSQL driver attached to an error, if any."""
    for candidate in (exc, getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(
            candidate, "pgcode", None
        )
        if isinstance(code, str) and code:
            return code
    return None


def is_sick_sqlstate(code: str | None) -> bool:
    """Whether a SQLSTATE means the server cannot serve now, not a bug."""
    if not code:
        return False
    return code in SICK_SQLSTATES or code[:2] in SICK_SQLSTATE_CLASSES


def sick_error(exc: BaseException) -> DatabaseSickError | None:
    """The :class:`DatabaseSickError` to raise instead of ``exc``, or None to let it be.

    Only driver errors outside ``DB_TROUBLE`` are translated; an integrity error or a
    bad statement is never sickness, whatever else it says.
    """
    if not isinstance(exc, DBAPIError) or isinstance(exc, DB_TROUBLE + NEVER_TROUBLE):
        return None
    if exc.connection_invalidated or is_sick_sqlstate(sqlstate(exc)):
        return DatabaseSickError.wrap(exc)
    return None


def is_db_trouble(exc: BaseException) -> bool:
    """Whether an exception means the database is unavailable, not a bug."""
    return isinstance(exc, DB_TROUBLE) or sick_error(exc) is not None


def db_reason(exc: BaseException | None) -> str:
    """The driver's own words for a failure, without the statement or its values."""
    if exc is None:
        return ""
    orig = getattr(exc, "orig", None)
    if orig is not None:
        reason = str(orig)
        code = sqlstate(exc)
        if code and code not in reason:
            reason = f"{reason} (SQLSTATE {code})"
    elif isinstance(exc, OSError):  # a refused connection names no statement or value
        reason = f"{type(exc).__name__}: {exc}"
    else:
        reason = type(exc).__name__
    return reason[:200]
