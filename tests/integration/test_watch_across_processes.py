"""A watcher that reconnects to another server process mid-stream misses nothing, sees nothing twice.

Two ``simconfig serve`` processes share one PostgreSQL database. Writers change simulations
through both at once while a watcher reads from the first; halfway it drops the stream and
resumes on the second with the resume token of the last message it got. Together its two
streams hold every event of the tenant exactly once, in id order.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import (
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2_grpc,
)
from simulation.v1 import simulation_service_pb2 as spb

import storage
from tests.processes import ServerProcess, create_tenant_key, environment, free_port, simconfig
from tests.unit.simulation_api import valid_config

WRITERS = 4
SIMULATIONS_PER_WRITER = 6
DEADLINE_S = 60.0


@pytest.fixture
def servers(empty_postgres_url, tmp_path):
    env = environment(tmp_path, database_url=empty_postgres_url, SIMCONFIG_PROCESSES=1)
    simconfig(env, "migrate")
    running = []
    try:
        for _ in range(2):
            process_env = env | {
                "SIMCONFIG_PORT": str(free_port()),
                "SIMCONFIG_WORKER_THREADS": "8",
            }
            running.append(ServerProcess(process_env).wait_ready())
        yield env, running
    finally:
        for server in running:
            server.stop()


def write(address: str, key: str, writer: int) -> None:
    """Creates simulations and starts their runs through ``address``."""
    metadata = [("x-api-key", key)]
    with grpc.insecure_channel(address) as channel:
        configs = config_service_pb2_grpc.ConfigServiceStub(channel)
        simulations = simulation_service_pb2_grpc.SimulationServiceStub(channel)
        for n in range(SIMULATIONS_PER_WRITER):
            created = configs.CreateSimulationWithConfig(
                cpb.CreateSimulationWithConfigRequest(
                    simulation=simulation_pb2.Simulation(name=f"w{writer}-{n}"),
                    config=valid_config(),
                ),
                metadata=metadata,
                timeout=30,
            )
            simulations.StartRun(
                spb.StartRunRequest(simulation_id=created.simulation.id),
                metadata=metadata,
                timeout=30,
            )


def test_a_watcher_resumed_on_another_process_gets_every_event_exactly_once(servers):
    env, (first, second) = servers
    tenant_id, key = create_tenant_key(env, "watch-two-processes")
    metadata = [("x-api-key", key)]
    writers = [
        threading.Thread(target=write, args=((first, second)[n % 2].address, key, n))
        for n in range(WRITERS)
    ]
    received: list[spb.WatchEventsResponse] = []
    with grpc.insecure_channel(first.address) as channel:
        stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
        stream = stub.WatchEvents(
            spb.WatchEventsRequest(after_event_id=0), metadata=metadata, timeout=DEADLINE_S
        )
        for writer in writers:
            writer.start()
        # Drop the stream mid-way, while the writers are still busy.
        for message in stream:
            if message.HasField("event"):
                received.append(message)
            if len(received) >= WRITERS * SIMULATIONS_PER_WRITER:
                break
        stream.cancel()
    token = received[-1].resume_token
    for writer in writers:
        writer.join(DEADLINE_S)
    database = storage.Database(env["SIMCONFIG_DATABASE_URL"])
    try:
        everything = database.read(
            lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=100_000)
        )
    finally:
        database.dispose()
    assert len(everything) > len(received)
    with grpc.insecure_channel(second.address) as channel:
        stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
        stream = stub.WatchEvents(
            spb.WatchEventsRequest(resume_token=token), metadata=metadata, timeout=DEADLINE_S
        )
        deadline = time.monotonic() + DEADLINE_S
        for message in stream:
            if message.HasField("event"):
                received.append(message)
            if received[-1].event.id >= everything[-1].id or time.monotonic() > deadline:
                break
        stream.cancel()
    ids = [message.event.id for message in received]
    assert ids == [event.id for event in everything]
