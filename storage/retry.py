"""The one retry policy of the storage layer: whole transactions, transient failures only."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg
from sqlalchemy import exc as sa_exc
from tenacity import (
    Retrying,
    retry_if_exception,
    wait_random_exponential,
)

from storage.deadlines import time_left
from storage.errors import CommitOutcomeUnknown, Unavailable

T = TypeVar("T")

# 40001 serialization_failure and 40P01 deadlock_detected: PostgreSQL aborted the transaction
# only because of a concurrent one, so running it again from the start can succeed.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# 57014 query_canceled (statement_timeout, user cancel) is an OperationalError in psycopg, but
# re-running a query that already timed out only adds load.
_NON_RETRYABLE_SQLSTATES = frozenset({"57014"})
_SQLITE_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")


def is_transient(exc: BaseException) -> bool:
    """Return True when running the failed transaction again may succeed.

    Transient: a lost or refused connection, serialization failures (40001), deadlocks (40P01)
    and SQLite's "database is locked". Integrity, programming and data errors are permanent.
    An :class:`Unavailable` raised by a repository is transient when its cause is.
    """
    if isinstance(exc, CommitOutcomeUnknown):
        return False
    if isinstance(exc, Unavailable):
        return exc.__cause__ is not None and is_transient(exc.__cause__)
    if isinstance(exc, sa_exc.TimeoutError):
        return True  # no pooled connection came free in time: load, not a broken request
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return exc.orig is not None and _driver_error_is_transient(exc.orig)
    return _driver_error_is_transient(exc)


def is_lost_connection(exc: BaseException) -> bool:
    """True for a failure of the connection itself (not a conflict the database reported).

    During COMMIT such a failure leaves the outcome unknown: the server may have committed
    before the connection broke. Serialization failures, deadlocks and SQLite's busy errors
    are reported before anything is committed, so they are not lost connections.
    """
    cause: BaseException | None = exc
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        cause = exc.orig
    if isinstance(cause, Unavailable) and cause.__cause__ is not None:
        return is_lost_connection(cause.__cause__)
    if isinstance(cause, psycopg.Error):
        return isinstance(cause, psycopg.OperationalError) and (
            cause.sqlstate not in _RETRYABLE_SQLSTATES | _NON_RETRYABLE_SQLSTATES
        )
    return False


def _is_sqlite_busy(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable) and exc.__cause__ is not None:
        return _is_sqlite_busy(exc.__cause__)
    cause: BaseException | None = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return isinstance(cause, sqlite3.OperationalError) and _driver_error_is_transient(cause)


def _driver_error_is_transient(exc: BaseException) -> bool:
    if isinstance(exc, psycopg.Error):
        if exc.sqlstate in _RETRYABLE_SQLSTATES:
            return True
        if exc.sqlstate in _NON_RETRYABLE_SQLSTATES:
            return False
        return isinstance(exc, psycopg.OperationalError)
    if isinstance(exc, sqlite3.OperationalError):
        message = str(exc).lower()
        return any(text in message for text in _SQLITE_BUSY_MESSAGES)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Retries a callable on transient database failures with jittered exponential backoff.

    Conflicts (serialization failures, deadlocks, SQLite's busy lock) are bounded by
    ``max_attempts`` and ``max_seconds``, whichever comes first. A lost or refused connection
    is retried for ``connection_seconds`` from the first failure, however many attempts that
    takes, so a database restart shorter than that is invisible to callers. Every wait ends
    before the current call's deadline (:mod:`storage.deadlines`). Permanent failures
    propagate after one attempt; exhausted transient failures become :class:`Unavailable`.
    """

    max_attempts: int = 5
    max_seconds: float = 10.0
    initial_backoff: float = 0.02
    max_backoff: float = 0.5
    connection_seconds: float = 5.0
    # Told the reason of every retry ("connection_lost", "transient" or "conflict"): metrics.
    on_retry: Callable[[str], None] | None = None

    def run(self, fn: Callable[[], T], *, also: tuple[type[Exception], ...] = ()) -> T:
        """Call ``fn`` until it succeeds, fails permanently, or the retry budget is spent.

        ``also`` names further errors worth a fresh attempt (a use case passes Conflict: a
        lost compare-and-swap race is retried on fresh data); exhausted, they are re-raised.
        """

        def retryable(exc: BaseException) -> bool:
            return is_transient(exc) or isinstance(exc, also)

        started = time.monotonic()
        try:
            # The first attempt runs without the retry machinery: almost every call succeeds
            # at once, and building a Retrying per call is measurable on the hot path.
            return fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            failure: Exception = exc
        first_wait = random.uniform(0, min(self.initial_backoff, self.max_backoff))
        if self._give_up(failure, 1, time.monotonic() - started, first_wait):
            exhausted = _exhausted(failure)
            if exhausted is failure:
                raise failure
            raise exhausted from failure
        self._note_retry(failure)
        # Attempt 1 of these is the second in all: its wait is the second step of the
        # exponential backoff.
        backoff = wait_random_exponential(multiplier=self.initial_backoff * 2, max=self.max_backoff)

        def stop(state) -> bool:
            elapsed = time.monotonic() - started
            failure = state.outcome.exception() if state.outcome is not None else None
            return self._give_up(failure, state.attempt_number + 1, elapsed, backoff(state))

        retrying = Retrying(
            stop=stop,
            wait=backoff,
            before_sleep=lambda state: self._note_retry(
                state.outcome.exception() if state.outcome is not None else None
            ),
            retry=retry_if_exception(retryable),
            reraise=True,
        )
        time.sleep(first_wait)
        try:
            return retrying(fn)
        except Unavailable:
            raise
        except Exception as exc:
            # Only reached with a retryable error when the budget ran out: permanent errors
            # (and exhausted ``also`` ones) are re-raised unchanged for the caller to report.
            if is_transient(exc):
                raise _exhausted(exc) from exc
            raise

    def _give_up(
        self, failure: BaseException | None, attempts: int, elapsed: float, next_wait: float
    ) -> bool:
        """True when no further attempt fits the budget of ``failure`` or the call's deadline."""
        left = time_left()
        # An attempt needs some time of its own: starting one at the deadline only produces a
        # write the client no longer waits for.
        if left is not None and left - next_wait < 0.05:
            return True
        if failure is not None and is_lost_connection(failure):
            return elapsed + next_wait > self.connection_seconds
        if failure is not None and _is_sqlite_busy(failure):
            # SQLite already waited its busy timeout for the lock: waiting again would make
            # the documented timeout a multiple of itself.
            return True
        return attempts >= self.max_attempts or elapsed + next_wait > self.max_seconds

    def _note_retry(self, exc: BaseException | None) -> None:
        if self.on_retry is not None and exc is not None:
            self.on_retry(retry_reason(exc))


def retry_reason(exc: BaseException) -> str:
    """Why ``exc`` is retried, as one of a few fixed words (a metric label)."""
    if is_lost_connection(exc):
        return "connection_lost"
    if is_transient(exc):
        return "transient"
    return "conflict"


def _exhausted(exc: Exception) -> Exception:
    if isinstance(exc, Unavailable) or not is_transient(exc):
        return exc
    # The message names only the error type: driver messages can carry SQL.
    return Unavailable(f"database unavailable after retries ({type(exc).__name__})")
