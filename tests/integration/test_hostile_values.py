"""Values PostgreSQL cannot store (NUL) or JSON cannot hold (NaN) are client errors, never INTERNAL.

Run on both engines through a real server, since the failure only shows on PostgreSQL.
"""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf import struct_pb2
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
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
from tests.unit.simulation_api import valid_config


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = request.getfixturevalue("migrated_sqlite_url")
    database = storage.Database(url)
    database.migrate()
    tenant = tenants.new_tenant(database, f"hostile-{tmp_path.name}")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    metadata = (("x-api-key", key),)
    yield (
        scenario_service_pb2_grpc.ScenarioServiceStub(channel),
        simulation_service_pb2_grpc.SimulationServiceStub(channel),
        config_service_pb2_grpc.ConfigServiceStub(channel),
        metadata,
    )
    channel.close()
    server.stop(0)


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def running_simulation(simulations, configs, metadata) -> str:
    created = configs.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="hostile"), config=valid_config()
        ),
        metadata=metadata,
    ).simulation
    simulations.StartRun(
        simulation_service_pb2.StartRunRequest(simulation_id=created.id), metadata=metadata
    )
    return created.id


def test_nul_in_ids_and_filters_is_invalid_argument(api):
    scenarios, simulations, _, metadata = api
    assert (
        code_of(
            lambda: scenarios.GetScenario(
                scenario_service_pb2.GetScenarioRequest(scenario_id="a\x00b"), metadata=metadata
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        code_of(
            lambda: simulations.StartRun(
                simulation_service_pb2.StartRunRequest(simulation_id="a\x00b"), metadata=metadata
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    for filter_text in ('scenario_id = "a\x00"', 'name : "x\x00"'):
        assert (
            code_of(
                lambda f=filter_text: simulations.ListSimulations(
                    simulation_service_pb2.ListSimulationsRequest(filter=f), metadata=metadata
                )
            )
            == grpc.StatusCode.INVALID_ARGUMENT
        )
    assert (
        code_of(
            lambda: scenarios.ListScenarios(
                scenario_service_pb2.ListScenariosRequest(filter='display_name = "a\x00b"'),
                metadata=metadata,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"note": "a\x00b"},
        {"a\x00b": 1},
        {"nested": {"list": ["ok", "b\x00"]}},
    ],
)
def test_nul_in_results_is_invalid_argument(api, bad):
    _, simulations, configs, metadata = api
    simulation_id = running_simulation(simulations, configs, metadata)
    results = struct_pb2.Struct()
    results.update(bad)
    assert (
        code_of(
            lambda: simulations.CompleteRun(
                simulation_service_pb2.CompleteRunRequest(
                    simulation_id=simulation_id, results=results
                ),
                metadata=metadata,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_in_results_and_analysis_are_invalid_argument(api, number):
    _, simulations, configs, metadata = api
    simulation_id = running_simulation(simulations, configs, metadata)
    bad = struct_pb2.Struct()
    bad.fields["x"].number_value = number
    assert (
        code_of(
            lambda: simulations.CompleteRun(
                simulation_service_pb2.CompleteRunRequest(simulation_id=simulation_id, results=bad),
                metadata=metadata,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
    simulations.CompleteRun(
        simulation_service_pb2.CompleteRunRequest(simulation_id=simulation_id), metadata=metadata
    )
    assert (
        code_of(
            lambda: simulations.AttachAnalysis(
                simulation_service_pb2.AttachAnalysisRequest(
                    simulation_id=simulation_id, analysis=bad
                ),
                metadata=metadata,
            )
        )
        == grpc.StatusCode.INVALID_ARGUMENT
    )
