"""Warm GetScenario and GetConfig calls are answered from memory on PostgreSQL, never stale.

Two servers on one PostgreSQL database stand for two replicas, each with its own memory and
its own notification listener. A warm call sends no statement at all; a change made through
either replica, or behind both of them in plain SQL, reaches the other within a second; a
caller always reads its own writes; and another tenant's id stays NOT_FOUND.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import grpc
import pytest
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
from sqlalchemy import event, text

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings

pytestmark = pytest.mark.usefixtures("migrated_postgres_url")


@dataclass
class Replica:
    scenarios: scenario_service_pb2_grpc.ScenarioServiceStub
    simulations: simulation_service_pb2_grpc.SimulationServiceStub
    configs: config_service_pb2_grpc.ConfigServiceStub
    sent: list[str] = field(default_factory=list)


@dataclass
class Replicas:
    a: Replica
    b: Replica
    metadata: tuple
    other_tenant: tuple
    database: storage.Database


def _counting(database: storage.Database, sent: list[str]) -> None:
    for engine in database.engines:

        @event.listens_for(engine, "before_cursor_execute")
        def count(connection, cursor, statement, parameters, context, executemany):
            if threading.current_thread().name.startswith("simconfig-rpc"):
                sent.append(statement)


@pytest.fixture
def replicas(migrated_postgres_url, tmp_path) -> Iterator[Replicas]:
    setup = storage.Database(migrated_postgres_url)
    tenant = tenants.new_tenant(setup, "acme")
    key = tenants.issue_key(setup, tenant.id).secret
    other = tenants.issue_key(setup, tenants.new_tenant(setup, "other").id).secret
    running, channels, made = [], [], []
    for name in ("a", "b"):
        database = storage.Database(migrated_postgres_url)
        server, port = create_server(
            Settings(port=0, data_dir=tmp_path / name, architect_workers=0), database=database
        )
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        replica = Replica(
            scenario_service_pb2_grpc.ScenarioServiceStub(channel),
            simulation_service_pb2_grpc.SimulationServiceStub(channel),
            config_service_pb2_grpc.ConfigServiceStub(channel),
        )
        _counting(database, replica.sent)
        running.append(server)
        channels.append(channel)
        made.append(replica)
    yield Replicas(made[0], made[1], (("x-api-key", key),), (("x-api-key", other),), setup)
    for channel in channels:
        channel.close()
    for server in running:
        server.stop(0)
    setup.dispose()


def _create(replicas: Replicas, name: str) -> scenario_pb2.Scenario:
    return replicas.a.scenarios.CreateScenario(
        scenario_service_pb2.CreateScenarioRequest(
            scenario=scenario_pb2.Scenario(display_name=name)
        ),
        metadata=replicas.metadata,
        timeout=10,
    ).scenario


def _get(replica: Replica, scenario_id: str, metadata) -> scenario_pb2.Scenario:
    return replica.scenarios.GetScenario(
        scenario_service_pb2.GetScenarioRequest(scenario_id=scenario_id),
        metadata=metadata,
        timeout=10,
    ).scenario


def _until(condition: Callable[[], bool], seconds: float) -> float:
    """Seconds until ``condition()`` held; fails if it did not within ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "not within the time allowed"
        time.sleep(0.01)
    return time.monotonic() - started


def _warm(replicas: Replicas, replica: Replica, scenario_id: str) -> None:
    """Waits until ``replica`` answers ``scenario_id`` from memory (its feed is listening)."""

    def answered_from_memory() -> bool:
        _get(replica, scenario_id, replicas.metadata)
        replica.sent.clear()
        _get(replica, scenario_id, replicas.metadata)
        return not replica.sent

    _until(answered_from_memory, 10)


