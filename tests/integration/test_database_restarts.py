"""A PostgreSQL restart shorter than the connection retry budget is invisible to clients.

Runs on a scratch cluster of the test's own (never the shared server): clients keep writing
and reading while the cluster is stopped (fast mode, which ends every session) and started
again, and not one call fails.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)
from simulation.v1 import scenario_service_pb2 as pb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from storage.deadlines import time_left
from storage.unit_of_work import SqlUnitOfWork
from tests.scratch_postgres import scratch_postgres  # noqa: F401 - a fixture
from tests.unit.simulation_api import valid_config

CLIENTS = 3


class Client(threading.Thread):
    """Creates a scenario (with a request id) and reads it back, again and again."""

    def __init__(self, stub, metadata, stop: threading.Event):
        super().__init__(daemon=True)
        self.stub, self.metadata, self.stop = stub, metadata, stop
        self.created: list[str] = []
        self.errors: list[str] = []
        self.calls = 0
        self.progress = threading.Condition()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                created = self.stub.CreateScenario(
                    pb.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name=uuid.uuid4().hex),
                        request_id=uuid.uuid4().hex,
                    ),
                    metadata=self.metadata,
                    timeout=20,
                ).scenario
                self.created.append(created.id)
                self.stub.GetScenario(
                    pb.GetScenarioRequest(scenario_id=created.id),
                    metadata=self.metadata,
                    timeout=20,
                )
            except grpc.RpcError as error:
                self.errors.append(f"{error.code().name}: {error.details()}")
            with self.progress:
                self.calls += 1
                self.progress.notify_all()

    def wait_for_calls(self, count: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.calls >= count, timeout=60)


def test_clients_see_no_error_through_a_fast_restart(tmp_path, scratch_postgres):  # noqa: F811
    cluster = scratch_postgres
    database = storage.Database(cluster.url, pool_size=4)
    database.migrate()
    tenant = tenants.new_tenant(database, "restarts")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, health_check_interval=60),
        database=database,
    )
    server.start()
    stop = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    clients = [Client(stub, (("x-api-key", key),), stop) for _ in range(CLIENTS)]
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.wait_for_calls(5)

        started = time.monotonic()
        cluster.stop("fast")
        cluster.start()
        downtime = time.monotonic() - started
        after = [client.calls for client in clients]

        for client, calls in zip(clients, after, strict=True):
            client.wait_for_calls(calls + 5)
        stop.set()
        for client in clients:
            client.join(timeout=60)
        listed = stub.ListScenarios(
            pb.ListScenariosRequest(page_size=1000), metadata=(("x-api-key", key),), timeout=20
        )
    finally:
        stop.set()
        channel.close()
        server.stop(0)
        database.dispose()

    assert downtime < 2, f"the restart took {downtime:.2f} s, longer than this test is about"
    assert [error for client in clients for error in client.errors] == []
    acknowledged = sorted(id_ for client in clients for id_ in client.created)
    assert sorted(s.id for s in listed.scenarios) == acknowledged


def killing_the_backend_before_commit(monkeypatch, how):
    """Makes the first COMMIT meet a backend that ``how(pid)`` ended; later ones run normally."""
    real_commit = SqlUnitOfWork.commit
    killed = []

    def commit(self):
        # Only a call's commit (background tasks run without a deadline).
        if not killed and time_left() is not None:
            pid = self._active().connection.dbapi_connection.info.backend_pid
            how(pid)
            killed.append(pid)
        return real_commit(self)

    monkeypatch.setattr(SqlUnitOfWork, "commit", commit)
    return killed


def serving(tmp_path, url):
    database = storage.Database(url, pool_size=2)
    database.migrate()
    tenant = tenants.new_tenant(database, "commits")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, health_check_interval=60),
        database=database,
    )
    server.start()
    return database, server, port, (("x-api-key", key),)


def test_a_commit_whose_backend_dies_without_a_request_id_is_reported_as_outcome_unknown(
    tmp_path,
    scratch_postgres,  # noqa: F811
    monkeypatch,
):
    database, server, port, metadata = serving(tmp_path, scratch_postgres.url)
    # SIGKILL: the connection drops with no word from the server, as in a crash or a network
    # cut, so nothing tells whether the COMMIT landed.
    killed = killing_the_backend_before_commit(monkeypatch, lambda pid: os.kill(pid, 9))
    request = pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="maybe"))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.CreateScenario(request, metadata=metadata, timeout=30)
    finally:
        server.stop(0)
        database.dispose()

    assert killed
    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "same request_id" in error.details()
    info = error_details_pb2.ErrorInfo()
    assert rpc_status.from_call(error).details[0].Unpack(info)
    assert info.reason == "COMMIT_OUTCOME_UNKNOWN"


def test_a_commit_whose_backend_dies_with_a_request_id_is_resolved_by_the_server(
    tmp_path,
    scratch_postgres,  # noqa: F811
    monkeypatch,
):
    database, server, port, metadata = serving(tmp_path, scratch_postgres.url)
    killed = killing_the_backend_before_commit(monkeypatch, lambda pid: os.kill(pid, 9))
    request = pb.CreateScenarioRequest(
        scenario=scenario_pb2.Scenario(display_name="maybe"), request_id="commit-unknown-1"
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            # The request id tells the server whether the lost COMMIT landed: it runs the
            # call again, which replays the stored scenario or creates it, and answers once.
            created = stub.CreateScenario(request, metadata=metadata, timeout=30).scenario
            again = stub.CreateScenario(request, metadata=metadata, timeout=30).scenario
            listed = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=10), metadata=metadata, timeout=30
            )
    finally:
        server.stop(0)
        database.dispose()

    assert killed
    assert created.id == again.id
    assert [s.id for s in listed.scenarios] == [created.id]


def test_a_run_start_whose_backend_dies_with_a_request_id_is_resolved_by_the_server(
    tmp_path,
    scratch_postgres,  # noqa: F811
    monkeypatch,
):
    # The single-resource writes take a request id too: the server runs the call again, and
    # its lookup-first answers without a second transition (FAILED_PRECONDITION).
    database, server, port, metadata = serving(tmp_path, scratch_postgres.url)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            simulations = simulation_service_pb2_grpc.SimulationServiceStub(channel)
            simulation_id = (
                config_service_pb2_grpc.ConfigServiceStub(channel)
                .CreateSimulationWithConfig(
                    config_service_pb2.CreateSimulationWithConfigRequest(
                        simulation=simulation_pb2.Simulation(name="run"), config=valid_config()
                    ),
                    metadata=metadata,
                    timeout=30,
                )
                .simulation.id
            )
            killed = killing_the_backend_before_commit(monkeypatch, lambda pid: os.kill(pid, 9))
            request = simulation_service_pb2.StartRunRequest(
                simulation_id=simulation_id, request_id="start-unknown-1"
            )
            started = simulations.StartRun(request, metadata=metadata, timeout=30).simulation
            again = simulations.StartRun(request, metadata=metadata, timeout=30).simulation
            events = simulations.ListSimulationEvents(
                simulation_service_pb2.ListSimulationEventsRequest(simulation_id=simulation_id),
                metadata=metadata,
                timeout=30,
            ).events
    finally:
        server.stop(0)
        database.dispose()

    assert killed
    assert started.status == again.status == simulation_pb2.Simulation.RUNNING
    assert again.etag == started.etag
    to_running = [e for e in events if e.to_status == simulation_pb2.Simulation.RUNNING]
    assert len(to_running) == 1


def test_a_session_ended_by_the_server_before_commit_is_run_again(
    tmp_path,
    scratch_postgres,  # noqa: F811
    monkeypatch,
):
    database, server, port, metadata = serving(tmp_path, scratch_postgres.url)
    # SIGTERM, as a fast shutdown sends: the server says 57P01 before closing, which proves
    # the transaction was rolled back.
    killed = killing_the_backend_before_commit(monkeypatch, lambda pid: os.kill(pid, 15))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            created = stub.CreateScenario(
                pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="sure")),
                metadata=metadata,
                timeout=30,
            ).scenario
            listed = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=10), metadata=metadata, timeout=30
            )
    finally:
        server.stop(0)
        database.dispose()

    assert killed
    assert [s.id for s in listed.scenarios] == [created.id]
