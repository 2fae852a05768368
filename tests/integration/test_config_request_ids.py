"""UpdateConfig and RollbackConfig take a request id (AIP-155): a retry never writes twice."""

from __future__ import annotations

import grpc
import pytest
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
    simulation_pb2,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.unit.simulation_api import valid_config


@pytest.fixture(params=["sqlite", "postgresql"])
def configs(request, tmp_path, migrated_sqlite_url):
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = migrated_sqlite_url
    database = storage.Database(url)
    database.migrate()
    tenant = tenants.new_tenant(database, f"request-ids-{tmp_path.name}")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0), database=database
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    metadata = (("x-api-key", key),)
    stub = config_service_pb2_grpc.ConfigServiceStub(channel)
    simulation_id = stub.CreateSimulationWithConfig(
        config_service_pb2.CreateSimulationWithConfigRequest(
            simulation=simulation_pb2.Simulation(name="retried"), config=valid_config()
        ),
        metadata=metadata,
    ).simulation.id
    yield stub, metadata, simulation_id
    channel.close()
    server.stop(0)
    database.dispose()


def revision_count(stub, metadata, simulation_id) -> int:
    listed = stub.ListConfigRevisions(
        config_service_pb2.ListConfigRevisionsRequest(simulation_id=simulation_id, page_size=100),
        metadata=metadata,
    )
    return len(listed.revisions)


def test_a_retried_update_returns_the_first_revision_and_writes_no_other(configs):
    stub, metadata, simulation_id = configs
    edited = valid_config()
    edited.title = "edited once"
    first_etag = stub.GetConfig(
        config_service_pb2.GetConfigRequest(simulation_id=simulation_id), metadata=metadata
    ).etag
    request = config_service_pb2.UpdateConfigRequest(
        simulation_id=simulation_id, config=edited, etag=first_etag, request_id="edit-1"
    )
    first = stub.UpdateConfig(request, metadata=metadata)
    # The etag sent is stale now: only the request id makes the retry succeed.
    again = stub.UpdateConfig(request, metadata=metadata)

    assert first.revision == again.revision == 2
    assert first.etag == again.etag
    assert again.config.title == "edited once"
    assert revision_count(stub, metadata, simulation_id) == 2


def test_a_request_id_reused_for_another_update_is_invalid_argument(configs):
    stub, metadata, simulation_id = configs
    edited = valid_config()
    edited.title = "first"
    stub.UpdateConfig(
        config_service_pb2.UpdateConfigRequest(
            simulation_id=simulation_id, config=edited, request_id="edit-2"
        ),
        metadata=metadata,
    )
    edited.title = "second"
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateConfig(
            config_service_pb2.UpdateConfigRequest(
                simulation_id=simulation_id, config=edited, request_id="edit-2"
            ),
            metadata=metadata,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert revision_count(stub, metadata, simulation_id) == 2


def test_a_retried_rollback_returns_the_first_revision_and_writes_no_other(configs):
    stub, metadata, simulation_id = configs
    edited = valid_config()
    edited.title = "to be undone"
    stub.UpdateConfig(
        config_service_pb2.UpdateConfigRequest(simulation_id=simulation_id, config=edited),
        metadata=metadata,
    )
    request = config_service_pb2.RollbackConfigRequest(
        simulation_id=simulation_id, revision=1, request_id="undo-1"
    )
    first = stub.RollbackConfig(request, metadata=metadata)
    again = stub.RollbackConfig(request, metadata=metadata)

    assert first.revision == again.revision == 3
    assert again.config.title == valid_config().title
    assert revision_count(stub, metadata, simulation_id) == 3
