"""Fair sharing between tenants on a real ``simconfig serve``: limits, and a flood measured.

The flood runs in a process of its own, so that its client threads do not compete for the
interpreter lock with the calls being timed.
"""

from __future__ import annotations

import multiprocessing
import statistics
import threading
import time
from datetime import UTC, datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

import storage
from bench import bulk
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.harness import detail, rich_status
from tests.processes import ServerProcess, create_tenant_key, environment, free_port, simconfig

FLOOD_CALLS = 32
SCENARIOS = 1000


def _stub(address: str) -> tuple[grpc.Channel, scenario_service_pb2_grpc.ScenarioServiceStub]:
    channel = grpc.insecure_channel(address)
    return channel, scenario_service_pb2_grpc.ScenarioServiceStub(channel)


def _flood(address: str, key: str, stop, served, refused) -> None:
    """32 threads listing 1,000 scenarios each, back to back; refused calls wait as told."""
    channel, stub = _stub(address)
    metadata = (("x-api-key", key),)

    def loop():
        while not stop.is_set():
            try:
                stub.ListScenarios(pb.ListScenariosRequest(page_size=1000), metadata=metadata)
                with served.get_lock():
                    served.value += 1
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
                with refused.get_lock():
                    refused.value += 1
                retry = detail(rich_status(exc.trailing_metadata()), error_details_pb2.RetryInfo)
                stop.wait(retry.retry_delay.ToTimedelta().total_seconds())

    threads = [threading.Thread(target=loop) for _ in range(FLOOD_CALLS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()


def _p50_ms(call, count: int) -> float:
    timings = []
    for _ in range(count):
        start = time.perf_counter()
        call()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)


@pytest.fixture
def served(tmp_path):
    env = environment(tmp_path, free_port(), SIMCONFIG_DEMO_TENANT="false")
    simconfig(env, "migrate")
    flooder_tenant, flooder_key = create_tenant_key(env, "flooder")
    _, quiet_key = create_tenant_key(env, "quiet")
    engine = bulk.engine_for(storage.sqlite_url_for(tmp_path))
    bulk.add_scenarios(engine, flooder_tenant, SCENARIOS, datetime.now(UTC), "flood")
    engine.dispose()
    process = ServerProcess(env).wait_ready()
    yield process, flooder_key, quiet_key
    process.stop()


# Seeding, start-up and two hundred timed calls under a flood take a minute or two on 2 cores.
@pytest.mark.timeout(360)
def test_one_tenants_flood_leaves_other_tenants_and_health_answering(served):
    process, flooder_key, quiet_key = served
    channel, stub = _stub(process.address)
    health = health_pb2_grpc.HealthStub(channel)
    metadata = (("x-api-key", quiet_key),)
    scenario = stub.CreateScenario(
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="mine")),
        metadata=metadata,
    ).scenario

    def get_scenario():
        stub.GetScenario(
            pb.GetScenarioRequest(scenario_id=scenario.id), metadata=metadata, timeout=10
        )

    def check_health():
        health.Check(health_pb2.HealthCheckRequest(), timeout=10)

    _p50_ms(get_scenario, 20)  # warm-up: key cache, prepared statements
    quiet_p50 = _p50_ms(get_scenario, 100)

    spawn = multiprocessing.get_context("spawn")
    stop, flood_served, flood_refused = spawn.Event(), spawn.Value("i", 0), spawn.Value("i", 0)
    flood = spawn.Process(
        target=_flood, args=(process.address, flooder_key, stop, flood_served, flood_refused)
    )
    flood.start()
    try:
        deadline = time.monotonic() + 60
        while flood_served.value < 2 * FLOOD_CALLS and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for the flood to be in full swing, not ordering threads
        flooded_p50 = _p50_ms(get_scenario, 100)
        health_p50 = _p50_ms(check_health, 50)
        served_during, refused_during = flood_served.value, flood_refused.value
    finally:
        stop.set()
        flood.join(60)
    channel.close()

    print(
        f"GetScenario p50 quiet {quiet_p50:.1f} ms, under the flood {flooded_p50:.1f} ms "
        f"({flooded_p50 / quiet_p50:.1f}x); health p50 {health_p50:.1f} ms; flood served "
        f"{served_during}, refused {refused_during}"
    )
    assert flood.exitcode == 0
    assert served_during >= 2 * FLOOD_CALLS
    # 32 calls in flight is past the default per-tenant limit (16): some are refused.
    assert refused_during > 0
    # The 5x target, with a floor of 5 ms for a machine so loaded that the quiet figure itself
    # wanders: measured 0.7-3.1x (under 2.5 ms) on 2 cores shared with the flooding client.
    # With the flooding tenant running on three threads at once it was 3-19x (3-31 ms), and
    # without fair sharing the other tenant's calls queued behind the whole flood: 1.6 s.
    bound = max(5 * quiet_p50, 5.0)
    assert flooded_p50 < bound, f"GetScenario p50 {flooded_p50:.1f} ms under the flood"
    assert health_p50 < 100


def test_a_tenant_past_its_rate_is_told_when_to_retry_and_others_are_not_held_up(
    tmp_path, migrated_sqlite_url
):
    database = storage.Database(migrated_sqlite_url)
    busy, quiet = tenants.new_tenant(database, "busy"), tenants.new_tenant(database, "quiet")
    busy_key = (("x-api-key", tenants.issue_key(database, busy.id).secret),)
    quiet_key = (("x-api-key", tenants.issue_key(database, quiet.id).secret),)
    settings = Settings(
        port=0, data_dir=tmp_path, tenant_requests_per_second=0.01, tenant_request_burst=3
    )
    server, port = create_server(settings, database=database)
    server.start()
    try:
        channel, stub = _stub(f"127.0.0.1:{port}")
        for _ in range(3):
            stub.ListScenarios(pb.ListScenariosRequest(), metadata=busy_key, timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListScenarios(pb.ListScenariosRequest(), metadata=busy_key, timeout=10)
        stub.ListScenarios(pb.ListScenariosRequest(), metadata=quiet_key, timeout=10)
        channel.close()
    finally:
        server.stop(0)

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rich_status(refused.value.trailing_metadata())
    assert detail(status, error_details_pb2.ErrorInfo).reason == "TENANT_RATE_LIMIT"
    retry = detail(status, error_details_pb2.RetryInfo).retry_delay.ToTimedelta()
    assert 0 < retry.total_seconds() <= 100  # one token at 0.01 a second
    [violation] = detail(status, error_details_pb2.QuotaFailure).violations
    assert violation.subject == f"tenant:{busy.id}"
