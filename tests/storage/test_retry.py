"""The retry policy: transient failures are retried, permanent ones are not, and it is bounded."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from storage import Conflict as StorageConflict
from storage import RetryPolicy, StorageError, Tenant, Unavailable, is_transient
from storage.deadlines import bounded_by
from storage.retry import is_lost_connection

FAST = RetryPolicy(max_attempts=5, max_seconds=5, initial_backoff=0.001, max_backoff=0.01)


def serialization_failure() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("UPDATE ...", {}, pg_errors.SerializationFailure("40001"))


def deadlock() -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("UPDATE ...", {}, pg_errors.DeadlockDetected("40P01"))


def connection_refused() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("SELECT 1", {}, psycopg.OperationalError("connection refused"))


def connection_lost() -> sa_exc.DBAPIError:
    error = sa_exc.DBAPIError("SELECT 1", {}, Exception("server closed the connection"))
    error.connection_invalidated = True
    return error


def sqlite_locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))


def unique_violation() -> sa_exc.IntegrityError:
    return sa_exc.IntegrityError("INSERT ...", {}, pg_errors.UniqueViolation("23505"))


class Flaky:
    """Fails with the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


class FailsMany(Flaky):
    """Fails ``times`` times with a fresh ``make_error()`` each, then returns "done".

    The errors are made as they are raised: building 100,000 of them up front takes seconds.
    """

    def __init__(self, make_error: Callable[[], BaseException], times: int) -> None:
        super().__init__()
        self.make_error = make_error
        self.times = times

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.make_error()
        return "done"


@pytest.mark.parametrize(
    "error",
    [serialization_failure(), deadlock(), connection_refused(), connection_lost(), sqlite_locked()],
    ids=["40001", "40P01", "refused", "invalidated", "sqlite-locked"],
)
def test_transient_failures_are_recognised(error):
    assert is_transient(error)


def test_a_driver_error_is_transient_without_a_sqlalchemy_wrapper():
    assert is_transient(pg_errors.SerializationFailure("40001"))
    assert is_transient(sqlite3.OperationalError("database is locked"))
    assert not is_transient(Unavailable("no cause"))


@pytest.mark.parametrize(
    "error",
    [
        unique_violation(),
        sa_exc.ProgrammingError("SELECT", {}, pg_errors.UndefinedTable("42P01")),
        sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x")),
        sa_exc.OperationalError("SELECT", {}, pg_errors.QueryCanceled("57014")),
        ValueError("not a database error"),
    ],
    ids=["unique", "undefined-table", "sqlite-no-table", "query-canceled", "value-error"],
)
def test_permanent_failures_are_not_transient(error):
    assert not is_transient(error)


def test_a_transient_failure_is_retried_then_succeeds():
    fn = Flaky(serialization_failure(), connection_refused(), deadlock())

    assert FAST.run(fn) == "done"
    assert fn.calls == 4


def test_every_retry_is_reported_with_its_reason():
    reasons: list[str] = []
    policy = dataclasses.replace(FAST, on_retry=reasons.append)
    fn = Flaky(serialization_failure(), connection_lost(), StorageConflict("scenario", "s-1"))

    assert policy.run(fn, also=(StorageConflict,)) == "done"
    assert reasons == ["transient", "connection_lost", "conflict"]


def test_a_call_that_succeeds_at_once_reports_no_retry():
    reasons: list[str] = []

    assert dataclasses.replace(FAST, on_retry=reasons.append).run(Flaky()) == "done"
    assert reasons == []


def test_sqlite_busy_is_not_retried_since_the_busy_timeout_already_waited():
    fn = Flaky(sqlite_locked())

    with pytest.raises(Unavailable):
        FAST.run(fn)

    assert fn.calls == 1


def test_a_permanent_failure_is_raised_after_exactly_one_attempt():
    error = unique_violation()
    fn = Flaky(error)

    with pytest.raises(sa_exc.IntegrityError) as raised:
        FAST.run(fn)

    assert raised.value is error
    assert fn.calls == 1


def test_exhausted_attempts_raise_unavailable_with_the_cause_chained():
    fn = Flaky(*[deadlock() for _ in range(10)])

    with pytest.raises(Unavailable) as raised:
        FAST.run(fn)

    assert fn.calls == FAST.max_attempts
    assert isinstance(raised.value.__cause__, sa_exc.DBAPIError)
    # Only the error type: driver messages can carry SQL.
    assert str(raised.value) == "database unavailable after retries (DBAPIError)"


def test_retrying_stops_when_the_time_budget_is_spent():
    policy = RetryPolicy(max_attempts=1_000, max_seconds=0.5, initial_backoff=0.05, max_backoff=0.1)
    fn = FailsMany(connection_refused, 1_000)

    started = time.monotonic()
    with pytest.raises(Unavailable):
        policy.run(fn)
    elapsed = time.monotonic() - started

    # At least the budget, and nowhere near the ~50 s that 1,000 attempts would take.
    assert 0.5 <= elapsed < 10
    assert 1 < fn.calls < 1_000


