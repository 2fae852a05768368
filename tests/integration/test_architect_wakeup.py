"""A job queued by a server wakes that server's idle workers at once."""

from __future__ import annotations

import time

import grpc
from simulation.v1 import (
    config_pb2,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)

import storage
from service import auth
from service.server import create_server
from service.settings import Settings


def test_local_jobs_do_not_wait_for_the_next_poll(tmp_path):
    database = storage.Database(storage.sqlite_url_for(tmp_path))
    database.migrate()
    tenant = auth.new_tenant(database, "wakeup")
    key = auth.issue_key(database, tenant.id).secret
    # A poll interval far longer than the call's deadline: only the wake-up can finish in time.
    settings = Settings(port=0, data_dir=tmp_path, architect_workers=1, architect_poll_seconds=60)
    server, port = create_server(settings, database=database)
    server.start()
    try:
        time.sleep(0.5)  # let the idle worker start its long poll
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
            started = time.monotonic()
            response = stub.CreateSimulation(
                simulation_service_pb2.CreateSimulationRequest(
                    simulation=simulation_pb2.Simulation(name="quick", prompt="a quick market"),
                    parameters=config_pb2.ArchitectParameters(max_turns=5, num_agents=2),
                    wait=True,
                ),
                metadata=(("x-api-key", key),),
                timeout=20,
            )
            elapsed = time.monotonic() - started
        assert response.simulation.status == simulation_pb2.Simulation.COMPLETED_CONFIG
        assert elapsed < 15, elapsed
    finally:
        server.stop(0)
