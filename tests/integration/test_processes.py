"""``simconfig serve`` on several processes: one port, supervised, revocation everywhere."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import grpc
import pytest
from simulation.v1 import scenario_service_pb2 as pb
from simulation.v1 import scenario_service_pb2_grpc

from tests.processes import ServerProcess, create_tenant_key, environment, free_port, simconfig


def children_of(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (read from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def wait_until(condition, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)


def list_scenarios_on_a_new_connection(address: str, key: str) -> grpc.StatusCode:
    """One call on a connection of its own: the kernel hands each to any of the processes."""
    with grpc.insecure_channel(address) as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        try:
            stub.ListScenarios(
                pb.ListScenariosRequest(), metadata=(("x-api-key", key),), timeout=10
            )
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK


@pytest.fixture
def start(tmp_path, empty_postgres_url):
    started: list[ServerProcess] = []

    def start_server(processes: int = 2, **settings) -> ServerProcess:
        env = environment(
            tmp_path,
            free_port(),
            empty_postgres_url,
            SIMCONFIG_PROCESSES=str(processes),
            SIMCONFIG_GRACE_PERIOD="2",
            **settings,
        )
        server = ServerProcess(env)
        started.append(server)
        return server.wait_ready()

    yield start_server
    for server in started:
        server.stop()


def test_every_process_serves_and_the_log_says_how_many(start):
    server = start(processes=2)
    _, key = create_tenant_key(server.env, "acme")

    assert "2 processes" in server.output
    assert len(children_of(server.process.pid)) == 2
    codes = {list_scenarios_on_a_new_connection(server.address, key) for _ in range(10)}
    assert codes == {grpc.StatusCode.OK}


def test_a_revoked_key_is_refused_by_every_process_within_two_seconds(start):
    server = start(processes=2)
    _, key = create_tenant_key(server.env, "acme")
    key_id = key.split("_")[1]
    # Warm the key into both processes' memory (each new connection lands on either one).
    for _ in range(30):
        assert list_scenarios_on_a_new_connection(server.address, key) == grpc.StatusCode.OK

    simconfig(server.env, "keys", "revoke", key_id)
    time.sleep(2.0)

    codes = [list_scenarios_on_a_new_connection(server.address, key) for _ in range(30)]
    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}


def test_a_port_taken_by_another_program_fails_before_any_process_starts(
    tmp_path, empty_postgres_url
):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        env = environment(tmp_path, port, empty_postgres_url, SIMCONFIG_PROCESSES="2")
        simconfig(env, "migrate")
        server = ServerProcess(env)
        code = server.process.wait(30)

    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in server.output
    assert "listening on" not in server.output


def test_a_process_that_dies_is_restarted_and_the_server_keeps_answering(start):
    server = start(processes=2)
    _, key = create_tenant_key(server.env, "acme")
    victim = min(children_of(server.process.pid))

    os.kill(victim, signal.SIGKILL)

    replaced = wait_until(
        lambda: len(children_of(server.process.pid) - {victim}) == 2,
        30,
        "the supervisor did not start a replacement process",
    )
    assert replaced
    wait_until(lambda: "serves again" in server.output, 30, "the replacement never served")
    assert f"(pid {victim}) was killed by SIGKILL" in server.output
    codes = {list_scenarios_on_a_new_connection(server.address, key) for _ in range(10)}
    assert codes == {grpc.StatusCode.OK}


def test_sigterm_stops_every_process_within_the_grace_period(start):
    server = start(processes=2)
    children = children_of(server.process.pid)

    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(2 + 10)  # the grace period and a margin for a loaded machine

    assert code == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    assert "simconfig stopped" in server.output


def test_a_killed_supervisor_takes_its_processes_with_it(start):
    server = start(processes=2)
    children = children_of(server.process.pid)

    server.kill()

    wait_until(
        lambda: not any(Path(f"/proc/{pid}").exists() for pid in children),
        10,
        "processes outlived their SIGKILLed supervisor",
    )
