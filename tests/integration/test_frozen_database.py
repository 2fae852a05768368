"""A frozen database (SIGSTOP: connections open, nothing answers) turns health NOT_SERVING fast.

Runs on a scratch cluster of the test's own: freezing the shared server would stall every
other test.
"""

from __future__ import annotations

import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.scratch_postgres import scratch_postgres  # noqa: F401 - a fixture

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_status(stub) -> int | None:
    try:
        return stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status
    except grpc.RpcError:
        return None


def seconds_until(stub, status: int, limit: float = 30) -> float:
    """How long until the health service answers ``status`` (polled, at most ``limit``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if health_status(stub) == status:
            return time.monotonic() - started
        time.sleep(0.05)  # polling an external state, not ordering threads
    raise AssertionError(f"health never became {status} in {limit} s")


def test_a_frozen_database_turns_health_not_serving_within_3_seconds(
    tmp_path,
    scratch_postgres,  # noqa: F811
):
    cluster = scratch_postgres
    database = storage.Database(cluster.url, pool_size=2)
    database.migrate()
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, architect_workers=0, health_check_interval=1),
        database=database,
    )
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            seconds_until(stub, SERVING)
            cluster.freeze()
            try:
                frozen_for = seconds_until(stub, NOT_SERVING)
            finally:
                cluster.thaw()
            back_after = seconds_until(stub, SERVING)
    finally:
        server.stop(0)
        database.dispose()

    print(f"NOT_SERVING {frozen_for:.2f} s after the freeze; SERVING {back_after:.2f} s after")
    # Probe interval (1 s) plus probe timeout (1 s), with room for a loaded machine.
    assert frozen_for < 3.5


def test_health_turns_not_serving_within_3_seconds_while_every_rpc_thread_is_stuck(
    tmp_path,
    scratch_postgres,  # noqa: F811
):
    # Two tenants between them take every RPC thread, the reserve included, with calls stuck
    # on the frozen database; the health check must still be answered, not queued behind them.
    cluster = scratch_postgres
    database = storage.Database(cluster.url, pool_size=2)
    database.migrate()
    threads = 4
    keys = [
        tenants.issue_key(database, tenants.new_tenant(database, name).id).secret
        for name in ("flooder-a", "flooder-b")
    ]
    server, port = create_server(
        Settings(
            port=0,
            data_dir=tmp_path,
            architect_workers=0,
            webhook_workers=0,
            health_check_interval=1,
            worker_threads=threads,
            rpc_threads_reserved=1,
        ),
        database=database,
    )
    server.start()
    stuck = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
            seconds_until(stub, SERVING)
            ids = {}
            for key in keys:  # keys and scenarios known before the freeze: a warm key cache
                ids[key] = scenarios.CreateScenario(
                    scenario_service_pb2.CreateScenarioRequest(
                        scenario=scenario_pb2.Scenario(display_name="busy")
                    ),
                    metadata=(("x-api-key", key),),
                ).scenario.id
            cluster.freeze()
            try:
                frozen_at = time.monotonic()
                # More calls than threads, from both tenants: every thread gets one, and what
                # is left queues behind them.
                stuck = [
                    scenarios.GetScenario.future(
                        scenario_service_pb2.GetScenarioRequest(scenario_id=ids[key]),
                        metadata=(("x-api-key", key),),
                        timeout=60,
                    )
                    for _ in range(threads)
                    for key in keys
                ]
                not_serving_after = frozen_at + seconds_until(stub, NOT_SERVING)
                frozen_for = not_serving_after - frozen_at
                # The calls were still stuck when health answered: the threads were all taken.
                still_stuck = sum(not call.done() for call in stuck)
            finally:
                cluster.thaw()
            for call in stuck:
                call.cancel()
    finally:
        server.stop(0)
        database.dispose()

    print(f"NOT_SERVING {frozen_for:.2f} s after the freeze; {still_stuck} calls still stuck")
    assert still_stuck >= threads
    # Probe interval (1 s) plus probe timeout (1 s), with room for a loaded machine.
    assert frozen_for < 3.5
