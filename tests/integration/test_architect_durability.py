"""Architect jobs survive a crashed server and are never run twice, on PostgreSQL.

Real ``simconfig serve`` processes share one PostgreSQL database; the architect is the example
backend running as its own process, made slow so there is time to kill a server mid-job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)

import storage
from tests.integration.test_remote_architect import Backend
from tests.processes import ServerProcess, create_tenant_key, environment, free_port

PROMPT = "Two hospitals and an insurer negotiate prices during a flu season"


class Client:
    """Typed stubs for one server, calling with one API key."""

    def __init__(self, address: str, key: str):
        self.channel = grpc.insecure_channel(address)
        self.simulations = simulation_service_pb2_grpc.SimulationServiceStub(self.channel)
        self.configs = config_service_pb2_grpc.ConfigServiceStub(self.channel)
        self.metadata = (("x-api-key", key),)

    def create(self, name: str, seed: int = 1) -> simulation_pb2.Simulation:
        request = simulation_service_pb2.CreateSimulationRequest(
            simulation=simulation_pb2.Simulation(name=name, prompt=PROMPT),
            parameters=config_pb2.ArchitectParameters(max_turns=10, num_agents=3, seed=seed),
        )
        return self.simulations.CreateSimulation(
            request, metadata=self.metadata, timeout=10
        ).simulation

    def get(self, simulation_id: str) -> simulation_pb2.Simulation:
        request = simulation_service_pb2.GetSimulationRequest(simulation_id=simulation_id)
        return self.simulations.GetSimulation(
            request, metadata=self.metadata, timeout=10
        ).simulation

    def revisions(self, simulation_id: str) -> list[int]:
        request = config_service_pb2.ListConfigRevisionsRequest(simulation_id=simulation_id)
        response = self.configs.ListConfigRevisions(request, metadata=self.metadata, timeout=10)
        return [r.revision for r in response.revisions]

    def wait_for(
        self, simulation_id: str, status: str, timeout: float, server: ServerProcess
    ) -> simulation_pb2.Simulation:
        wanted = simulation_pb2.Simulation.Status.Value(status)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            simulation = self.get(simulation_id)
            if simulation.status == wanted:
                return simulation
            time.sleep(0.1)
        raise AssertionError(
            f"simulation {simulation_id} is {simulation_pb2.Simulation.Status.Name(simulation.status)}"
            f", not {status}, after {timeout}s; server output:\n{server.output}"
        )


@pytest.fixture
def start_backend() -> Iterator[Callable[..., Backend]]:
    started: list[Backend] = []

    def start(*args: str) -> Backend:
        backend = Backend(*args)
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()


@pytest.fixture
def start_server(tmp_path, postgres_url) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``simconfig serve`` processes on the shared PostgreSQL database."""
    started: list[ServerProcess] = []

    def start(backend: Backend, **settings) -> ServerProcess:
        env = environment(
            tmp_path / f"server-{len(started)}",
            free_port(),
            postgres_url,
            SIMCONFIG_ARCHITECT_ENGINE="remote",
            SIMCONFIG_ARCHITECT_ADDRESS=backend.address,
            SIMCONFIG_ARCHITECT_LEASE_SECONDS="2",
            SIMCONFIG_GRACE_PERIOD="1",
            **settings,
        )
        server = ServerProcess(env)
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def database(postgres_url) -> Iterator[storage.Database]:
    db = storage.Database(postgres_url)
    yield db
    db.dispose()


def jobs_of(database: storage.Database, tenant_id: str, simulation_id: str):
    """The simulation's jobs, found through the ids its ARCHITECT_QUEUED events record."""
    events = database.run(
        lambda uow: uow.events.list(tenant_id, simulation_id, after_id=None, limit=100)
    )
    ids = [e.details["job_id"] for e in events if e.kind == "ARCHITECT_QUEUED"]
    return [database.run(lambda uow, job_id=job_id: uow.jobs.get(job_id)) for job_id in ids]


def status_changes(database: storage.Database, tenant_id: str, simulation_id: str):
    events = database.run(
        lambda uow: uow.events.list(tenant_id, simulation_id, after_id=None, limit=100)
    )
    return [(e.from_status, e.to_status) for e in events if e.kind == "STATUS_CHANGED"]


