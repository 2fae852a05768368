"""Batch RPCs through a real server on both engines: key scopes, tenant isolation, racing retries."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

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

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings


@dataclass
class Caller:
    """Stubs that call with one tenant's key."""

    tenant_id: str
    metadata: tuple
    scenarios: scenario_service_pb2_grpc.ScenarioServiceStub
    configs: config_service_pb2_grpc.ConfigServiceStub
    simulations: simulation_service_pb2_grpc.SimulationServiceStub


@dataclass
class Running:
    database: storage.Database
    writer: Caller
    reader: Caller
    stranger: Caller


@pytest.fixture(params=["sqlite", "postgresql"])
def running(request, tmp_path) -> Iterator[Running]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    database = storage.Database(request.getfixturevalue(name))
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")

    def caller(tenant_id: str, scope: str) -> Caller:
        key = tenants.issue_key(database, tenant_id, scope).secret
        return Caller(
            tenant_id,
            (("x-api-key", key),),
            scenario_service_pb2_grpc.ScenarioServiceStub(channel),
            config_service_pb2_grpc.ConfigServiceStub(channel),
            simulation_service_pb2_grpc.SimulationServiceStub(channel),
        )

    acme = tenants.new_tenant(database, "acme").id
    other = tenants.new_tenant(database, "other").id
    yield Running(database, caller(acme, "write"), caller(acme, "read"), caller(other, "write"))
    channel.close()
    server.stop(0)
    database.dispose()


def _scenarios(caller: Caller, *names: str, request_id: str = "") -> list[scenario_pb2.Scenario]:
    return list(
        caller.scenarios.BatchCreateScenarios(
            scenario_service_pb2.BatchCreateScenariosRequest(
                requests=[
                    scenario_service_pb2.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name=name)
                    )
                    for name in names
                ],
                request_id=request_id,
            ),
            metadata=caller.metadata,
            timeout=30,
        ).scenarios
    )


def _simulation(caller: Caller, scenario_id: str = "") -> simulation_pb2.Simulation:
    return caller.configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sim", scenario_id=scenario_id),
            config=config_pb2.SimulationConfig(
                title="Market",
                max_turns=10,
                model="sim-small-1",
                agents=[config_pb2.Agent(id="a", name="A")],
            ),
        ),
        metadata=caller.metadata,
        timeout=10,
    ).simulation


def _calls(scenario_ids: list[str], simulation_ids: list[str], target: str):
    """Each batch RPC as (name, how to call it with a caller's stubs)."""
    return {
        "BatchCreateScenarios": lambda c: c.scenarios.BatchCreateScenarios(
            scenario_service_pb2.BatchCreateScenariosRequest(
                requests=[
                    scenario_service_pb2.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name="New")
                    )
                ]
            ),
            metadata=c.metadata,
            timeout=10,
        ),
        "BatchDeleteScenarios": lambda c: c.scenarios.BatchDeleteScenarios(
            scenario_service_pb2.BatchDeleteScenariosRequest(
                requests=[
                    scenario_service_pb2.DeleteScenarioRequest(scenario_id=i, force=True)
                    for i in scenario_ids
                ]
            ),
            metadata=c.metadata,
            timeout=10,
        ),
        "BatchGetSimulations": lambda c: c.simulations.BatchGetSimulations(
            simulation_service_pb2.BatchGetSimulationsRequest(simulation_ids=simulation_ids),
            metadata=c.metadata,
            timeout=10,
        ),
        "BatchMoveSimulations": lambda c: c.simulations.BatchMoveSimulations(
            simulation_service_pb2.BatchMoveSimulationsRequest(
                simulation_ids=simulation_ids, scenario_id=target
            ),
            metadata=c.metadata,
            timeout=10,
        ),
    }


def _stored(running: Running) -> tuple:
    """What acme has stored: scenarios (name, deleted) and simulations (id, scenario, etag)."""
    tenant_id = running.writer.tenant_id
    with running.database.read_unit_of_work() as uow:
        scenarios = uow.scenarios.list(
            tenant_id, storage.ScenarioQuery(limit=100, show_deleted=True)
        )
        simulations = uow.simulations.list(tenant_id, storage.SimulationQuery(limit=100))
    return (
        sorted((s.display_name, s.delete_time is None) for s in scenarios),
        sorted((s.id, s.scenario_id, s.etag) for s in simulations),
    )


@pytest.mark.parametrize(
    "rpc", ["BatchCreateScenarios", "BatchDeleteScenarios", "BatchMoveSimulations"]
)
def test_a_read_only_key_cannot_call_the_batch_writes(running, rpc):
    source, target = _scenarios(running.writer, "Source", "Target")
    sim = _simulation(running.writer, source.id)
    before = _stored(running)
    call = _calls([source.id], [sim.id], target.id)[rpc]

    with pytest.raises(grpc.RpcError) as caught:
        call(running.reader)

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _stored(running) == before


def test_a_read_only_key_can_batch_get(running):
    sim = _simulation(running.writer)

    got = _calls([], [sim.id], "")["BatchGetSimulations"](running.reader)

    assert [s.id for s in got.simulations] == [sim.id]


@pytest.mark.parametrize(
    "rpc", ["BatchDeleteScenarios", "BatchGetSimulations", "BatchMoveSimulations"]
)
def test_another_tenants_ids_are_not_found_for_the_whole_batch_and_reveal_nothing(running, rpc):
    source, target = _scenarios(running.writer, "Source", "Target")
    sim = _simulation(running.writer, source.id)
    (own_scenario,) = _scenarios(running.stranger, "Own")
    own_sim = _simulation(running.stranger, own_scenario.id)
    before = _stored(running)
    # The stranger mixes its own ids with acme's: the whole batch is NOT_FOUND.
    theirs = _calls([own_scenario.id, source.id], [own_sim.id, sim.id], own_scenario.id)[rpc]
    missing = _calls([own_scenario.id, "no-such-id"], [own_sim.id, "no-such-id"], own_scenario.id)[
        rpc
    ]

    with pytest.raises(grpc.RpcError) as foreign:
        theirs(running.stranger)
    with pytest.raises(grpc.RpcError) as absent:
        missing(running.stranger)

    assert foreign.value.code() == absent.value.code() == grpc.StatusCode.NOT_FOUND
    # The same answer as for an id that never existed, but for the id itself.
    assert foreign.value.details().replace(source.id, "X").replace(sim.id, "X") == (
        absent.value.details().replace("no-such-id", "X")
    )
    assert _stored(running) == before


def test_moving_into_another_tenants_scenario_is_not_found(running):
    sim = _simulation(running.writer)
    (theirs,) = _scenarios(running.stranger, "Theirs")
    before = _stored(running)

    with pytest.raises(grpc.RpcError) as caught:
        _calls([], [sim.id], theirs.id)["BatchMoveSimulations"](running.writer)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert _stored(running) == before


def test_concurrent_retries_of_one_batch_create_store_it_once(running):
    names = [f"scenario {i}" for i in range(50)]
    barrier = threading.Barrier(2)
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def retry() -> None:
        barrier.wait()
        try:
            results.append([s.id for s in _scenarios(running.writer, *names, request_id="once")])
        except grpc.RpcError as exc:
            failures.append(exc)

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert len(results) == 2 and results[0] == results[1]
    assert len(_stored(running)[0]) == 50
