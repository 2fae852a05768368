"""Measures the API's latency and throughput through a real server and client.

Usage:
    .venv/bin/python bench/bench_api.py [--database-url URL] [--calls N] [--threads T]

Starts an in-process server on port 0 (embedded SQLite in a temp directory
unless --database-url is given), then times CreateScenario, GetScenario,
ListScenarios (page of 50) and UpdateConfig through real gRPC stubs, and prints
p50/p95/p99 latency, calls per second and the process's peak memory. It prints
figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from simulation.v1 import (
    config_pb2,
    config_service_pb2,
    config_service_pb2_grpc,
    scenario_pb2,
    scenario_service_pb2,
    scenario_service_pb2_grpc,
    simulation_pb2,
)

import storage
from service import auth
from service.server import create_server
from service.settings import Settings


def _config(turns: int) -> config_pb2.SimulationConfig:
    return config_pb2.SimulationConfig(
        title="Bench",
        max_turns=turns,
        model="sim-small-1",
        agents=[config_pb2.Agent(id=f"agent-{i}", name=f"Agent {i}") for i in range(20)],
        metrics=[config_pb2.Metric(name="score", kind=config_pb2.Metric.SCORE)],
    )


def _measure(name: str, calls: int, threads: int, fn) -> None:
    latencies: list[float] = []

    def timed(i: int) -> None:
        start = time.perf_counter()
        fn(i)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(timed, range(calls)))
    elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<18} {calls:>6} calls  {calls / elapsed:>8.1f}/s  "
        f"p50 {q[49] * 1000:6.2f} ms  p95 {q[94] * 1000:6.2f} ms  p99 {q[98] * 1000:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="simconfig-bench-"))
    url = args.database_url or storage.sqlite_url_for(data_dir)
    database = storage.Database(url)
    database.migrate()
    tenant = auth.new_tenant(database, f"bench-{time.time_ns()}")
    key = auth.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=data_dir, architect_workers=0), database=database
    )
    server.start()
    metadata = (("x-api-key", key),)
    print(f"database: {database.dialect}; calls per RPC: {args.calls}; threads: {args.threads}")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        configs = config_service_pb2_grpc.ConfigServiceStub(channel)
        ids: list[str] = [""] * args.calls

        def create(i: int) -> None:
            response = scenarios.CreateScenario(
                scenario_service_pb2.CreateScenarioRequest(
                    scenario=scenario_pb2.Scenario(display_name=f"bench {i}", labels={"n": str(i)})
                ),
                metadata=metadata,
            )
            ids[i] = response.scenario.id

        _measure("CreateScenario", args.calls, args.threads, create)
        _measure(
            "GetScenario",
            args.calls,
            args.threads,
            lambda i: scenarios.GetScenario(
                scenario_service_pb2.GetScenarioRequest(scenario_id=ids[i]), metadata=metadata
            ),
        )
        _measure(
            "ListScenarios(50)",
            args.calls,
            args.threads,
            lambda i: scenarios.ListScenarios(
                scenario_service_pb2.ListScenariosRequest(page_size=50), metadata=metadata
            ),
        )
        simulations = [
            configs.CreateSimulationWithConfig(
                config_service_pb2.CreateSimulationWithConfigRequest(
                    simulation=simulation_pb2.Simulation(name=f"sim {i}"), config=_config(10)
                ),
                metadata=metadata,
            ).simulation.id
            for i in range(args.threads)
        ]
        _measure(
            "UpdateConfig",
            args.calls,
            args.threads,
            lambda i: configs.UpdateConfig(
                config_service_pb2.UpdateConfigRequest(
                    simulation_id=simulations[i % args.threads], config=_config(10 + i % 50)
                ),
                metadata=metadata,
            ),
        )
    server.stop(0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the benchmark process (server + client): {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
