"""Reads: autocommit, one statement, and a lost connection is replaced and the read retried.

PostgreSQL only: SQLite connections cannot be lost. The connections killed are those of a
``Database`` of the test's own. Killing every connection to the session's database would also
kill the idle ones pooled by the shared ``database`` fixture, and whichever test ran next and
checked one out without a retry (``clean_database``, a unit of work opened by hand) would fail
on it: a test that passed or failed by the order the tests ran in (docs/testing.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from storage import Database, RetryPolicy, ScenarioQuery


@pytest.fixture
def database(postgresql_database: Database) -> Database:
    """The session's PostgreSQL database, where ``make`` stores the rows read back."""
    return postgresql_database


@pytest.fixture
def reader(postgres_url: str, postgresql_database: Database) -> Iterator[Database]:
    """A ``Database`` of this test's own on the session's (migrated) PostgreSQL database."""
    own = Database(postgres_url, retry=RetryPolicy(max_attempts=5, max_seconds=5))
    yield own
    own.dispose()


def _fill_read_pool(reader: Database, connections: int = 3) -> set[int]:
    """Checks out ``connections`` read connections at once, then pools them idle: their pids."""
    with ExitStack() as stack:
        uows = [stack.enter_context(reader.read_unit_of_work()) for _ in range(connections)]
        return {
            uow._connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            for uow in uows
            if uow._connection is not None
        }


def _kill(database: Database, pids: set[int]) -> int:
    """Terminates the backends ``pids`` (as a server restart would) and waits until they are gone."""
    with database.engine.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM unnest(:pids) pid"
            ),
            {"pids": sorted(pids)},
        ).scalar_one()
        connection.commit()
    return killed


def test_a_read_runs_again_on_a_fresh_connection_when_its_pooled_ones_died(
    database, reader, make, tenant_id
):
    scenario = make.scenario(tenant_id)
    # Fill the read pool with idle connections, then kill them all behind its back.
    pids = _fill_read_pool(reader)
    assert _kill(database, pids) == len(pids) == 3

    found = reader.read(lambda uow: uow.scenarios.get(tenant_id, scenario.id))

    assert found.id == scenario.id


def test_a_list_read_also_survives_lost_connections(database, reader, make, tenant_id):
    make.scenario(tenant_id)
    pids = _fill_read_pool(reader)
    assert _kill(database, pids) == len(pids)

    rows = reader.read(lambda uow: uow.scenarios.list(tenant_id, ScenarioQuery(limit=10)))

    assert len(rows) == 1
