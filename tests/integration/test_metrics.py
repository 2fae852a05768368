"""Prometheus metrics of a real ``simconfig serve``, scraped from ``/metrics`` after calls."""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from simulation.v1 import scenario_service_pb2 as pb
from simulation.v1 import scenario_service_pb2_grpc, simulation_service_pb2_grpc
from simulation.v1 import simulation_service_pb2 as sim_pb

from tests.processes import ServerProcess, add_tenant_key, environment, free_port

SERVICE = "simulation.v1.ScenarioService"
MISSING = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def start(tmp_path):
    started: list[ServerProcess] = []

    def start_server(database_url: str | None = None, **settings) -> ServerProcess:
        env = environment(
            tmp_path,
            free_port(),
            database_url,
            SIMCONFIG_METRICS_PORT=free_port(),
            SIMCONFIG_DEMO_TENANT="false",
            SIMCONFIG_GRACE_PERIOD="2",
            **settings,
        )
        server = ServerProcess(env)
        started.append(server)
        return server.wait_ready()

    yield start_server
    for server in started:
        server.stop()


def scrape(server: ServerProcess) -> dict[tuple[str, tuple], float]:
    """Every sample on /metrics as {(name, sorted labels): value}."""
    port = server.env["SIMCONFIG_METRICS_PORT"]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def settled_scrape(server: ServerProcess, ready: Callable[[dict], bool]) -> dict:
    """A scrape once ``ready`` holds of it, or the last one after a few seconds.

    With several processes each one writes its figures to the shared files every
    ``FLUSH_SECONDS`` (0.2 s), so /metrics shows the last calls that much later.
    """
    deadline = time.monotonic() + 5
    while True:
        samples = scrape(server)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def handled_calls(samples) -> float:
    return sum(value for (name, _), value in samples.items() if name == "grpc_server_handled_total")


def call_on_new_connections(server: ServerProcess, key: str, lists: int, misses: int) -> None:
    """Each call on a connection of its own, so that every server process gets some."""
    for index in range(lists + misses):
        with grpc.insecure_channel(server.address) as channel:
            stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            if index < lists:
                stub.ListScenarios(pb.ListScenariosRequest(), metadata=(("x-api-key", key),))
                continue
            with pytest.raises(grpc.RpcError) as caught:
                stub.GetScenario(
                    pb.GetScenarioRequest(scenario_id=MISSING), metadata=(("x-api-key", key),)
                )
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def labels(method: str, **more) -> tuple:
    base = {"grpc_type": "unary", "grpc_service": SERVICE, "grpc_method": method, **more}
    return tuple(sorted(base.items()))


def assert_call_figures(samples, lists: int, misses: int) -> None:
    assert samples[("grpc_server_started_total", labels("ListScenarios"))] == lists
    assert samples[("grpc_server_handled_total", labels("ListScenarios", grpc_code="OK"))] == lists
    assert (
        samples[("grpc_server_handled_total", labels("GetScenario", grpc_code="NOT_FOUND"))]
        == misses
    )
    assert ("grpc_server_handled_total", labels("GetScenario", grpc_code="OK")) not in samples
    assert samples[("grpc_server_handling_seconds_count", labels("ListScenarios"))] == lists
    assert samples[("grpc_server_handling_seconds_count", labels("GetScenario"))] == misses
    assert samples[("grpc_server_handling_seconds_bucket", labels("GetScenario", le="+Inf"))] == (
        misses
    )
    assert samples[("grpc_server_handling_seconds_sum", labels("ListScenarios"))] > 0


def test_one_process_counts_calls_by_method_and_code(start):
    server = start()
    _, key = add_tenant_key(server.env, "acme")

    call_on_new_connections(server, key, lists=3, misses=2)

    samples = scrape(server)
    assert_call_figures(samples, lists=3, misses=2)
    # The key was read from the database once, then answered from memory.
    assert samples[("simconfig_api_key_cache_lookups_total", (("result", "miss"),))] == 1
    assert samples[("simconfig_api_key_cache_lookups_total", (("result", "hit"),))] == 4
    assert samples[("simconfig_health_serving", ())] == 1
    assert samples[("simconfig_architect_jobs", (("state", "queued"),))] == 0
    assert samples[("simconfig_db_pool_connections", (("state", "size"),))] >= 1


def test_the_figures_of_several_processes_add_up_on_one_port(start, migrated_postgres_url):
    server = start(migrated_postgres_url, SIMCONFIG_PROCESSES="2")
    _, key = add_tenant_key(server.env, "acme")

    call_on_new_connections(server, key, lists=12, misses=5)

    samples = settled_scrape(server, lambda samples: handled_calls(samples) >= 17)
    assert_call_figures(samples, lists=12, misses=5)
    lookups = sum(
        samples.get(("simconfig_api_key_cache_lookups_total", (("result", r),)), 0)
        for r in ("hit", "miss")
    )
    assert lookups == 17
    # A live gauge summed over the two processes: each has a pool of the configured size.
    size = samples[("simconfig_db_pool_connections", (("state", "size"),))]
    assert size >= 2 * 10


def create_simulations_on_new_connections(server: ServerProcess, key: str, count: int) -> None:
    """Architect jobs, each queued on a connection of its own and waited for."""
    for index in range(count):
        with grpc.insecure_channel(server.address) as channel:
            created = (
                simulation_service_pb2_grpc.SimulationServiceStub(channel)
                .CreateSimulation(
                    sim_pb.CreateSimulationRequest(
                        simulation={"name": f"Counted {index}", "prompt": "Two bakeries compete"},
                        parameters={"max_turns": 3, "num_agents": 2, "seed": index},
                        wait=True,
                    ),
                    metadata=(("x-api-key", key),),
                    timeout=60,
                )
                .simulation
            )
            assert created.status == created.COMPLETED_CONFIG


def finished_jobs(samples) -> dict[str, float]:
    return {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "simconfig_architect_jobs_finished_total"
    }


def test_finished_architect_jobs_are_counted_by_outcome(start):
    server = start()
    _, key = add_tenant_key(server.env, "acme")

    create_simulations_on_new_connections(server, key, 2)

    assert finished_jobs(scrape(server)) == {
        "succeeded": 2,
        "failed": 0,
        "invalid_output": 0,
        "abandoned": 0,
        "superseded": 0,
    }


def test_finished_architect_jobs_add_up_across_processes(start, migrated_postgres_url):
    server = start(migrated_postgres_url, SIMCONFIG_PROCESSES="2")
    _, key = add_tenant_key(server.env, "acme")

    create_simulations_on_new_connections(server, key, 6)

    samples = settled_scrape(server, lambda samples: finished_jobs(samples)["succeeded"] >= 6)
    assert finished_jobs(samples)["succeeded"] == 6


def test_no_tenant_key_or_resource_id_is_ever_a_label(start):
    server = start()
    tenant_id, key = add_tenant_key(server.env, "acme")
    call_on_new_connections(server, key, lists=1, misses=1)

    text = httpx.get(
        f"http://127.0.0.1:{server.env['SIMCONFIG_METRICS_PORT']}/metrics", timeout=10
    ).text

    assert tenant_id not in text and key.split("_")[1] not in text and "0000-0000" not in text


def test_metrics_port_zero_serves_no_metrics(tmp_path):
    port = free_port()
    env = environment(tmp_path, free_port(), SIMCONFIG_METRICS_PORT="0")
    server = ServerProcess(env).wait_ready()
    try:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert "metrics on" not in server.output
    finally:
        server.stop()