def test_database_run_retries_the_whole_transaction_in_a_fresh_unit_of_work(database, make):
    name = f"retried-{uuid.uuid4().hex}"
    attempts = []

    def create(uow):
        attempts.append(uow)
        tenant = uow.tenants.add(Tenant(str(uuid.uuid4()), name, make.now))
        if len(attempts) == 1:
            # After a write: the retry must not find the first attempt's tenant.
            raise serialization_failure()
        return tenant

    tenant = database.run(create)

    assert len(attempts) == 2
    assert attempts[0] is not attempts[1]
    assert [t.id for t in database.run(lambda uow: uow.tenants.list()) if t.name == name] == [
        tenant.id
    ]


def test_database_run_raises_storage_errors_from_permanent_driver_failures(database):
    def broken(uow):
        raise unique_violation()

    with pytest.raises(StorageError) as raised:
        database.run(broken)
    assert isinstance(raised.value.__cause__, sa_exc.IntegrityError)


def test_database_run_leaves_other_exceptions_alone(database):
    def buggy(uow):
        raise KeyError("service bug")

    with pytest.raises(KeyError):
        database.run(buggy)


def test_a_pool_timeout_is_transient():
    assert is_transient(sa_exc.TimeoutError("QueuePool limit reached"))


def test_a_lost_connection_during_commit_is_not_retried(database, make, monkeypatch):
    """The commit may have landed: running the transaction again could apply it twice.

    The fault is injected below the unit of work, on the SQLAlchemy connection, so the
    whole real path (unit of work, error translation, retry policy) is exercised: the
    commit really happens, then the "connection" fails.
    """
    from sqlalchemy.engine import Connection

    from storage import CommitOutcomeUnknown

    real_commit = Connection.commit

    def commit_then_lose_the_connection(self):
        real_commit(self)
        raise connection_lost()

    monkeypatch.setattr(Connection, "commit", commit_then_lose_the_connection)
    attempts = []
    name = f"c-{uuid.uuid4().hex}"

    def create(uow):
        attempts.append(uow)
        return uow.tenants.add(Tenant(str(uuid.uuid4()), name, make.now))

    with pytest.raises(CommitOutcomeUnknown):
        database.run(create)
    monkeypatch.undo()
    assert len(attempts) == 1
    landed = [t for t in database.run(lambda uow: uow.tenants.list()) if t.name == name]
    assert len(landed) == 1  # applied once, never twice


def test_a_serialization_failure_during_commit_is_retried(database, make, monkeypatch):
    """Conflicts are reported before anything is committed, so the retry is safe."""
    from storage.unit_of_work import SqlUnitOfWork

    real_commit = SqlUnitOfWork.commit
    failures = [serialization_failure()]

    def commit_once_failing(self):
        if failures:
            self.rollback()
            raise failures.pop()
        return real_commit(self)

    monkeypatch.setattr(SqlUnitOfWork, "commit", commit_once_failing)
    attempts = []

    def create(uow):
        attempts.append(uow)
        return uow.tenants.add(Tenant(str(uuid.uuid4()), f"s-{uuid.uuid4().hex}", make.now))

    database.run(create)
    assert len(attempts) == 2


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (connection_refused(), True),
        (connection_lost(), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (serialization_failure(), False),
        (deadlock(), False),
        (unique_violation(), False),
        (sqlite_locked(), False),
        (ValueError("not a database error"), False),
    ],
    ids=["refused", "invalidated", "bare-driver", "40001", "40P01", "unique", "sqlite", "other"],
)
def test_only_a_failure_of_the_connection_itself_counts_as_lost(error, lost):
    # A lost connection during COMMIT leaves the outcome unknown; a conflict the database
    # reported means nothing was committed, so telling them apart decides what callers hear.
    assert is_lost_connection(error) is lost


def _unavailable(cause: BaseException | None) -> Unavailable:
    error = Unavailable("database unavailable")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (_unavailable(connection_refused()), True),
        (_unavailable(unique_violation()), False),
        (_unavailable(None), False),
    ],
    ids=["lost-connection", "permanent-cause", "no-cause"],
)
def test_an_unavailable_error_is_as_transient_as_its_cause(error, transient):
    assert is_transient(error) is transient


def test_the_default_policy_tries_a_conflict_five_times():
    fn = Flaky(*[serialization_failure() for _ in range(10)])
    policy = RetryPolicy(initial_backoff=0, max_backoff=0)  # the default bounds, no waiting

    with pytest.raises(Unavailable):
        policy.run(fn)

    assert fn.calls == 5 == RetryPolicy().max_attempts


