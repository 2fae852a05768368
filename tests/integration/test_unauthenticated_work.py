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
    # A one-sided bound far from the broken case: deserialising the 64 bodies before the key
    # check grew the server by about 400 MiB. Refused from metadata, growth is usually under
    # 50 MiB, but what grpc core buffers of in-flight bodies varies with timing (up to 73 MiB
    # seen on a busy machine), so the test allows more than that.
    assert after - before < 160 * 1024 * 1024, f"RSS grew by {(after - before) >> 20} MiB"
