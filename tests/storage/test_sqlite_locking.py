"""On the embedded database, reads and the health probe never queue behind a writer.

WAL lets readers run beside the one writer, as long as their transactions are deferred; a
write waits for the write lock for the documented busy timeout, once, not once per retry.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import make_url

from service.app import tenants
from storage import Database, Unavailable
from storage.database import SQLITE_BUSY_TIMEOUT_MS

BUSY_TIMEOUT = SQLITE_BUSY_TIMEOUT_MS / 1000


@pytest.fixture
def database(migrated_sqlite_url):
    database = Database(migrated_sqlite_url)
    tenants.new_tenant(database, "locking")
    yield database
    database.dispose()


@pytest.fixture
def writer_holding_the_lock(migrated_sqlite_url):
    """Another connection inside BEGIN IMMEDIATE: it holds the write lock until the test ends."""
    connection = sqlite3.connect(Path(make_url(migrated_sqlite_url).database), timeout=0)
    connection.isolation_level = None
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE tenants SET name = name")
    yield
    connection.execute("ROLLBACK")
    connection.close()


def test_reads_answer_while_a_writer_holds_the_lock(database, writer_holding_the_lock):
    started = time.monotonic()
    assert database.read(lambda uow: uow.tenants.count()) == 1
    assert time.monotonic() - started < BUSY_TIMEOUT / 2


def test_the_health_ping_answers_while_a_writer_holds_the_lock(database, writer_holding_the_lock):
    started = time.monotonic()
    assert database.ping() is True
    assert time.monotonic() - started < BUSY_TIMEOUT / 2


def test_a_write_gives_up_after_one_busy_timeout(database, writer_holding_the_lock):
    started = time.monotonic()
    with pytest.raises(Unavailable):
        database.run(lambda uow: uow.tenants.count())
    waited = time.monotonic() - started
    # Waiting once for the lock is the documented timeout; a retry would wait it again.
    assert BUSY_TIMEOUT * 0.9 <= waited < BUSY_TIMEOUT * 1.8
