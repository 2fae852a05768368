"""What the second wall between tenants costs on PostgreSQL: calls with it on and off, in turns.

Usage:
    .venv/bin/python -m bench.tenant_wall [--url URL] [--calls N] [--rounds R]

Two in-process servers share one throwaway PostgreSQL database (``bench.database``): one runs
tenant calls under row-level security as ``simconfig_service`` (the default), the other as the
owner with the wall off. The read cache is off, so every call reads the database. Each round
makes ``--calls`` calls of a kind on each server in turn, so a busy moment on the shared machine
hits both alike; a figure is the median over rounds of the median call latency (and of the
process's CPU time per call, client included).

Kinds: ``same tenant`` (GetScenario, one tenant: the pooled connection already holds it),
``two tenants`` (GetScenario, alternating tenants: each checkout changes the connection's
tenant, one more round trip), ``list`` (ListScenarios of 50) and ``create`` (CreateScenario).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

import storage
from bench.database import bench_database
from service.app import tenants
from service.server import ServiceServer, create_server
from service.settings import Settings

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
KINDS = ("same tenant", "two tenants", "list", "create")


class WallServer:
    """An in-process server on the shared database, with the wall on or off."""

    def __init__(self, url: str, wall: bool):
        self.wall = wall
        database = storage.Database(url, tenant_wall=wall)
        settings = Settings(
            port=0,
            data_dir=Path(tempfile.mkdtemp(prefix="simconfig-wall-")),
            architect_workers=0,
            read_cache_entries=0,
            # The benchmark calls as fast as it can: no tenant limit may refuse it.
            tenant_requests_per_second=1_000_000,
            tenant_request_burst=10_000_000,
        )
        self.server: ServiceServer
        self.server, port = create_server(settings, database=database)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = scenario_service_pb2_grpc.ScenarioServiceStub(self.channel)

    def close(self) -> None:
        """Closes the channel and stops the server."""
        self.channel.close()
        self.server.stop(0)


def _calls(server: WallServer, kind: str, keys: list[tuple], ids: list[str]) -> Callable:
    stub = server.stub

    def call(i: int) -> None:
        if kind == "list":
            stub.ListScenarios(pb.ListScenariosRequest(page_size=50), metadata=keys[0])
        elif kind == "create":
            scenario = scenario_pb2.Scenario(display_name=uuid.uuid4().hex)
            stub.CreateScenario(pb.CreateScenarioRequest(scenario=scenario), metadata=keys[0])
        else:
            n = 0 if kind == "same tenant" else i % 2
            stub.GetScenario(pb.GetScenarioRequest(scenario_id=ids[n]), metadata=keys[n])

    return call


def _round(call: Callable, calls: int) -> tuple[float, float]:
    """Median latency (µs) and process CPU per call (µs) over ``calls`` calls."""
    latencies = []
    cpu = time.process_time()
    for i in range(calls):
        started = time.perf_counter()
        call(i)
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1e6, (time.process_time() - cpu) / calls * 1e6


def main(argv: list[str] | None = None) -> None:
    """Measures every kind of call with the wall on and off, in turns, and prints the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="a PostgreSQL server to bench on")
    parser.add_argument("--calls", type=int, default=200, help="calls per kind, side and round")
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args(argv)
    with bench_database(args.url, Path(tempfile.mkdtemp())) as bench:
        url = bench.url
        setup = storage.Database(url)
        setup.migrate()
        keys = []
        for name in ("one", "two"):
            tenant = tenants.new_tenant(setup, name)
            keys.append((("x-api-key", tenants.issue_key(setup, tenant.id).secret),))
        setup.dispose()
        servers = [WallServer(url, wall=False), WallServer(url, wall=True)]
        try:
            ids = [
                servers[0]
                .stub.CreateScenario(
                    pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="x")),
                    metadata=key,
                )
                .scenario.id
                for key in keys
            ]
            print(f"{args.rounds} rounds of {args.calls} calls per kind and side")
            print(
                f"{'':<12} {'latency µs, off':>15} {'on':>8} {'':>8}"
                f" {'CPU µs, off':>11} {'on':>8} {'':>8}"
            )
            for kind in KINDS:
                calls = [_calls(server, kind, keys, ids) for server in servers]
                for call in calls:  # warm-up: connections, prepared statements, key cache
                    _round(call, 50)
                figures: list[list[tuple[float, float]]] = [[], []]
                for _ in range(args.rounds):
                    for side, call in enumerate(calls):
                        figures[side].append(_round(call, args.calls))
                off, on = (
                    tuple(statistics.median(f[i] for f in side) for i in (0, 1)) for side in figures
                )
                print(
                    f"{kind:<12} {off[0]:>15,.0f} {on[0]:>8,.0f} {on[0] / off[0] - 1:>+8.1%}"
                    f" {off[1]:>11,.0f} {on[1]:>8,.0f} {on[1] / off[1] - 1:>+8.1%}"
                )
        finally:
            for server in servers:
                server.close()


if __name__ == "__main__":
    main()
