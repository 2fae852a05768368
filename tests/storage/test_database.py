"""Database: engine setup, units of work, health ping and migrations on both engines."""

from __future__ import annotations

import socket
import time
import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text

from storage import Database, NotFound, Tenant, Unavailable, head_revision, sqlite_url_for
from storage.retry import RetryPolicy
from storage.schema import metadata


def test_migrations_build_exactly_the_schema_the_tables_declare(database):
    dialect = database.engine.dialect.name

    def on_this_engine(obj, name, type_, reflected, compare_to):
        # An index declared for one engine only (`.ddl_if(dialect=...)`) exists only there.
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    with database.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": on_this_engine}
        )
        diff = compare_metadata(context, metadata)

    assert diff == []


def test_migrating_twice_is_a_no_op_and_reports_the_head_revision(database):
    database.migrate()

    assert database.current_revision() == head_revision()


def test_a_fresh_database_has_no_revision_until_migrated(tmp_path):
    db = Database(sqlite_url_for(tmp_path / "data"))
    try:
        assert db.current_revision() is None
        db.migrate()
        assert db.current_revision() == head_revision()
    finally:
        db.dispose()


def test_sqlite_url_for_creates_the_data_directory(tmp_path):
    url = sqlite_url_for(tmp_path / "nested" / "dir")

    assert (tmp_path / "nested" / "dir").is_dir()
    assert url == f"sqlite:///{tmp_path / 'nested' / 'dir' / 'simconfig.db'}"


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    db = Database(sqlite_url_for(tmp_path))
    try:
        with db.engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") > 0
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        ("sqlite:///simconfig.db", "sqlite"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "postgresql"),
    ],
)
def test_dialect_names_the_engine_of_the_url(url, dialect):
    db = Database(url)
    try:
        assert db.dialect == dialect
    finally:
        db.dispose()


# A query only the named engine understands: a dialect that names the wrong one fails it.
ENGINE_VERSION_QUERIES = {
    "sqlite": "SELECT 'SQLite ' || sqlite_version()",
    "postgresql": "SELECT version()",
}


def test_dialect_names_the_engine_the_database_talks_to(database, request):
    with database.engine.connect() as connection:
        version = connection.execute(text(ENGINE_VERSION_QUERIES[database.dialect])).scalar()

    assert database.dialect == request.node.callspec.params["database"]
    expected = {"sqlite": "SQLite ", "postgresql": "PostgreSQL "}[database.dialect]
    assert version.startswith(expected)


def test_creating_a_database_does_not_connect():
    db = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")

    assert db.dialect == "postgresql"
    db.dispose()


def test_ping_answers_true_when_the_database_is_up(database):
    assert database.ping() is True


def test_ping_returns_false_quickly_when_nothing_listens(closed_port):
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/postgres")
    try:
        started = time.monotonic()
        assert db.ping() is False
        # Refused at once: no connect timeout or retry backoff to sit out.
        assert time.monotonic() - started < 10
    finally:
        db.dispose()


def test_a_database_that_stays_down_is_unavailable_after_bounded_retries(closed_port):
    # A refused connection is retried for connection_seconds, not a number of attempts.
    policy = RetryPolicy(initial_backoff=0.05, max_backoff=0.05, connection_seconds=0.5)
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port}/postgres", retry=policy)
    connects = []
    event.listen(db.engine, "do_connect", lambda *args: connects.append(args))
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as raised:
            db.run(lambda uow: uow.tenants.count())
        assert raised.value.__cause__ is not None
        assert 2 <= len(connects) < 100
        assert time.monotonic() - started < 10
    finally:
        db.dispose()


def test_the_unit_of_work_rolls_back_uncommitted_work_by_default(database, make):
    tenant = Tenant(str(uuid.uuid4()), f"t-{uuid.uuid4().hex}", make.now)

    with database.unit_of_work() as uow:
        uow.tenants.add(tenant)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.tenants.get(tenant.id))


def test_the_unit_of_work_keeps_committed_work_and_drops_what_follows(database, make):
    kept = Tenant(str(uuid.uuid4()), f"t-{uuid.uuid4().hex}", make.now)
    dropped = Tenant(str(uuid.uuid4()), f"t-{uuid.uuid4().hex}", make.now)

    with database.unit_of_work() as uow:
        uow.tenants.add(kept)
        uow.commit()
        uow.tenants.add(dropped)

    assert database.run(lambda uow: uow.tenants.get(kept.id)) == kept
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.tenants.get(dropped.id))


def test_naive_datetimes_are_taken_as_utc_and_returned_aware(database):
    naive = datetime(2024, 7, 1, 8, 30, 0, 250)
    tenant = Tenant(str(uuid.uuid4()), f"t-{uuid.uuid4().hex}", naive)

    stored = database.run(lambda uow: uow.tenants.add(tenant))

    assert stored.create_time == naive.replace(tzinfo=UTC)


def test_concurrent_sqlite_writers_wait_for_each_other_instead_of_failing(tmp_path):
    import threading

    db = Database(sqlite_url_for(tmp_path), retry=RetryPolicy(max_attempts=1))
    db.migrate()
    errors: list[BaseException] = []

    def write(index: int) -> None:
        def read_then_write(uow):
            count = uow.tenants.count()
            time.sleep(0.01)  # hold the write lock a moment, so the others queue behind it
            uow.tenants.add(Tenant(f"t{index}", f"tenant {index} after {count}", datetime.now(UTC)))

        try:
            db.run(read_then_write)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert db.run(lambda uow: uow.tenants.count()) == 8
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM tenants")).scalar() == 8
    finally:
        db.dispose()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_newest_migration_is_0023():
    # A new migration must come with a deliberate update here (and a note in the README).
    assert head_revision() == "0023"
