"""No wait on the database is unbounded: server-side timeouts, and nothing committed late."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from service.app import tenants
from storage import ConnectionLimits, Database, DeadlineExceeded, StorageError
from storage.deadlines import bounded_by


@pytest.fixture
def limited(postgres_url):
    database = Database(
        postgres_url,
        limits=ConnectionLimits(statement_timeout=0.5, idle_in_transaction_timeout=2),
    )
    yield database
    database.dispose()


def test_sessions_carry_the_statement_and_idle_in_transaction_timeouts(limited):
    for engine in limited.engines:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "500ms"
            assert (
                connection.execute(text("SHOW idle_in_transaction_session_timeout")).scalar()
                == "2s"
            )


def test_a_statement_past_the_timeout_is_cancelled_and_not_retried(limited):
    started = time.monotonic()
    with pytest.raises(StorageError) as raised:
        limited.read(lambda uow: uow._connection.execute(text("SELECT pg_sleep(5)")))
    assert "OperationalError" in str(raised.value)
    assert time.monotonic() - started < 4  # cancelled at 0.5 s, not slept out nor retried


def test_the_default_limits_bound_every_wait():
    args = ConnectionLimits().connect_args()
    assert "statement_timeout=30000" in args["options"]
    assert "idle_in_transaction_session_timeout=60000" in args["options"]
    assert args["keepalives"] == 1
    assert args["tcp_user_timeout"] == 10_000


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_transaction_past_the_calls_deadline_is_rolled_back_not_committed(
    engine, request, migrated_sqlite_url
):
    url = migrated_sqlite_url if engine == "sqlite" else request.getfixturevalue("postgres_url")
    database = Database(url)
    database.migrate()
    before = database.read(lambda uow: uow.tenants.count())
    try:
        with bounded_by(0), pytest.raises(DeadlineExceeded):
            tenants.new_tenant(database, f"late-{engine}-{time.monotonic_ns()}")
        assert database.read(lambda uow: uow.tenants.count()) == before
    finally:
        database.dispose()