def test_a_warm_get_scenario_sends_no_statement(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    for _ in range(20):
        assert _get(replicas.b, scenario.id, replicas.metadata) == scenario
    assert replicas.b.sent == []


def test_a_change_through_one_replica_reaches_the_others_memory_within_a_second(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    replicas.a.scenarios.UpdateScenario(
        scenario_service_pb2.UpdateScenarioRequest(
            scenario=scenario_pb2.Scenario(id=scenario.id, display_name="Renamed"),
            update_mask={"paths": ["display_name"]},
        ),
        metadata=replicas.metadata,
        timeout=10,
    )

    _until(lambda: _get(replicas.b, scenario.id, replicas.metadata).display_name == "Renamed", 1)


def test_a_simulation_added_elsewhere_updates_the_count_in_memory(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    replicas.a.simulations.CreateSimulation(
        simulation_service_pb2.CreateSimulationRequest(
            simulation=simulation_pb2.Simulation(
                name="Run", prompt="Two traders", scenario_id=scenario.id
            )
        ),
        metadata=replicas.metadata,
        timeout=10,
    )

    _until(lambda: _get(replicas.b, scenario.id, replicas.metadata).simulation_count == 1, 1)


def test_a_change_in_plain_sql_reaches_memory_too(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    with replicas.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE scenarios SET description = 'edited by hand' WHERE id = :id"),
            {"id": scenario.id},
        )

    _until(
        lambda: _get(replicas.b, scenario.id, replicas.metadata).description == "edited by hand",
        1,
    )


def test_a_caller_always_reads_its_own_writes(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.a, scenario.id)

    for round_ in range(20):
        name = f"Name {round_}"
        replicas.a.scenarios.UpdateScenario(
            scenario_service_pb2.UpdateScenarioRequest(
                scenario=scenario_pb2.Scenario(id=scenario.id, display_name=name),
                update_mask={"paths": ["display_name"]},
            ),
            metadata=replicas.metadata,
            timeout=10,
        )
        # At once, through the replica that wrote: no waiting for any notification.
        assert _get(replicas.a, scenario.id, replicas.metadata).display_name == name


def test_a_deletion_elsewhere_shows_in_memory(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    replicas.a.scenarios.DeleteScenario(
        scenario_service_pb2.DeleteScenarioRequest(scenario_id=scenario.id),
        metadata=replicas.metadata,
        timeout=10,
    )

    _until(lambda: _get(replicas.b, scenario.id, replicas.metadata).HasField("delete_time"), 1)


def test_another_tenant_gets_not_found_for_a_scenario_held_in_memory(replicas):
    scenario = _create(replicas, "Pricing")
    _warm(replicas, replicas.b, scenario.id)

    with pytest.raises(grpc.RpcError) as caught:
        _get(replicas.b, scenario.id, replicas.other_tenant)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _simulation(replicas: Replicas) -> simulation_pb2.Simulation:
    return replicas.a.configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sim"),
            config=config_pb2.SimulationConfig(
                title="Market",
                max_turns=10,
                model="sim-small-1",
                agents=[config_pb2.Agent(id="buyer", name="Buyer")],
            ),
        ),
        metadata=replicas.metadata,
        timeout=10,
    ).simulation


def _config(replica: Replica, simulation_id: str, metadata) -> config_service_pb2.GetConfigResponse:
    return replica.configs.GetConfig(
        config_service_pb2.GetConfigRequest(simulation_id=simulation_id),
        metadata=metadata,
        timeout=10,
    )


def _warm_config(replicas: Replicas, replica: Replica, simulation_id: str) -> None:
    def answered_from_memory() -> bool:
        _config(replica, simulation_id, replicas.metadata)
        replica.sent.clear()
        _config(replica, simulation_id, replicas.metadata)
        return not replica.sent

    _until(answered_from_memory, 10)


def _update_config(replica: Replica, replicas: Replicas, simulation_id: str, turns: int):
    current = _config(replica, simulation_id, replicas.metadata)
    return replica.configs.UpdateConfig(
        config_service_pb2.UpdateConfigRequest(
            simulation_id=simulation_id,
            config=config_pb2.SimulationConfig(max_turns=turns),
            update_mask={"paths": ["max_turns"]},
            etag=current.etag,
        ),
        metadata=replicas.metadata,
        timeout=10,
    )


def test_a_warm_get_config_sends_no_statement(replicas):
    simulation = _simulation(replicas)
    _warm_config(replicas, replicas.b, simulation.id)
    first = _config(replicas.b, simulation.id, replicas.metadata)

    for _ in range(20):
        assert _config(replicas.b, simulation.id, replicas.metadata) == first
    assert replicas.b.sent == []


def test_a_new_revision_through_one_replica_reaches_the_others_memory_within_a_second(replicas):
    simulation = _simulation(replicas)
    _warm_config(replicas, replicas.b, simulation.id)

    updated = _update_config(replicas.a, replicas, simulation.id, 42)

    def caught_up() -> bool:
        seen = _config(replicas.b, simulation.id, replicas.metadata)
        return seen.revision == updated.revision and seen.config.max_turns == 42

    _until(caught_up, 1)


def test_a_config_writer_always_reads_its_own_revision(replicas):
    simulation = _simulation(replicas)
    _warm_config(replicas, replicas.a, simulation.id)

    for turns in range(11, 31):
        _update_config(replicas.a, replicas, simulation.id, turns)
        assert _config(replicas.a, simulation.id, replicas.metadata).config.max_turns == turns


def test_a_simulation_deleted_elsewhere_is_not_found_in_memory(replicas):
    simulation = _simulation(replicas)
    _warm_config(replicas, replicas.b, simulation.id)

    replicas.a.simulations.DeleteSimulation(
        simulation_service_pb2.DeleteSimulationRequest(simulation_id=simulation.id),
        metadata=replicas.metadata,
        timeout=10,
    )

    def not_found() -> bool:
        try:
            _config(replicas.b, simulation.id, replicas.metadata)
        except grpc.RpcError as error:
            return error.code() == grpc.StatusCode.NOT_FOUND
        return False

    _until(not_found, 1)


def test_another_tenant_gets_not_found_for_a_config_held_in_memory(replicas):
    simulation = _simulation(replicas)
    _warm_config(replicas, replicas.b, simulation.id)

    with pytest.raises(grpc.RpcError) as caught:
        _config(replicas.b, simulation.id, replicas.other_tenant)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_config_regenerated_while_the_caller_waits_is_read_fresh_at_once(
    migrated_postgres_url, tmp_path
):
    database = storage.Database(migrated_postgres_url)
    tenant = tenants.new_tenant(database, "acme")
    metadata = (("x-api-key", tenants.issue_key(database, tenant.id).secret),)
    # The architect's worker commits the new revision off the call's thread: the waiting
    # call must not answer before the old config has left memory.
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=1), database=database
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            replica = Replica(
                scenario_service_pb2_grpc.ScenarioServiceStub(channel),
                simulation_service_pb2_grpc.SimulationServiceStub(channel),
                config_service_pb2_grpc.ConfigServiceStub(channel),
            )
            _counting(database, replica.sent)
            simulation = replica.configs.CreateSimulationWithConfig(
                config_service_pb2.CreateSimulationWithConfigRequest(
                    simulation=simulation_pb2.Simulation(name="Sim", prompt="Two traders"),
                    config=config_pb2.SimulationConfig(
                        title="Market",
                        max_turns=10,
                        model="sim-small-1",
                        agents=[config_pb2.Agent(id="buyer", name="Buyer")],
                    ),
                ),
                metadata=metadata,
                timeout=10,
            ).simulation
            replicas = Replicas(replica, replica, metadata, metadata, database)
            _warm_config(replicas, replica, simulation.id)
            for turns in (5, 6, 7):
                regenerated = replica.configs.RunArchitect(
                    config_service_pb2.RunArchitectRequest(
                        simulation_id=simulation.id,
                        parameters=config_pb2.ArchitectParameters(max_turns=turns),
                        wait=True,
                    ),
                    metadata=metadata,
                    timeout=30,
                ).simulation
                seen = _config(replica, simulation.id, metadata)
                assert regenerated.config_revision > 1
                assert seen.revision == regenerated.config_revision
    finally:
        server.stop(0)
        database.dispose()
