"""Through a real server on PostgreSQL: a call is walled into its tenant even past a broken query.

The API edge binds the caller's tenant for the storage layer, so the call's database work runs
under row-level security for that tenant (migration 0018). With GetScenario's tenant filter
taken away, another tenant's scenario is still NOT_FOUND, for reads and for the locked read a
write starts with; the caller's own scenario is found as before. The wall is on unless
``SIMCONFIG_DB_TENANT_WALL=false`` turns it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc
from sqlalchemy import bindparam, or_, select, text

import storage
from service.app import tenants
from service.server import create_server, open_database
from service.settings import Settings
from storage.queries import Query
from storage.repositories import scenarios as scenario_queries
from storage.schema import scenarios
from storage.tenancy import SERVICE_ROLE, acting_for

OFF = {"SIMCONFIG_DB_TENANT_WALL": "false"}


@dataclass
class Tenants:
    stub: scenario_service_pb2_grpc.ScenarioServiceStub
    mine: tuple
    theirs: tuple


@pytest.fixture
def two_tenants(migrated_postgres_url, tmp_path) -> Iterator[Tenants]:
    database = storage.Database(migrated_postgres_url)
    keys = []
    for name in ("mine", "theirs"):
        tenant = tenants.new_tenant(database, name)
        keys.append((("x-api-key", tenants.issue_key(database, tenant.id).secret),))
    # The read cache off: every GetScenario reads the database.
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, read_cache_entries=0),
        database=database,
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield Tenants(scenario_service_pb2_grpc.ScenarioServiceStub(channel), *keys)
    channel.close()
    server.stop(0)


def _create(running: Tenants, metadata: tuple, name: str) -> scenario_pb2.Scenario:
    return running.stub.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name=name)
        ),
        metadata=metadata,
        timeout=10,
    ).scenario


def _without_tenant_filter(include_deleted: bool, lock: str | None) -> Query:
    # The tenant id is still bound, as the repository passes it, but restricts nothing.
    any_tenant = or_(
        scenarios.c.tenant_id == bindparam("tenant_id"), bindparam("tenant_id").is_not(None)
    )
    statement = select(scenarios).where(any_tenant, scenarios.c.id == bindparam("scenario_id"))
    if lock is not None:
        statement = statement.with_for_update(of=scenarios)
    return Query(statement)


def test_a_call_never_sees_another_tenants_row_even_when_a_query_drops_its_filter(
    two_tenants, monkeypatch
):
    mine = _create(two_tenants, two_tenants.mine, "Mine")
    theirs = _create(two_tenants, two_tenants.theirs, "Theirs")
    monkeypatch.setattr(scenario_queries, "_get_query", _without_tenant_filter)

    def get(scenario_id: str) -> scenario_pb2.Scenario:
        return two_tenants.stub.GetScenario(
            scenario_service_pb2.GetScenarioRequest(scenario_id=scenario_id),
            metadata=two_tenants.mine,
            timeout=10,
        ).scenario

    assert get(mine.id).id == mine.id
    with pytest.raises(grpc.RpcError) as raised:
        get(theirs.id)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.RpcError) as raised:
        two_tenants.stub.DeleteScenario(
            scenario_service_pb2.DeleteScenarioRequest(scenario_id=theirs.id),
            metadata=two_tenants.mine,
            timeout=10,
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert (
        two_tenants.stub.GetScenario(
            scenario_service_pb2.GetScenarioRequest(scenario_id=theirs.id),
            metadata=two_tenants.theirs,
            timeout=10,
        ).scenario.id
        == theirs.id
    )


@pytest.mark.parametrize(("variables", "walled"), [({}, True), (OFF, False)])
def test_the_wall_is_on_unless_the_setting_turns_it_off(migrated_postgres_url, variables, walled):
    settings = Settings.from_env({"SIMCONFIG_DATABASE_URL": migrated_postgres_url, **variables})
    database = open_database(settings)
    try:
        with acting_for("any-tenant"):
            user = database.read(
                lambda uow: uow._connection.execute(text("SELECT current_user")).scalar()
            )
    finally:
        database.dispose()
    assert (user == SERVICE_ROLE) == walled