def test_a_lost_connection_is_retried_past_five_attempts_while_its_time_lasts():
    # A restart refuses connections for a while: attempts are not the limit, time is.
    fn = Flaky(*[connection_refused() for _ in range(30)])
    policy = RetryPolicy(initial_backoff=0.001, max_backoff=0.001, connection_seconds=30)

    assert policy.run(fn) == "done"
    assert fn.calls == 31


def test_a_lost_connection_is_given_up_after_connection_seconds():
    fn = FailsMany(connection_refused, 100_000)
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.01, connection_seconds=0.2)

    started = time.monotonic()
    with pytest.raises(Unavailable):
        policy.run(fn)

    assert 5 < fn.calls < 100_000
    assert time.monotonic() - started < 5


def test_no_retry_starts_past_the_calls_deadline():
    fn = FailsMany(connection_refused, 100_000)
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.01, connection_seconds=60)

    started = time.monotonic()
    with bounded_by(0.3), pytest.raises(Unavailable):
        policy.run(fn)

    assert time.monotonic() - started < 5  # far less than connection_seconds


def test_a_call_without_time_left_is_not_retried():
    fn = Flaky(connection_refused())

    with bounded_by(0.0), pytest.raises(Unavailable):
        RetryPolicy(initial_backoff=0.001, max_backoff=0.001).run(fn)

    assert fn.calls == 1


def test_an_unavailable_error_out_of_retries_is_raised_as_it_is():
    # A repository already turned the driver error into Unavailable: it is not wrapped again.
    error = _unavailable(serialization_failure())
    fn = Flaky(error, error)

    with pytest.raises(Unavailable) as raised:
        dataclasses.replace(FAST, max_attempts=1).run(fn)

    assert raised.value is error
    assert fn.calls == 1


@pytest.mark.parametrize(
    ("elapsed", "next_wait", "gives_up"),
    [(3.0, 1.0, False), (4.0, 1.0, False), (4.0, 1.5, True)],
    ids=["inside", "ending-at-the-budget", "past-the-budget"],
)
def test_a_lost_connection_is_retried_while_the_wait_ends_within_connection_seconds(
    elapsed, next_wait, gives_up
):
    policy = RetryPolicy(max_attempts=1, max_seconds=0.1, connection_seconds=5.0)

    assert policy._give_up(connection_refused(), 99, elapsed, next_wait) is gives_up


@pytest.mark.parametrize(
    ("seconds", "next_wait", "gives_up"),
    [(100.0, 1.0, False), (100.0, 99.0, False), (1.0, 0.99, True)],
    ids=["far-from-it", "a-second-left-after-the-wait", "less-than-50-ms-left-after-the-wait"],
)
def test_a_retry_needs_50_ms_left_after_its_wait_before_the_deadline(seconds, next_wait, gives_up):
    policy = RetryPolicy(connection_seconds=1_000)

    with bounded_by(seconds):
        assert policy._give_up(connection_refused(), 1, 0.0, next_wait) is gives_up


@pytest.mark.parametrize(
    ("attempts", "elapsed", "next_wait", "gives_up"),
    [(4, 8.0, 2.0, False), (4, 8.0, 2.5, True), (5, 0.0, 0.0, True)],
    ids=["wait-ending-at-max-seconds", "wait-past-max-seconds", "max-attempts-made"],
)
def test_a_conflict_is_retried_within_max_attempts_and_max_seconds(
    attempts, elapsed, next_wait, gives_up
):
    policy = RetryPolicy(max_attempts=5, max_seconds=10.0)

    assert policy._give_up(serialization_failure(), attempts, elapsed, next_wait) is gives_up


@pytest.mark.parametrize(
    ("error", "lost"),
    [
        (_unavailable(connection_refused()), True),
        (_unavailable(psycopg.OperationalError("server closed the connection")), True),
        (_unavailable(serialization_failure()), False),
        (_unavailable(None), False),
    ],
    ids=["refused", "bare-driver", "40001", "no-cause"],
)
def test_an_unavailable_error_is_a_lost_connection_when_its_cause_is(error, lost):
    assert is_lost_connection(error) is lost


def test_two_attempts_allow_one_retry():
    fn = Flaky(serialization_failure())

    assert dataclasses.replace(FAST, max_attempts=2).run(fn) == "done"
    assert fn.calls == 2


def test_a_driver_error_raised_from_a_socket_error_is_still_a_lost_connection():
    error = psycopg.OperationalError("server closed the connection unexpectedly")
    error.__cause__ = ConnectionResetError("connection reset by peer")

    assert is_lost_connection(error) is True


def test_a_permanent_failure_on_a_retry_ends_the_retries():
    fn = Flaky(serialization_failure(), unique_violation())

    with pytest.raises(sa_exc.IntegrityError):
        FAST.run(fn)

    assert fn.calls == 2
