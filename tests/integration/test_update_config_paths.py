"""UpdateConfig's two paths answer alike: a whole config with its etag is checked and written
by one statement on PostgreSQL, anything else (and every call on SQLite) reads first.

Each case runs through a real server on both engines: the written revision, its sources and
events, and every refusal the one statement turns back to the reading path (a stale etag, a
status that forbids edits, another tenant's simulation, an invalid config).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf import json_format
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings


@dataclass
class Api:
    configs: config_service_pb2_grpc.ConfigServiceStub
    simulations: simulation_service_pb2_grpc.SimulationServiceStub
    alice: tuple
    bob: tuple


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path) -> Iterator[Api]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "migrated_postgres_url"
    database = storage.Database(request.getfixturevalue(name))
    keys = [
        tenants.issue_key(database, tenants.new_tenant(database, owner).id).secret
        for owner in ("alice", "bob")
    ]
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield Api(
        config_service_pb2_grpc.ConfigServiceStub(channel),
        simulation_service_pb2_grpc.SimulationServiceStub(channel),
        (("x-api-key", keys[0]),),
        (("x-api-key", keys[1]),),
    )
    channel.close()
    server.stop(0)
    database.dispose()


def _config(title: str) -> config_pb2.SimulationConfig:
    return config_pb2.SimulationConfig(
        title=title,
        max_turns=5,
        model="sim-small-1",
        agents=[config_pb2.Agent(id="a", name="A"), config_pb2.Agent(id="b", name="B")],
    )


def _created(api: Api) -> tuple[str, str]:
    reply = api.configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="Sim"),
            config=_config("First"),
            sources=[config_pb2.Source(uri="catalogue://trader", title="Trader")],
        ),
        metadata=api.alice,
        timeout=10,
    )
    return reply.simulation.id, _stored(api, reply.simulation.id).etag


def _stored(api: Api, simulation_id: str) -> config_service_pb2.GetConfigResponse:
    return api.configs.GetConfig(
        config_service_pb2.GetConfigRequest(simulation_id=simulation_id),
        metadata=api.alice,
        timeout=10,
    )


def _update(api: Api, simulation_id: str, etag: str, title: str, metadata=None, **fields):
    return api.configs.UpdateConfig(
        config_service_pb2.UpdateConfigRequest(
            simulation_id=simulation_id, config=_config(title), etag=etag, **fields
        ),
        metadata=metadata or api.alice,
        timeout=10,
    )


def _kinds(api: Api, simulation_id: str) -> list[tuple[str, str]]:
    events = api.simulations.ListSimulationEvents(
        simulation_service_pb2.ListSimulationEventsRequest(simulation_id=simulation_id),
        metadata=api.alice,
        timeout=10,
    ).events
    shown = [json_format.MessageToDict(event) for event in events]
    return [(event["kind"], event.get("fromStatus", "")) for event in shown]


def test_a_whole_config_with_its_etag_is_the_next_revision_and_keeps_the_sources(api):
    simulation_id, etag = _created(api)
    reply = _update(api, simulation_id, etag, "Second", description="retitle")
    assert (reply.revision, reply.config.title) == (2, "Second")
    assert [source.uri for source in reply.sources] == ["catalogue://trader"]
    stored = _stored(api, simulation_id)
    assert (stored.revision, stored.etag, stored.config.title) == (2, reply.etag, "Second")
    assert [source.uri for source in stored.sources] == ["catalogue://trader"]
    # New sources replace the kept ones.
    third = _update(
        api, simulation_id, reply.etag, "Third", sources=[config_pb2.Source(uri="new://one")]
    )
    assert [source.uri for source in third.sources] == ["new://one"]
    assert _kinds(api, simulation_id)[-2:] == [("CONFIG_CHANGED", ""), ("CONFIG_CHANGED", "")]


def test_an_edit_after_a_failed_run_records_the_status_change(api):
    simulation_id, _ = _created(api)
    started = api.simulations.StartRun(
        simulation_service_pb2.StartRunRequest(simulation_id=simulation_id),
        metadata=api.alice,
        timeout=10,
    )
    assert simulation_pb2.Simulation.Status.Name(started.simulation.status) == "RUNNING"
    api.simulations.FailRun(
        simulation_service_pb2.FailRunRequest(simulation_id=simulation_id, error="boom"),
        metadata=api.alice,
        timeout=10,
    )
    _update(api, simulation_id, _stored(api, simulation_id).etag, "Fixed")
    simulation = api.simulations.GetSimulation(
        simulation_service_pb2.GetSimulationRequest(simulation_id=simulation_id),
        metadata=api.alice,
        timeout=10,
    ).simulation
    assert simulation_pb2.Simulation.Status.Name(simulation.status) == "COMPLETED_CONFIG"
    assert not simulation.HasField("last_error")
    assert _kinds(api, simulation_id)[-2:] == [
        ("CONFIG_CHANGED", ""),
        ("STATUS_CHANGED", "FAILED"),
    ]


def test_a_stale_etag_is_aborted_and_writes_nothing(api):
    simulation_id, etag = _created(api)
    _update(api, simulation_id, etag, "Second")
    with pytest.raises(grpc.RpcError) as refused:
        _update(api, simulation_id, etag, "Lost")
    assert refused.value.code() == grpc.StatusCode.ABORTED
    assert [kind for kind, _ in _kinds(api, simulation_id)].count("CONFIG_CHANGED") == 2


def test_an_edit_while_running_is_a_failed_precondition(api):
    simulation_id, etag = _created(api)
    api.simulations.StartRun(
        simulation_service_pb2.StartRunRequest(simulation_id=simulation_id),
        metadata=api.alice,
        timeout=10,
    )
    with pytest.raises(grpc.RpcError) as refused:
        _update(api, simulation_id, etag, "Nope")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_another_tenants_simulation_is_not_found_even_with_its_etag(api):
    simulation_id, etag = _created(api)
    with pytest.raises(grpc.RpcError) as refused:
        _update(api, simulation_id, etag, "Stolen", metadata=api.bob)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert _kinds(api, simulation_id)[-1] == ("CONFIG_CHANGED", "")
    assert len(_kinds(api, simulation_id)) == 2


def test_an_invalid_config_is_invalid_argument_and_a_malformed_etag_aborted(api):
    simulation_id, etag = _created(api)
    with pytest.raises(grpc.RpcError) as invalid:
        _update(api, simulation_id, etag, "")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for bad in ("c1", "c-1", "c1-0000", "x" + etag[1:], "c²-" + etag.split("-", 1)[1]):
        with pytest.raises(grpc.RpcError) as mismatched:
            _update(api, simulation_id, bad, "Second")
        assert mismatched.value.code() == grpc.StatusCode.ABORTED, bad
