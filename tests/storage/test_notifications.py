"""Change notifications: PostgreSQL tells listeners about API-key changes as they commit."""

from __future__ import annotations

import queue
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from storage import API_KEYS_CHANNEL, ApiKey, notifications


def _key(tenant_id: str) -> ApiKey:
    return ApiKey(
        id=uuid.uuid4().hex[:16],
        tenant_id=tenant_id,
        scope="write",
        key_hash="sha256:" + uuid.uuid4().hex,
        create_time=datetime.now(UTC),
    )


def test_sqlite_has_no_change_feed(database):
    if database.dialect != "sqlite":
        pytest.skip("SQLite only")
    assert database.listener({API_KEYS_CHANNEL: print}) is None


@pytest.fixture
def feed(database):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no notifications")
    payloads: queue.Queue[str] = queue.Queue()
    syncs: queue.Queue[bool] = queue.Queue()
    listener = database.listener({API_KEYS_CHANNEL: payloads.put}, on_sync=syncs.put)
    assert listener.start(wait=10)
    yield payloads, syncs
    listener.stop()


def test_adding_and_revoking_a_key_notify_its_id(database, make, feed):
    payloads, syncs = feed
    assert syncs.get(timeout=5) is True
    key = _key(make.tenant())

    database.run(lambda uow: uow.api_keys.add(key))
    assert payloads.get(timeout=5) == key.id
    database.run(lambda uow: uow.api_keys.revoke(key.id, datetime.now(UTC)))
    assert payloads.get(timeout=5) == key.id


def test_a_rolled_back_change_notifies_nobody(database, make, feed):
    payloads, _ = feed
    key = _key(make.tenant())
    with database.unit_of_work() as uow:
        uow.api_keys.add(key)
        uow.rollback()

    with pytest.raises(queue.Empty):
        payloads.get(timeout=1)


def test_a_lost_connection_is_reported_and_listening_resumes(database, make, feed):
    payloads, syncs = feed
    assert syncs.get(timeout=5) is True
    with database.engine.connect() as connection:
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        )
        connection.commit()

    assert syncs.get(timeout=10) is False  # callers must treat what they cached as stale
    assert syncs.get(timeout=10) is True
    key = _key(make.tenant())
    database.run(lambda uow: uow.api_keys.add(key))
    assert payloads.get(timeout=5) == key.id


def test_stopping_ends_the_wait_for_notifications_at_once(database, monkeypatch):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no notifications")
    # A poll far longer than the test: only the stop itself can end the wait in time.
    monkeypatch.setattr(notifications, "_POLL_S", 60.0)
    listener = database.listener({API_KEYS_CHANNEL: print})
    assert listener.start(wait=10)
    listener.stop(timeout=5)
    assert not listener._thread.is_alive(), "the listener waited out its poll"


def test_the_listener_is_behind_while_a_notification_is_unread_or_being_handled(database, make):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no notifications")
    import threading

    handling, release = threading.Event(), threading.Event()

    def slow_handler(_payload: str) -> None:
        handling.set()
        release.wait(10)

    listener = database.listener({API_KEYS_CHANNEL: slow_handler})
    assert listener.maybe_behind(), "not listening yet"
    assert listener.start(wait=10)
    try:
        assert not listener.maybe_behind()
        database.run(lambda uow: uow.api_keys.add(_key(make.tenant())))
        # Heard but not handled yet: behind until the handler returns.
        assert handling.wait(5)
        assert listener.maybe_behind()
        # A second change arrives while the first is handled: unread, so still behind.
        database.run(lambda uow: uow.api_keys.add(_key(make.tenant())))
        assert listener.maybe_behind()
        release.set()
        deadline = time.monotonic() + 5
        while listener.maybe_behind() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not listener.maybe_behind()
    finally:
        release.set()
        listener.stop()
    assert listener.maybe_behind(), "stopped listening"
