"""Server-level behaviour: message size limits, port 0, graceful shutdown."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from simulation.v1 import config_pb2, scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

import storage
from service.app import page_tokens, tenants
from service.app.authentication import Principal
from service.app.scenarios import ScenarioOperations
from service.app.simulation_writes import SimulationInput
from service.architect import BuiltinArchitectEngine
from service.architect.jobs import ArchitectOperations, PromptedSimulation
from service.architect.worker import ArchitectWorker
from service.domain.validation import ConfigValidator
from service.server import PAGE_TOKEN_KEY_NAME, create_server, page_token_secret
from service.settings import Settings
from tests.processes import ServerProcess, environment
from tests.unit.test_architect_jobs import jobs_of


def test_messages_over_the_limit_are_refused(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, max_message_bytes=2048), database=database
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.CreateScenario(
                    pb.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name="big", description="x" * 4000)
                    ),
                    metadata=(("x-api-key", key),),
                    timeout=10,
                )
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(0)


def test_port_zero_logs_the_port_actually_bound(tmp_path):
    process = ServerProcess(environment(tmp_path, 0, SIMCONFIG_DEMO_TENANT="false"))
    try:
        process.wait_ready()
        assert process.port and process.port > 0
        assert re.search(rf"listening on 127\.0\.0\.1:{process.port}\b", process.output)
    finally:
        process.stop()


def test_sigint_stops_the_server_cleanly(tmp_path):
    process = ServerProcess(environment(tmp_path, 0, SIMCONFIG_DEMO_TENANT="false"))
    process.wait_ready()
    process.process.send_signal(signal.SIGINT)
    try:
        code = process.process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("no exit 15 s after SIGINT:\n" + process.output) from None
    assert code == 0, process.output
    assert "SIGINT" in process.output


def test_stop_lets_in_flight_calls_finish_within_the_grace_period(
    tmp_path, migrated_sqlite_url, monkeypatch
):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(Settings(port=0, data_dir=tmp_path), database=database)
    # Hold the call inside its handler until the stop has begun, then let it finish.
    in_flight, stopping, release = threading.Event(), threading.Event(), threading.Event()
    original_list, original_stop = ScenarioOperations.list, server.grpc_server.stop

    def held_list(self, *args, **kwargs):
        in_flight.set()
        assert release.wait(20), "the test never released the call"
        return original_list(self, *args, **kwargs)

    def stop_then_tell(grace):
        stopped = original_stop(grace)  # returns at once; the grace period runs in the background
        stopping.set()
        return stopped

    monkeypatch.setattr(ScenarioOperations, "list", held_list)
    server.grpc_server.stop = stop_then_tell
    server.start()
    result = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)

        def call():
            try:
                result["response"] = stub.ListScenarios(
                    pb.ListScenariosRequest(), metadata=(("x-api-key", key),), timeout=20
                )
            except grpc.RpcError as exc:  # pragma: no cover - reported below
                result["error"] = exc

        caller = threading.Thread(target=call)
        caller.start()
        assert in_flight.wait(10)
        stopper = threading.Thread(target=server.stop, kwargs={"grace": 10})
        stopper.start()
        assert stopping.wait(10)
        release.set()
        caller.join(20)
        stopper.join(20)
    assert not stopper.is_alive()
    assert "error" not in result, result.get("error")
    assert list(result["response"].scenarios) == []


def test_lists_fit_a_lowered_message_limit_by_cutting_pages(tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "budget")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, max_message_bytes=64 * 1024), database=database
    )
    server.start()
    metadata = (("x-api-key", key),)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            for i in range(40):  # 40 x ~4 KB of description: more than 64 KiB in one page
                stub.CreateScenario(
                    pb.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(
                            display_name=f"s{i:02d}", description="d" * 3900
                        )
                    ),
                    metadata=metadata,
                    timeout=10,
                )
            seen, token, pages = [], "", 0
            while True:
                page = stub.ListScenarios(
                    pb.ListScenariosRequest(page_token=token), metadata=metadata, timeout=10
                )
                pages += 1
                seen += [s.display_name for s in page.scenarios]
                token = page.next_page_token
                if not token:
                    break
        assert pages > 1
        assert sorted(seen) == [f"s{i:02d}" for i in range(40)]
    finally:
        server.stop(0)


def test_stop_turns_health_not_serving_first_and_ends_within_the_grace_period(
    tmp_path, migrated_sqlite_url, monkeypatch
):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    principal = Principal(tenant_id=tenant.id, key_id="k", scope="write")
    workers, grace = 4, 1.5
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=workers, grace_period=grace),
        database=database,
    )
    # Every worker is held inside the engine for the whole test: a busy architect.
    inside, never = threading.Semaphore(0), threading.Event()
    original_generate = BuiltinArchitectEngine.generate

    def held_generate(self, *args, **kwargs):
        inside.release()
        never.wait(30)
        return original_generate(self, *args, **kwargs)

    monkeypatch.setattr(BuiltinArchitectEngine, "generate", held_generate)
    seen_at_stop = {}
    original_stop = server.grpc_server.stop

    def stop_and_look(grace_period):
        # What a load balancer's probe saw just before the server stopped accepting calls.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            seen_at_stop["health"] = (
                health_pb2_grpc.HealthStub(channel)
                .Check(health_pb2.HealthCheckRequest(), timeout=5)
                .status
            )
        seen_at_stop["held jobs"] = sum(job.lease_expire_time > datetime.now(UTC) for job in jobs())
        return original_stop(grace_period)

    server.grpc_server.stop = stop_and_look
    server.start()
    operations = ArchitectOperations(database, ConfigValidator(), max_attempts=3)
    simulations = [
        operations.create_simulation(
            principal,
            PromptedSimulation(
                simulation=SimulationInput(name=f"Sim {index}", prompt="A town meeting"),
                parameters=config_pb2.ArchitectParameters(max_turns=5, num_agents=2),
            ),
        )
        for index in range(workers)
    ]

    def jobs():
        return [job for simulation in simulations for job in jobs_of(database, simulation)]

    for _ in range(workers):
        assert inside.acquire(timeout=20)

    started = time.monotonic()
    server.stop(grace)
    elapsed = time.monotonic() - started
    never.set()
    print(f"stopped with {workers} busy architect workers in {elapsed:.2f} s (grace {grace} s)")

    assert seen_at_stop["health"] == health_pb2.HealthCheckResponse.NOT_SERVING
    # Health turned before the architect workers were stopped: their jobs were still held.
    assert seen_at_stop["held jobs"] == workers
    # All four jobs were handed back to the queue, and together, not one after another.
    assert all(job.lease_expire_time <= datetime.now(UTC) for job in jobs())
    assert elapsed < grace + 1, f"stopping took {elapsed:.1f} s"


def test_every_server_on_a_database_signs_page_tokens_with_the_same_stored_key(
    tmp_path, migrated_sqlite_url
):
    database = storage.Database(migrated_sqlite_url)
    first = page_token_secret(Settings(data_dir=tmp_path), database)
    second = page_token_secret(Settings(data_dir=tmp_path), database)
    configured = page_token_secret(
        Settings(data_dir=tmp_path, page_token_secret="a configured secret, 16+ chars"), database
    )

    assert first == second and len(first) >= 32
    assert configured == "a configured secret, 16+ chars"


def test_a_server_given_a_page_token_secret_signs_with_it_and_stores_none(
    tmp_path, migrated_sqlite_url
):
    secret = "a configured secret, 16+ chars"
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, page_token_secret=secret), database=database
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            metadata = (("x-api-key", key),)
            for name in ("first", "second"):
                stub.CreateScenario(
                    pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name=name)),
                    metadata=metadata,
                    timeout=10,
                )
            first = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=1), metadata=metadata, timeout=10
            )
            # Every server given this secret checks tokens with it: so does this one now.
            page_tokens.use_signing_key(secret)
            second = stub.ListScenarios(
                pb.ListScenariosRequest(page_size=1, page_token=first.next_page_token),
                metadata=metadata,
                timeout=10,
            )
    finally:
        server.stop(0)

    assert [s.display_name for s in [*first.scenarios, *second.scenarios]] == ["first", "second"]
    stored = database.run(lambda uow: uow.secrets.get(PAGE_TOKEN_KEY_NAME))
    assert stored is None


def test_architect_workers_resume_when_the_health_probe_reaches_the_database_again(
    tmp_path, migrated_sqlite_url, monkeypatch
):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    principal = Principal(tenant_id=tenant.id, key_id="k", scope="write")
    failed = threading.Event()
    original_claim = ArchitectWorker.claim

    def claim_failing_once(self):
        if not failed.is_set():
            failed.set()
            raise storage.Unavailable("the database is restarting")
        return original_claim(self)

    monkeypatch.setattr(ArchitectWorker, "claim", claim_failing_once)
    # After one failure the worker would back off for two polls: 20 s.
    settings = Settings(
        port=0,
        data_dir=tmp_path,
        architect_workers=1,
        architect_poll_seconds=10,
        health_check_interval=0.2,
    )
    server, _ = create_server(settings, database=database)
    server.start()
    try:
        assert failed.wait(10)
        # Queued behind the server's back (as through another replica): nothing wakes the
        # worker but the health probe finding the database answering.
        simulation = ArchitectOperations(
            database, ConfigValidator(), max_attempts=3
        ).create_simulation(
            principal,
            PromptedSimulation(
                simulation=SimulationInput(name="Sim", prompt="A town meeting"),
                parameters=config_pb2.ArchitectParameters(max_turns=5, num_agents=2),
            ),
        )
        deadline = time.monotonic() + 8
        while (
            database.run(lambda uow: uow.simulations.get(tenant.id, simulation.id)).status
            != "COMPLETED_CONFIG"
        ):
            assert time.monotonic() < deadline, "the worker stayed in its failure backoff"
            time.sleep(0.05)  # polling for the outcome, not ordering threads
    finally:
        server.stop(0)
