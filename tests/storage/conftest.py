"""Fixtures of the storage contract suite: every test runs on SQLite and on PostgreSQL.

The schema is migrated once per engine and session; tests stay apart by using fresh tenant
ids. The few cross-tenant operations (tenant listing, job claiming, purging) empty the tables
first with `clean_database`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete

from storage import (
    ArchitectJob,
    ConfigRevision,
    Database,
    RetryPolicy,
    Scenario,
    Simulation,
    SimulationEvent,
    Tenant,
    sqlite_url_for,
)
from storage.schema import metadata


def _migrated(url: str) -> Iterator[Database]:
    db = Database(url, retry=RetryPolicy(max_attempts=5, max_seconds=5))
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory) -> Iterator[Database]:
    """The migrated SQLite database of the session."""
    yield from _migrated(sqlite_url_for(tmp_path_factory.mktemp("sqlite")))


@pytest.fixture(scope="session")
def postgresql_database(postgres_url: str) -> Iterator[Database]:
    """The migrated PostgreSQL database of the session."""
    yield from _migrated(postgres_url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Database:
    """A migrated database on each engine, shared by the tests of the session."""
    return request.getfixturevalue(f"{request.param}_database")


@pytest.fixture
def clean_database(database: Database) -> Database:
    """The database with every table emptied, for tests of cross-tenant operations."""
    with database.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(delete(table))
    return database


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class Factory:
    """Builds records with sensible defaults and stores them; keyword arguments override."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.now = utc_now()

    def tenant(self) -> str:
        tenant = Tenant(id=new_id(), name=f"tenant-{uuid.uuid4().hex}", create_time=self.now)
        return self.database.run(lambda uow: uow.tenants.add(tenant)).id

    def scenario_record(self, tenant_id: str, **overrides: Any) -> Scenario:
        values: dict[str, Any] = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "display_name": f"scenario {uuid.uuid4().hex[:8]}",
            "description": "",
            "labels": {},
            "create_time": self.now,
            "update_time": self.now,
        }
        return Scenario(**(values | overrides))

    def scenario(self, tenant_id: str, **overrides: Any) -> Scenario:
        record = self.scenario_record(tenant_id, **overrides)
        return self.database.run(lambda uow: uow.scenarios.add(record))

    def simulation_record(self, tenant_id: str, **overrides: Any) -> Simulation:
        values: dict[str, Any] = {
            "id": new_id(),
            "tenant_id": tenant_id,
            "scenario_id": None,
            "name": "simulation",
            "prompt": "a market with three traders",
            "labels": {},
            "status": "PENDING",
            "current_revision": 0,
            "architect_parameters": None,
            "results": None,
            "analysis": None,
            "last_error": None,
            "create_time": self.now,
            "update_time": self.now,
        }
        return Simulation(**(values | overrides))

    def simulation(self, tenant_id: str, **overrides: Any) -> Simulation:
        record = self.simulation_record(tenant_id, **overrides)
        return self.database.run(lambda uow: uow.simulations.add(record))

    def revision(self, sim: Simulation, revision: int, **overrides: Any) -> ConfigRevision:
        values: dict[str, Any] = {
            "tenant_id": sim.tenant_id,
            "simulation_id": sim.id,
            "revision": revision,
            "config": {"schema_version": 1, "title": f"v{revision}"},
            "sources": [{"uri": "catalogue://trader", "title": "Trader"}],
            "create_time": self.now,
            "actor": "key-1",
            "origin": "EDIT",
        }
        record = ConfigRevision(**(values | overrides))
        return self.database.run(lambda uow: uow.revisions.add(record))

    def event(self, sim: Simulation, **overrides: Any) -> SimulationEvent:
        values: dict[str, Any] = {
            "tenant_id": sim.tenant_id,
            "simulation_id": sim.id,
            "kind": "STATUS_CHANGED",
            "actor": "key-1",
            "create_time": self.now,
        }
        record = SimulationEvent(**(values | overrides))
        return replace(record, id=self.database.run(lambda uow: uow.events.add(record)))

    def job(self, sim: Simulation, **overrides: Any) -> ArchitectJob:
        values: dict[str, Any] = {
            "id": new_id(),
            "tenant_id": sim.tenant_id,
            "simulation_id": sim.id,
            "prompt": sim.prompt,
            "parameters": {"num_agents": 3},
            "actor": "key-1",
            "state": "QUEUED",
            "create_time": self.now,
            "update_time": self.now,
        }
        record = ArchitectJob(**(values | overrides))
        return self.database.run(lambda uow: uow.jobs.add(record))


@pytest.fixture
def make(database: Database) -> Factory:
    """A record factory bound to the test's database."""
    return Factory(database)


@pytest.fixture
def tenant_id(make: Factory) -> str:
    """A fresh tenant: no other test sees its rows."""
    return make.tenant()


@pytest.fixture
def other_tenant_id(make: Factory) -> str:
    """A second fresh tenant, for isolation tests."""
    return make.tenant()
