"""Two writers holding the same etag: exactly one wins, the other is ABORTED.

Proved on PostgreSQL, first with threads in one process, released together inside their
transactions: the first holds the simulation's row lock while the other waits for it and then
finds the etag stale. Then with two server processes sharing one database. (The storage
compare-and-swap behind the lock has its own race test in test_race_conditions.py.)
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import config_service_pb2_grpc, simulation_pb2

import storage
from service.app import authentication as auth
from service.app import tenants
from service.app.configs import ConfigOperations
from service.app.simulation_writes import SimulationInput
from service.app.simulations import SimulationOperations
from service.domain import errors
from service.domain.validation import ConfigValidator
from tests.processes import ServerProcess, add_tenant_key, environment, free_port
from tests.unit.simulation_api import valid_config

WRITERS = 2


@pytest.fixture(scope="module")
def database(postgres_url):
    db = storage.Database(postgres_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def principal(database):
    tenant = tenants.new_tenant(database, "concurrency-threads")
    issued = tenants.issue_key(database, tenant.id, "write")
    return auth.Principal(tenant.id, issued.record.id, "write")


class RendezvousValidator(ConfigValidator):
    """Holds each writer inside its transaction until the others arrive (or 1 s passes).

    With the row lock, a later writer cannot arrive while the first holds the row: the
    barrier then times out, the first commits, and the other finds its etag stale.
    """

    def __init__(self, parties: int):
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=1)

    def validate(self, config):
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            pass
        return super().validate(config)


def race(calls) -> list[str]:
    """Runs the calls at once; returns "OK" or the error class name of each."""

    def outcome(call):
        try:
            call()
            return "OK"
        except errors.ServiceError as exc:
            return type(exc).__name__

    with ThreadPoolExecutor(len(calls)) as pool:
        return sorted(pool.map(outcome, calls))


def test_threads_updating_a_config_with_the_same_etag_one_wins(database, principal):
    plain = ConfigOperations(database)
    sim = plain.create_with_config(principal, SimulationInput(name="race"), valid_config())
    for round_number in range(3):
        racing = ConfigOperations(database, RendezvousValidator(WRITERS))
        view = plain.get_config(principal, sim.id)
        calls = [
            lambda n=n: racing.update_config(
                principal, sim.id, valid_config(f"r{round_number}w{n}"), etag=view.etag
            )
            for n in range(WRITERS)
        ]
        assert race(calls) == ["EtagMismatch", "OK"]
        after = plain.get_config(principal, sim.id)
        assert after.revision.revision == view.revision.revision + 1


def test_threads_without_an_etag_both_land_one_after_the_other(database, principal):
    plain = ConfigOperations(database)
    sim = plain.create_with_config(principal, SimulationInput(name="calm"), valid_config())
    racing = ConfigOperations(database, ConfigValidator())
    calls = [
        lambda n=n: racing.update_config(principal, sim.id, valid_config(f"w{n}"))
        for n in range(WRITERS)
    ]
    assert race(calls) == ["OK", "OK"]
    assert plain.get_config(principal, sim.id).revision.revision == 3


def test_threads_starting_a_run_with_the_same_etag_one_wins(database, principal):
    configs = ConfigOperations(database)
    runs = SimulationOperations(database)
    for _ in range(3):
        sim = configs.create_with_config(principal, SimulationInput(name="run"), valid_config())
        barrier = threading.Barrier(WRITERS, timeout=20)

        def start(sim=sim, barrier=barrier):
            barrier.wait()
            runs.start_run(principal, sim.id, etag=sim.etag)

        assert race([start] * WRITERS) == ["EtagMismatch", "OK"]
        assert runs.get(principal, sim.id).status == "RUNNING"
        assert [e.kind for e in runs.list_events(principal, sim.id).items].count(
            "STATUS_CHANGED"
        ) == 1


# -- two server processes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(postgres_url, tmp_path_factory):
    processes = []
    try:
        for n in range(2):
            env = environment(
                tmp_path_factory.mktemp(f"replica{n}"),
                free_port(),
                postgres_url,
                SIMCONFIG_DEMO_TENANT="false",
            )
            processes.append(ServerProcess(env).wait_ready())
        yield processes
    finally:
        for process in processes:
            process.stop()


def test_two_servers_updating_with_the_same_etag_one_wins(servers):
    _, key = add_tenant_key(servers[0].env, "concurrency-replicas")
    metadata = (("x-api-key", key),)
    channels = [grpc.insecure_channel(server.address) for server in servers]
    try:
        stubs = [config_service_pb2_grpc.ConfigServiceStub(channel) for channel in channels]
        created = (
            stubs[0]
            .CreateSimulationWithConfig(
                cpb.CreateSimulationWithConfigRequest(
                    simulation=simulation_pb2.Simulation(name="replicas"), config=valid_config()
                ),
                metadata=metadata,
                timeout=10,
            )
            .simulation
        )
        for round_number in range(5):
            view = stubs[1].GetConfig(
                cpb.GetConfigRequest(simulation_id=created.id), metadata=metadata, timeout=10
            )
            barrier = threading.Barrier(len(stubs), timeout=20)

            def write(n, view=view, barrier=barrier, round_number=round_number):
                request = cpb.UpdateConfigRequest(
                    simulation_id=created.id,
                    config=valid_config(f"round {round_number} server {n}"),
                    etag=view.etag,
                )
                barrier.wait()
                try:
                    stubs[n].UpdateConfig(request, metadata=metadata, timeout=20)
                    return "OK"
                except grpc.RpcError as exc:
                    return exc.code().name

            with ThreadPoolExecutor(len(stubs)) as pool:
                outcomes = sorted(pool.map(write, range(len(stubs))))
            assert outcomes == ["ABORTED", "OK"], f"round {round_number}: {outcomes}"
            after = stubs[0].GetConfig(
                cpb.GetConfigRequest(simulation_id=created.id), metadata=metadata, timeout=10
            )
            assert after.revision == view.revision + 1
    finally:
        for channel in channels:
            channel.close()
