"""Reads: autocommit, one statement, and a lost connection is replaced and the read retried."""

from __future__ import annotations

import pytest
from sqlalchemy import text


def _kill_other_connections(database) -> int:
    """Terminates every other connection to this database (as a server restart would)."""
    with database.engine.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
        connection.commit()
    return killed


def test_a_read_runs_again_on_a_fresh_connection_when_its_pooled_ones_died(
    database, make, tenant_id
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite connections cannot be lost")
    scenario = make.scenario(tenant_id)
    # Fill the read pool with idle connections, then kill them all behind its back.
    for _ in range(3):
        database.read(lambda uow: uow.scenarios.get(tenant_id, scenario.id))
    assert _kill_other_connections(database) >= 1

    found = database.read(lambda uow: uow.scenarios.get(tenant_id, scenario.id))

    assert found.id == scenario.id


def test_a_list_read_also_survives_lost_connections(database, make, tenant_id):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite connections cannot be lost")
    from storage import ScenarioQuery

    make.scenario(tenant_id)
    database.read(lambda uow: uow.scenarios.list(tenant_id, ScenarioQuery(limit=10)))
    _kill_other_connections(database)

    rows = database.read(lambda uow: uow.scenarios.list(tenant_id, ScenarioQuery(limit=10)))

    assert len(rows) == 1
