"""A job queued by a server wakes that server's idle workers at once."""

from __future__ import annotations

import threading

import grpc
from simulation.v1 import (
    config_pb2,
    simulation_pb2,
    simulation_service_pb2,
    simulation_service_pb2_grpc,
)

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from storage.repositories import ArchitectJobRepository


def test_local_jobs_do_not_wait_for_the_next_poll(tmp_path, migrated_sqlite_url, monkeypatch):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "wakeup")
    key = tenants.issue_key(database, tenant.id).secret
    # The worker's first claim finds nothing; then it idles for its 60 s poll interval.
    idle = threading.Event()
    real_claim = ArchitectJobRepository.claim_next

    def claim_and_report_an_empty_queue(self, *args, **kwargs):
        claimed = real_claim(self, *args, **kwargs)
        if claimed is None:
            idle.set()
        return claimed

    monkeypatch.setattr(ArchitectJobRepository, "claim_next", claim_and_report_an_empty_queue)
    # A poll interval far longer than the call's deadline: only the wake-up can finish in time.
    settings = Settings(port=0, data_dir=tmp_path, architect_workers=1, architect_poll_seconds=60)
    server, port = create_server(settings, database=database)
    server.start()
    try:
        assert idle.wait(10), "the worker never polled"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
            response = stub.CreateSimulation(
                simulation_service_pb2.CreateSimulationRequest(
                    simulation=simulation_pb2.Simulation(name="quick", prompt="a quick market"),
                    parameters=config_pb2.ArchitectParameters(max_turns=5, num_agents=2),
                    wait=True,
                ),
                metadata=(("x-api-key", key),),
                timeout=20,
            )
        # A waiting call answers before its 20 s deadline: done only if the worker was woken.
        assert response.simulation.status == simulation_pb2.Simulation.COMPLETED_CONFIG
    finally:
        server.stop(0)
