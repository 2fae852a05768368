"""One REST call, followed from the gateway into the server: request id and trace id."""

from __future__ import annotations

import json
import time

import httpx

from tests.e2e import gateway_stack
from tests.processes import free_port

ENVOY, pytestmark = gateway_stack.envoy_or_skip()

TRACE_ID = "5c1f0e7a9b2d4c6e8f0a1b2c3d4e5f60"
PARENT_SPAN = "1a2b3c4d5e6f7081"


def json_lines(text: str) -> list[dict]:
    """The one-line JSON objects in ``text`` (the console exporter's spans span many lines)."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and line.endswith("}"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return found


def wait_for(read, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout}s")


def test_the_gateways_request_id_and_the_callers_trace_reach_the_server(tmp_path):
    server_port, gateway_port = free_port(), free_port()
    env = gateway_stack.server_env(tmp_path / "data", server_port)
    env.update(SIMCONFIG_LOG_FORMAT="json", SIMCONFIG_TRACING="console")
    server = gateway_stack.start_server(env, tmp_path)
    access_log = tmp_path / "gateway-access.log"
    try:
        tenant = gateway_stack.cli(env, "tenants", "create", "acme")
        key = gateway_stack.cli(env, "keys", "create", "--tenant", tenant)
        envoy = gateway_stack.start_gateway(
            server_port, gateway_port, ENVOY, tmp_path, access_log=access_log
        )
        try:
            response = httpx.get(
                f"http://127.0.0.1:{gateway_port}/v1/scenarios",
                headers={"x-api-key": key, "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            gateway_line = wait_for(
                lambda: [
                    e
                    for e in json_lines(access_log.read_text() if access_log.exists() else "")
                    if e["path"] == "/v1/scenarios"
                ],
                "gateway access line",
            )[0]
        finally:
            envoy.stop()
    finally:
        server.stop()

    output = server.log.read_text()
    (server_line,) = [
        e
        for e in json_lines(output)
        if e.get("logger") == "simconfig.access" and e["method"].endswith("/ListScenarios")
    ]
    assert server_line["request_id"] == gateway_line["request_id"]
    assert response.headers["x-request-id"] == gateway_line["request_id"]
    assert server_line["trace_id"] == TRACE_ID
    # The console exporter printed the server's span in the caller's trace.
    assert f'"trace_id": "0x{TRACE_ID}"' in output
