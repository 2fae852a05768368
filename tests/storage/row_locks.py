"""Observe, from a second connection, the locks a transaction holds on a row."""

from __future__ import annotations

import sqlite3
import threading
import time

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from storage import Database

# PostgreSQL's row-lock modes, weakest first. Each conflicts with a different set of the others,
# so the set a second connection is refused names the mode the first one holds:
#   FOR SHARE         refuses NO KEY UPDATE, UPDATE
#   FOR NO KEY UPDATE refuses SHARE, NO KEY UPDATE, UPDATE
#   FOR UPDATE        refuses all four
ROW_LOCK_MODES = ("KEY SHARE", "SHARE", "NO KEY UPDATE", "UPDATE")
_LOCK_NOT_AVAILABLE = "55P03"
SQLITE_WRITE_LOCK = "write"


def refused_row_locks(database: Database, table: str, row_id: str) -> set[str]:
    """The lock modes another connection cannot take on the row right now (it does not wait).

    On PostgreSQL: the modes of ``ROW_LOCK_MODES`` refused by ``FOR <mode> NOWAIT``. On SQLite,
    which locks the whole database for a writer: ``{"write"}`` while a write transaction is
    open, as ``BEGIN IMMEDIATE`` on another connection with no busy timeout shows.
    """
    if database.dialect == "sqlite":
        return _refused_sqlite_write_lock(database)
    refused = set()
    with database.engine.connect() as probe:
        for mode in ROW_LOCK_MODES:
            try:
                with probe.begin():
                    probe.execute(
                        text(f"SELECT 1 FROM {table} WHERE id = :id FOR {mode} NOWAIT"),
                        {"id": row_id},
                    )
            except OperationalError as exc:
                assert exc.orig.sqlstate == _LOCK_NOT_AVAILABLE, exc
                refused.add(mode)
    return refused


def wait_until_a_session_waits_for_a_lock(
    database: Database, finished: threading.Event, timeout: float = 30
) -> bool:
    """Returns True once a session of ``database`` (PostgreSQL) waits for a lock another holds.

    For a test that holds a lock on one connection and starts a statement that needs it on
    another thread: the holder lets go only once the statement is seen queued behind it. Returns
    False when ``finished`` is set first (the statement never met the lock); fails after
    ``timeout`` seconds of neither.
    """
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    while not finished.wait(0.01):
        with database.engine.connect() as probe:
            if probe.execute(query).scalar_one():
                return True
        assert time.monotonic() < deadline, "the statement neither waited nor finished"
    return False


def _refused_sqlite_write_lock(database: Database) -> set[str]:
    probe = sqlite3.connect(database.engine.url.database, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return set()
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc), exc
        return {SQLITE_WRITE_LOCK}
    finally:
        probe.close()
