"""The server rides out lost PostgreSQL connections: the retry policy reconnects."""

from __future__ import annotations

import grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from storage.repositories import ScenarioRepository


def terminate_connections(database_url: str) -> int:
    """Kills every server-side connection to the database, as a failover or restart would."""
    name = make_url(database_url).database
    admin = create_engine(
        make_url(database_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
    )
    with admin.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": name},
        ).scalar()
    admin.dispose()
    return killed


def test_calls_succeed_after_every_database_connection_is_killed(tmp_path, postgres_url):
    database = storage.Database(postgres_url, pool_size=4)
    database.migrate()
    tenant = tenants.new_tenant(database, f"resilience-{tmp_path.name}")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, health_check_interval=60),
        database=database,
    )
    server.start()
    metadata = (("x-api-key", key),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            # Warm the pool so it holds connections that are about to die.
            for i in range(8):
                stub.CreateScenario(
                    pb.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name=f"before {i}")
                    ),
                    metadata=metadata,
                    timeout=10,
                )
            assert terminate_connections(postgres_url) >= 1

            for i in range(8):
                created = stub.CreateScenario(
                    pb.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name=f"after {i}")
                    ),
                    metadata=metadata,
                    timeout=20,
                )
                assert created.scenario.id
            listed = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=100), metadata=metadata, timeout=20
            )
            assert len(listed.scenarios) == 16
    finally:
        server.stop(0)


def test_a_transaction_whose_connection_dies_midway_is_run_again_on_a_new_one(
    tmp_path, postgres_url, monkeypatch
):
    """The kill comes after the connection was checked out and used, inside the transaction.

    No pre-ping can replace a connection at that point: only the retry policy, running the
    whole transaction again, turns the lost connection into a successful call.
    """
    database = storage.Database(postgres_url, pool_size=2)
    database.migrate()
    tenant = tenants.new_tenant(database, f"midway-{tmp_path.name}")
    key = tenants.issue_key(database, tenant.id).secret
    attempts = []
    real_add = ScenarioRepository.add

    def add_after_losing_the_connection(self, scenario):
        attempts.append(scenario.display_name)
        if len(attempts) == 1:
            # The transaction has already run its request-id lookup on this connection.
            assert terminate_connections(postgres_url) >= 1
        return real_add(self, scenario)

    monkeypatch.setattr(ScenarioRepository, "add", add_after_losing_the_connection)
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, health_check_interval=60),
        database=database,
    )
    server.start()
    metadata = (("x-api-key", key),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            created = stub.CreateScenario(
                pb.CreateScenarioRequest(
                    scenario=scenario_pb2.Scenario(display_name="survivor"),
                    request_id="midway-1",
                ),
                metadata=metadata,
                timeout=20,
            )
            listed = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=10), metadata=metadata, timeout=20
            )
    finally:
        server.stop(0)
        database.dispose()

    assert created.scenario.display_name == "survivor"
    assert attempts == ["survivor", "survivor"]  # the first attempt died, the second committed
    assert [s.id for s in listed.scenarios] == [created.scenario.id]