def test_a_job_survives_a_killed_server_and_finishes_once_on_another(
    start_backend, start_server, database
):
    backend = start_backend("--delay", "4")
    first = start_server(backend)
    tenant_id, key = create_tenant_key(first.env, f"crash-{os.getpid()}-{time.time_ns()}")
    client = Client(first.address, key)

    simulation = client.create("Crash test")
    assert simulation.status == simulation_pb2.Simulation.PENDING
    client.wait_for(simulation.id, "GENERATING_CONFIG", 15, first)
    first.kill()  # SIGKILL mid-call: no shutdown hook runs, the lease is simply left behind

    second = start_server(backend)
    client = Client(second.address, key)
    done = client.wait_for(simulation.id, "COMPLETED_CONFIG", 40, second)

    assert done.config_revision == 1
    assert client.revisions(simulation.id) == [1]
    [job] = jobs_of(database, tenant_id, simulation.id)
    assert job.state == "SUCCEEDED" and job.attempts == 2
    assert status_changes(database, tenant_id, simulation.id) == [
        ("PENDING", "GENERATING_CONFIG"),
        ("GENERATING_CONFIG", "COMPLETED_CONFIG"),
    ]


def test_two_servers_sharing_the_queue_never_run_a_job_twice(start_backend, start_server, database):
    backend = start_backend("--delay", "0.3")
    # One process each, so the lease owners (worker process ids) name the two servers.
    servers = [
        start_server(backend, SIMCONFIG_ARCHITECT_WORKERS="3", SIMCONFIG_PROCESSES="1"),
        start_server(backend, SIMCONFIG_ARCHITECT_WORKERS="3", SIMCONFIG_PROCESSES="1"),
    ]
    tenant_id, key = create_tenant_key(servers[0].env, f"shared-{os.getpid()}-{time.time_ns()}")
    clients = [Client(server.address, key) for server in servers]

    created = [clients[i % 2].create(f"Shared {i}", seed=i) for i in range(12)]
    for simulation in created:
        clients[0].wait_for(simulation.id, "COMPLETED_CONFIG", 60, servers[0])

    owners = set()
    for simulation in created:
        assert clients[1].revisions(simulation.id) == [1]
        [job] = jobs_of(database, tenant_id, simulation.id)
        assert (job.state, job.attempts) == ("SUCCEEDED", 1)
        owners.add(job.lease_owner.split(":")[1])  # the worker's process id
        assert status_changes(database, tenant_id, simulation.id) == [
            ("PENDING", "GENERATING_CONFIG"),
            ("GENERATING_CONFIG", "COMPLETED_CONFIG"),
        ]
    assert owners == {str(server.process.pid) for server in servers}


def test_invalid_remote_output_fails_the_simulation_and_stores_no_revision(
    start_backend, start_server, database
):
    backend = start_backend("--invalid")
    server = start_server(backend)
    tenant_id, key = create_tenant_key(server.env, "invalid-output")
    client = Client(server.address, key)

    simulation = client.wait_for(client.create("bad output").id, "FAILED", 30, server)

    assert simulation.last_error.reason == "ARCHITECT_OUTPUT_INVALID"
    fields = {v.field for v in simulation.last_error.violations}
    assert any(f.startswith("agents[") and f.endswith("].id") for f in fields), fields
    assert any(f.startswith("events[") and f.endswith("].turn") for f in fields), fields
    assert client.revisions(simulation.id) == []
    assert simulation.config_revision == 0
    events = database.run(
        lambda uow: uow.events.list(tenant_id, simulation.id, after_id=None, limit=100)
    )
    failed = [e for e in events if e.kind == "STATUS_CHANGED" and e.to_status == "FAILED"]
    assert len(failed) == 1 and failed[0].details["violations"], failed


def test_a_backend_slower_than_the_deadline_fails_the_job_after_bounded_attempts(
    start_backend, start_server, database
):
    backend = start_backend("--delay", "5")
    server = start_server(
        backend, SIMCONFIG_ARCHITECT_TIMEOUT="0.5", SIMCONFIG_ARCHITECT_MAX_ATTEMPTS="2"
    )
    tenant_id, key = create_tenant_key(server.env, "slow-backend")
    client = Client(server.address, key)

    simulation = client.wait_for(client.create("too slow").id, "FAILED", 60, server)

    assert "DEADLINE_EXCEEDED" in simulation.last_error.reason, simulation.last_error
    # Clients never see the backend's address or transport error text.
    assert backend.address.split(":")[0] not in simulation.last_error.message
    assert "did not answer in time" in simulation.last_error.message
    assert client.revisions(simulation.id) == []
    (job,) = jobs_of(database, tenant_id, simulation.id)
    assert job.state == "FAILED" and job.attempts == 2
