"""The JSON access log of a real ``simconfig serve``: one line per call, no secrets, no bodies."""

from __future__ import annotations

import json
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb

from tests.processes import ServerProcess, add_tenant_key, environment, free_port

SECRET_DESCRIPTION = "body-text-that-must-not-be-logged"


@pytest.fixture
def server(tmp_path):
    env = environment(
        tmp_path, free_port(), SIMCONFIG_LOG_FORMAT="json", SIMCONFIG_DEMO_TENANT="false"
    )
    process = ServerProcess(env).wait_ready()
    yield process
    process.stop()


def access_lines(server: ServerProcess, count: int, timeout: float = 10.0) -> list[dict]:
    """The first ``count`` access lines, waiting (bounded) for the server to write them."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for line in list(server.lines):
            if line.startswith("{"):
                entry = json.loads(line)
                if entry["logger"] == "simconfig.access":
                    found.append(entry)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_every_call_gets_one_json_access_line_with_who_what_and_how_long(server):
    tenant_id, key = add_tenant_key(server.env, "acme")
    key_id = key.split("_")[1]
    with grpc.insecure_channel(server.address) as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        created, call = stub.CreateScenario.with_call(
            pb.CreateScenarioRequest(
                scenario=scenario_pb2.Scenario(
                    display_name="Logged", description=SECRET_DESCRIPTION
                )
            ),
            metadata=(("x-api-key", key), ("x-request-id", "req-from-gateway-1")),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetScenario(
                pb.GetScenarioRequest(scenario_id="00000000-0000-0000-0000-000000000000"),
                metadata=(("x-api-key", key),),
                timeout=10,
            )
        with pytest.raises(grpc.RpcError) as refused:
            stub.ListScenarios(
                pb.ListScenariosRequest(), metadata=(("x-api-key", "sk_bad_key"),), timeout=10
            )

        # Health checks come every few seconds from every gateway: they get no line.
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)

    lines = access_lines(server, 3)
    assert len(access_lines(server, 4, timeout=1)) == 3
    assert [(line["method"], line["grpc_code"]) for line in lines] == [
        ("/simulation.v1.ScenarioService/CreateScenario", "OK"),
        ("/simulation.v1.ScenarioService/GetScenario", "NOT_FOUND"),
        ("/simulation.v1.ScenarioService/ListScenarios", "UNAUTHENTICATED"),
    ]
    created_line, missing_line, refused_line = lines
    assert created_line["request_id"] == "req-from-gateway-1"
    assert dict(call.initial_metadata())["x-request-id"] == "req-from-gateway-1"
    # Without an x-request-id the server makes one and returns it to the caller.
    returned = dict(missing.value.initial_metadata())["x-request-id"]
    assert missing_line["request_id"] == returned and returned != "req-from-gateway-1"
    for line in (created_line, missing_line):
        assert line["tenant_id"] == tenant_id and line["key_id"] == key_id
    assert refused_line["tenant_id"] == "" and refused.value.code().name == "UNAUTHENTICATED"
    for line in lines:
        assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
        assert line["peer"].startswith("ipv4:127.0.0.1:")
        assert line["level"] == "INFO" and line["time"]
    assert created.scenario.display_name == "Logged"
    logged = "".join(server.lines)
    assert key not in logged and "sk_bad_key" not in logged
    assert SECRET_DESCRIPTION not in logged


def test_a_request_id_that_is_not_a_plain_token_is_replaced(server):
    _, key = add_tenant_key(server.env, "acme")
    with grpc.insecure_channel(server.address) as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        _, call = stub.ListScenarios.with_call(
            pb.ListScenariosRequest(),
            metadata=(("x-api-key", key), ("x-request-id", 'evil" injected=1 ' + "x" * 200)),
            timeout=10,
        )

    returned = dict(call.initial_metadata())["x-request-id"]
    assert "evil" not in returned and len(returned) == 32
    assert access_lines(server, 1)[0]["request_id"] == returned
