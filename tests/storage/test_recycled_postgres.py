"""The test harness's recycled PostgreSQL databases: each test still starts on its own rows.

`migrated_postgres_url` hands out databases emptied after an earlier test instead of fresh
copies of the template; these tests hold it to being indistinguishable from a fresh copy.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

import storage
from service.app import tenants
from tests.conftest import postgres_admin_url
from tests.recycled_postgres import RecycledPostgres


@pytest.fixture
def pool(_migrated_postgres_template: str) -> Iterator[RecycledPostgres]:
    """A pool of its own, so that what these tests do to it reaches no other test."""
    recycled = RecycledPostgres(postgres_admin_url(), _migrated_postgres_template)
    yield recycled
    recycled.close()


def _scalar(url: str, statement: str):
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            return connection.execute(text(statement)).scalar()
    finally:
        engine.dispose()


def _execute(url: str, statement: str) -> None:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


def _exists(name: str | None) -> bool:
    return bool(
        _scalar(postgres_admin_url(), f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
    )


def _ended(connection) -> bool:
    try:
        connection.execute(text("SELECT 1"))
    except OperationalError:
        return True
    return False


def test_a_database_comes_back_with_no_rows_and_its_sequences_restarted(pool):
    url = pool.take()
    database = storage.Database(url)
    tenants.issue_key(database, tenants.new_tenant(database, "acme").id, "write")
    database.dispose()
    assert _scalar(url, "SELECT nextval('simulation_events_id_seq')") == 1
    assert _scalar(url, "SELECT nextval('simulation_events_id_seq')") == 2

    pool.give_back(url)
    again = pool.take()

    assert again == url  # reused, not copied again
    assert _scalar(again, "SELECT count(*) FROM tenants") == 0
    assert _scalar(again, "SELECT count(*) FROM api_keys") == 0
    assert _scalar(again, "SELECT nextval('simulation_events_id_seq')") == 1
    assert _scalar(again, "SELECT count(*) FROM alembic_version") == 1
    pool.give_back(again)


def test_a_database_whose_schema_a_test_changed_is_dropped_not_reused(pool):
    url = pool.take()
    _execute(url, "ALTER TABLE tenants ADD COLUMN left_behind text")

    pool.give_back(url)
    again = pool.take()

    assert again != url
    assert not _exists(make_url(url).database)
    assert (
        _scalar(
            again,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'left_behind'",
        )
        == 0
    )
    pool.give_back(again)


def test_a_database_whose_settings_a_test_changed_is_dropped_not_reused(pool):
    url = pool.take()
    name = make_url(url).database
    _execute(postgres_admin_url(), f"ALTER DATABASE \"{name}\" SET statement_timeout = '1s'")

    pool.give_back(url)

    assert not _exists(name)


def test_connections_left_open_are_ended_and_the_database_reused(pool):
    url = pool.take()
    engine = create_engine(url, poolclass=NullPool)
    connection = engine.connect()
    connection.execute(text("SELECT 1"))
    try:
        pool.give_back(url)
        assert _ended(connection)
        assert pool.take() == url
    finally:
        connection.invalidate()
        engine.dispose()


def test_a_database_someone_connected_to_after_it_was_emptied_is_not_handed_out(pool):
    url = pool.take()
    pool.give_back(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        late = engine.connect()  # a server a failed test left behind, reconnecting
        late.execute(text("SELECT 1"))
        again = pool.take()
        late.invalidate()  # the drop ended it
        assert again != url
        assert not _exists(make_url(url).database)
        pool.give_back(again)
    finally:
        engine.dispose()


def test_a_database_whose_tables_were_analyzed_is_dropped_not_reused(pool):
    url = pool.take()
    database = storage.Database(url)
    tenants.new_tenant(database, "acme")
    database.dispose()
    _execute(url, "ANALYZE tenants")

    pool.give_back(url)

    assert not _exists(make_url(url).database)
