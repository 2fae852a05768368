"""Errors with thousands of violations still reach a client with default gRPC settings.

A default grpcio channel refuses responses whose metadata passes 8 KiB; the status details
travel in one trailer, so an uncapped ``BadRequest`` would turn a client's mistake into
``RESOURCE_EXHAUSTED``. These calls use plain ``grpc.insecure_channel`` with no options.
"""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2,
    scenario_service_pb2_grpc,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings

# At most this many violations, then one entry counting the rest.
MAX_FIELD_VIOLATIONS = 100

# What a default grpcio client accepts in metadata before refusing the response.
DEFAULT_CLIENT_METADATA_LIMIT = 8 * 1024


@pytest.fixture
def channel_and_key(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "deliverable")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel, (("x-api-key", key),)
    channel.close()
    server.stop(0)
    database.dispose()


def refusal(call) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def trailer_bytes(error: grpc.RpcError) -> int:
    return sum(len(key) + len(value) for key, value in error.trailing_metadata() or ()) + len(
        error.details() or ""
    )


def bad_request_of(error: grpc.RpcError) -> error_details_pb2.BadRequest:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            return bad_request
    raise AssertionError("no BadRequest in the status details")


def assert_capped(error: grpc.RpcError) -> error_details_pb2.BadRequest:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert trailer_bytes(error) < DEFAULT_CLIENT_METADATA_LIMIT // 2
    bad_request = bad_request_of(error)
    assert len(bad_request.field_violations) <= MAX_FIELD_VIOLATIONS + 1
    last = bad_request.field_violations[-1]
    assert last.field == ""
    assert "more violations not shown" in last.description
    return bad_request


def test_validate_config_with_2000_empty_agents_answers_invalid_argument(channel_and_key):
    channel, metadata = channel_and_key
    configs = config_service_pb2_grpc.ConfigServiceStub(channel)
    config = config_pb2.SimulationConfig(
        title="t", max_turns=10, model="sim-small-1", agents=[config_pb2.Agent()] * 2000
    )
    error = refusal(
        lambda: configs.ValidateConfig(
            config_service_pb2.ValidateConfigRequest(config=config), metadata=metadata
        )
    )
    bad_request = assert_capped(error)
    fields = [v.field for v in bad_request.field_violations]
    assert fields[0] == "config.agents"
    assert "at most 500 agents; got 2000" in bad_request.field_violations[0].description
    # Only the first 500 agents are walked: 2 violations each, plus the count.
    shown = len(bad_request.field_violations) - 1
    assert f"{1 + 500 * 2 - shown} more violations" in bad_request.field_violations[-1].description


def test_create_scenario_with_5000_bad_label_keys_answers_invalid_argument(channel_and_key):
    channel, metadata = channel_and_key
    scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    labels = {f"BAD KEY {i:05d}": "v" for i in range(5000)}
    error = refusal(
        lambda: scenarios.CreateScenario(
            scenario_service_pb2.CreateScenarioRequest(
                scenario=scenario_pb2.Scenario(display_name="labels", labels=labels)
            ),
            metadata=metadata,
        )
    )
    bad_request = assert_capped(error)
    assert "at most 32 entries; got 5000" in bad_request.field_violations[0].description
