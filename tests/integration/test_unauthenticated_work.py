"""A call with no valid key costs the server next to nothing: its request is never read."""

from __future__ import annotations

import grpc
import pytest
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

from tests.processes import ServerProcess, create_tenant_key, environment, free_port, simconfig

FOUR_MIB = 4 * 1024 * 1024


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def server(tmp_path):
    process = ServerProcess(
        environment(
            tmp_path,
            free_port(),
            SIMCONFIG_DEMO_TENANT="false",
            SIMCONFIG_MAX_MESSAGE_BYTES=str(FOUR_MIB + 1024),
            SIMCONFIG_WORKER_THREADS="64",
        )
    ).wait_ready()
    yield process
    process.stop()


def revoked_key(server) -> str:
    """A well-formed key whose row exists but is revoked."""
    _, key = create_tenant_key(server.env, "revoked")
    simconfig(server.env, "keys", "revoke", key.split("_")[1])
    return key


@pytest.mark.parametrize(
    "key",
    [None, "sck_0123456789abcdef_" + "x" * 43, "nonsense", revoked_key],
    ids=["missing", "unknown", "malformed", "revoked"],
)
def test_sixty_four_big_requests_without_a_valid_key_barely_move_memory(server, key):
    if callable(key):
        key = key(server)
    metadata = (("x-api-key", key),) if key else ()
    big = pb.CreateScenarioRequest(
        scenario=scenario_pb2.Scenario(display_name="x", description="d" * (FOUR_MIB - 100))
    )
    options = [("grpc.max_send_message_length", FOUR_MIB + 1024)]
    with grpc.insecure_channel(server.address, options=options) as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        # Warm-up: the server's own first-call allocations are not what is measured.
        with pytest.raises(grpc.RpcError):
            stub.CreateScenario(pb.CreateScenarioRequest(), metadata=metadata, timeout=30)
        before = rss_bytes(server.process.pid)

        calls = [stub.CreateScenario.future(big, metadata=metadata, timeout=60) for _ in range(64)]
        codes = [call.exception().code() for call in calls]
        after = rss_bytes(server.process.pid)

    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}
    # Deserialising the 64 bodies before the key check grew the server by about 400 MiB;
    # refused from metadata but with grpc's probed stream windows (several MiB a call), by
    # 10-73 MiB. With the fixed 1 MiB window (server.STREAM_WINDOW_BYTES): 4-11 MiB measured.
    grew = after - before
    print(f"RSS grew by {grew / 2**20:.1f} MiB")
    assert grew < 24 * 1024 * 1024, f"RSS grew by {grew >> 20} MiB"


def test_a_four_mib_request_with_a_valid_key_is_read_whole_through_the_fixed_window(server):
    _, key = create_tenant_key(server.env, "legit")
    big = pb.CreateScenarioRequest(
        scenario=scenario_pb2.Scenario(display_name="x", description="d" * (FOUR_MIB - 100))
    )
    options = [("grpc.max_send_message_length", FOUR_MIB + 1024)]
    with grpc.insecure_channel(server.address, options=options) as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.CreateScenario(big, metadata=(("x-api-key", key),), timeout=30)

    # Answered on its merits, so the whole body arrived and was parsed: the description is
    # longer than a scenario's may be.
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "description" in refused.value.details()
