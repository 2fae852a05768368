"""Warm reads cost one database round trip: one statement, no BEGIN, no COMMIT.

Each test calls a read RPC through a real server twice (the first call warms the API-key
cache and the driver's prepared statements), then counts what the second call sends to the
database. A change that adds a round trip to a read fails here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest
from google.protobuf import field_mask_pb2
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2,
    scenario_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)
from sqlalchemy import event

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings


@dataclass
class Statements:
    """Every statement the server sent, and whether a transaction was open around it."""

    sent: list[str] = field(default_factory=list)
    in_transaction: list[bool] = field(default_factory=list)

    def clear(self) -> None:
        self.sent.clear()
        self.in_transaction.clear()


def _in_transaction(dbapi_connection) -> bool:
    # psycopg sends BEGIN itself unless in autocommit; sqlite3 reports an open transaction.
    if hasattr(dbapi_connection, "autocommit") and hasattr(dbapi_connection, "info"):
        return not dbapi_connection.autocommit
    return dbapi_connection.in_transaction


@dataclass
class Running:
    statements: Statements
    metadata: tuple
    scenarios: scenario_service_pb2_grpc.ScenarioServiceStub
    configs: config_service_pb2_grpc.ConfigServiceStub
    simulations: simulation_service_pb2_grpc.SimulationServiceStub
    revoked_key: str
    postgres: bool

    def warm(self, call):
        """Makes ``call`` twice and returns what the second one sent."""
        call()
        self.statements.clear()
        call()
        return list(self.statements.sent), list(self.statements.in_transaction)


@pytest.fixture(params=["sqlite", "postgresql"])
def running(request, tmp_path) -> Iterator[Running]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    database = storage.Database(request.getfixturevalue(name))
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    revoked = tenants.issue_key(database, tenant.id)
    tenants.revoke_key(database, revoked.record.id)
    statements = Statements()
    for engine in database.engines:

        @event.listens_for(engine, "before_cursor_execute")
        def count(connection, cursor, statement, parameters, context, executemany):
            # Only what RPC handlers send; the health probe runs on a thread of its own.
            if not threading.current_thread().name.startswith("simconfig-rpc"):
                return
            statements.sent.append(statement)
            statements.in_transaction.append(
                _in_transaction(connection.connection.dbapi_connection)
            )

    # The read cache off: what is counted is the database read path itself (the cache's
    # zero-statement warm reads are tested in test_read_cache.py).
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, read_cache_entries=0),
        database=database,
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield Running(
        statements,
        (("x-api-key", key),),
        scenario_service_pb2_grpc.ScenarioServiceStub(channel),
        config_service_pb2_grpc.ConfigServiceStub(channel),
        simulation_service_pb2_grpc.SimulationServiceStub(channel),
        revoked.secret,
        request.param == "postgresql",
    )
    channel.close()
    server.stop(0)


def _config_with_agents(count: int) -> config_pb2.SimulationConfig:
    return config_pb2.SimulationConfig(
        title="Market",
        max_turns=10,
        model="sim-small-1",
        agents=[config_pb2.Agent(id=f"agent-{i}", name=f"Agent {i}") for i in range(count)],
    )


def _simulation(running: Running, scenario_id: str = "") -> simulation_pb2.Simulation:
    return running.configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sim", scenario_id=scenario_id),
            config=_config_with_agents(20),
        ),
        metadata=running.metadata,
        timeout=10,
    ).simulation


def _assert_one_round_trip(sent: list[str], in_transaction: list[bool]) -> None:
    assert len(sent) == 1, sent
    assert sent[0].lstrip().upper().startswith("SELECT"), sent
    assert in_transaction == [False], "a read must not open a transaction (BEGIN/COMMIT)"


def test_a_warm_get_scenario_sends_one_statement_and_no_transaction(running):
    scenario = running.scenarios.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name="Pricing")
        ),
        metadata=running.metadata,
        timeout=10,
    ).scenario
    _simulation(running, scenario.id)
    request = scenario_service_pb2.GetScenarioRequest(scenario_id=scenario.id)

    sent, in_transaction = running.warm(
        lambda: running.scenarios.GetScenario(request, metadata=running.metadata, timeout=10)
    )

    _assert_one_round_trip(sent, in_transaction)


def test_a_warm_get_config_sends_one_statement_and_no_transaction(running):
    simulation = _simulation(running)
    request = config_service_pb2.GetConfigRequest(simulation_id=simulation.id)

    sent, in_transaction = running.warm(
        lambda: running.configs.GetConfig(request, metadata=running.metadata, timeout=10)
    )

    _assert_one_round_trip(sent, in_transaction)


@pytest.mark.parametrize(
    "rpc",
    [
        "ListScenarios",
        "GetSimulation",
        "ListSimulations",
        "GetConfigRevision",
        "ListConfigRevisions",
        "ListSimulationEvents",
    ],
)
def test_every_other_warm_read_sends_one_statement_and_no_transaction(running, rpc):
    simulation = _simulation(running)
    calls = {
        "ListScenarios": lambda: running.scenarios.ListScenarios(
            scenario_service_pb2.ListScenariosRequest(), metadata=running.metadata
        ),
        "GetSimulation": lambda: running.simulations.GetSimulation(
            simulation_service_pb2.GetSimulationRequest(simulation_id=simulation.id),
            metadata=running.metadata,
        ),
        "ListSimulations": lambda: running.simulations.ListSimulations(
            simulation_service_pb2.ListSimulationsRequest(), metadata=running.metadata
        ),
        "GetConfigRevision": lambda: running.configs.GetConfig(
            config_service_pb2.GetConfigRequest(simulation_id=simulation.id, revision=1),
            metadata=running.metadata,
        ),
        "ListConfigRevisions": lambda: running.configs.ListConfigRevisions(
            config_service_pb2.ListConfigRevisionsRequest(simulation_id=simulation.id),
            metadata=running.metadata,
        ),
        "ListSimulationEvents": lambda: running.simulations.ListSimulationEvents(
            simulation_service_pb2.ListSimulationEventsRequest(simulation_id=simulation.id),
            metadata=running.metadata,
        ),
    }

    sent, in_transaction = running.warm(calls[rpc])

    _assert_one_round_trip(sent, in_transaction)


def test_validate_config_sends_nothing_to_the_database(running):
    request = config_service_pb2.ValidateConfigRequest(config=_config_with_agents(3))

    sent, _ = running.warm(
        lambda: running.configs.ValidateConfig(request, metadata=running.metadata, timeout=10)
    )

    assert sent == []


@pytest.mark.parametrize("key", ["unknown", "revoked", "missing"])
def test_a_repeated_refused_key_is_refused_from_memory(running, key):
    metadata = {
        "unknown": (("x-api-key", "sck_0123456789abcdef_" + "x" * 43),),
        "revoked": (("x-api-key", running.revoked_key),),
        "missing": (),
    }[key]
    request = scenario_service_pb2.ListScenariosRequest()

    def call():
        with pytest.raises(grpc.RpcError) as caught:
            running.scenarios.ListScenarios(request, metadata=metadata, timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    sent, _ = running.warm(call)

    assert sent == []


def test_an_update_config_of_some_fields_reads_the_config_first(running):
    simulation = _simulation(running)
    etag = running.configs.GetConfig(
        config_service_pb2.GetConfigRequest(simulation_id=simulation.id),
        metadata=running.metadata,
    ).etag
    request = config_service_pb2.UpdateConfigRequest(
        simulation_id=simulation.id,
        config=config_pb2.SimulationConfig(title="Renamed"),
        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
        etag=etag,
    )
    running.statements.clear()

    reply = running.configs.UpdateConfig(request, metadata=running.metadata, timeout=10)

    assert reply.config.title == "Renamed" and len(reply.config.agents) == 20
    kinds = [statement.lstrip().split()[0].upper() for statement in running.statements.sent]
    kinds = [kind for kind in kinds if kind not in ("BEGIN", "COMMIT")]
    assert kinds[0] == "SELECT", running.statements.sent


def test_an_update_config_reads_once_and_writes_its_revision_in_one_batch(running):
    """PostgreSQL: one statement; SQLite: the lock with the current revision, then the writes."""
    simulation = _simulation(running)
    etag = running.configs.GetConfig(
        config_service_pb2.GetConfigRequest(simulation_id=simulation.id),
        metadata=running.metadata,
    ).etag
    request = config_service_pb2.UpdateConfigRequest(
        simulation_id=simulation.id, config=_config_with_agents(20), etag=etag
    )
    running.statements.clear()

    running.configs.UpdateConfig(request, metadata=running.metadata, timeout=10)

    # The lock with the current revision joined in, then the compare-and-swap update, the
    # revision and its event: on PostgreSQL one statement (WITH ... UPDATE, INSERT, INSERT),
    # on SQLite one after another. SQLite's BEGIN IMMEDIATE is a statement of its own;
    # psycopg's BEGIN is not reported.
    kinds = [statement.lstrip().split()[0].upper() for statement in running.statements.sent]
    kinds = [kind for kind in kinds if kind not in ("BEGIN", "COMMIT")]
    if running.postgres:
        # A whole config with its etag: checked and written by one statement, no read first.
        assert kinds == ["WITH"], running.statements.sent
        (write,) = running.statements.sent
        assert [
            write.count(verb) for verb in ("FOR UPDATE", "UPDATE simulations", "INSERT INTO")
        ] == [
            1,
            1,
            2,
        ]
    else:
        assert kinds == ["SELECT", "UPDATE", "INSERT", "INSERT"], running.statements.sent
