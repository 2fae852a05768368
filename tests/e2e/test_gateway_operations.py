"""The gateway as an operator runs it: admin port, access log, request ids, health checks.

Every Envoy here runs the shipped ``deploy/envoy.yaml`` as ``deploy/gateway.py``
renders it, in front of the real ``simconfig serve`` or, where a test must see
what reaches the server or make it fail on purpose, a small gRPC server of the
test's own. Time bounds are one-sided and generous: the machine is shared.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from tests.conftest import throwaway_postgres_database
from tests.e2e import gateway_stack

ENVOY, pytestmark = gateway_stack.envoy_or_skip()

# Generous: health checks run every 3 s and need three failed connects in a row.
UNHEALTHY_WITHIN = 45.0
# A reply Envoy makes itself takes milliseconds; this only tells it from a hang.
PROMPT = 5.0
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass
class Gateway:
    """A running Envoy: its public and admin ports, and the file it logs calls to."""

    process: gateway_stack.Process
    port: int
    admin_port: int
    access_log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def admin(self, path: str) -> httpx.Response:
        return httpx.get(self.admin_url + path, timeout=30)

    def log_entry(self, request_id: str, timeout: float = 30.0) -> dict:
        """The access log line of the call with this x-request-id (Envoy flushes each second)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.access_log.exists():
                for line in self.access_log.read_text().splitlines():
                    entry = json.loads(line)
                    if entry["request_id"] == request_id:
                        return entry
            time.sleep(0.2)
        raise AssertionError(
            f"no access log line for {request_id} in {timeout}s:\n{self.access_log.read_text()}"
        )

    def wait_for_health_flags(self, upstream_port: int, wanted: str) -> float:
        """Waits until /clusters shows `wanted` in the upstream's health flags; returns seconds."""
        started = time.monotonic()
        flags = ""
        while time.monotonic() - started < UNHEALTHY_WITHIN:
            for line in self.admin("/clusters").text.splitlines():
                if line.startswith(f"simconfig_grpc::127.0.0.1:{upstream_port}::health_flags::"):
                    flags = line.rsplit("::", 1)[1]
            if wanted in flags:
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"health flags still {flags!r}, not {wanted!r}")


def start_gateway(upstream_port: int, workdir: Path) -> Gateway:
    port, admin_port = gateway_stack.free_port(), gateway_stack.free_port()
    access_log = workdir / "access.log"
    process = gateway_stack.start_gateway(
        upstream_port, port, ENVOY, workdir, admin_port=admin_port, access_log=access_log
    )
    return Gateway(process, port, admin_port, access_log)


def expect_status_body(response: httpx.Response, status: int, code: int) -> str:
    """Asserts a google.rpc.Status JSON error; returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body = response.json()
    assert body["code"] == code, body
    return body["message"]


@dataclass
class Stack:
    """The real server (embedded SQLite) behind a real gateway, and one write key."""

    server: gateway_stack.Process
    server_port: int
    gateway: Gateway
    key: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.gateway.url, headers={"x-api-key": self.key}, timeout=60)


def start_stack(workdir: Path, extra_env: dict[str, str] | None = None) -> Stack:
    server_port = gateway_stack.free_port()
    env = gateway_stack.server_env(workdir / "data", server_port)
    env.update(extra_env or {})
    server = gateway_stack.start_server(env, workdir)
    try:
        tenant = gateway_stack.cli(env, "tenants", "create", "operations")
        key = gateway_stack.cli(env, "keys", "create", "--tenant", tenant)
        gateway = start_gateway(server_port, workdir)
    except BaseException:
        server.stop()
        raise
    return Stack(server, server_port, gateway, key)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    """One server and gateway shared by the tests that leave both running."""
    started = start_stack(tmp_path_factory.mktemp("gateway-operations"))
    try:
        yield started
    finally:
        started.gateway.process.stop()
        started.server.stop()


# --- The admin interface --------------------------------------------------------


def test_the_admin_interface_serves_readiness_and_prometheus_stats(stack):
    ready = stack.gateway.admin("/ready")
    assert (ready.status_code, ready.text.strip()) == (200, "LIVE")

    with stack.client() as api:
        assert api.get("/v1/scenarios").status_code == 200
    stats = stack.gateway.admin("/stats/prometheus")
    assert stats.status_code == 200
    assert stats.headers["content-type"].startswith("text/plain")
    cluster = '{envoy_cluster_name="simconfig_grpc"}'
    assert f"envoy_cluster_health_check_success{cluster}" in stats.text
    assert f"envoy_cluster_upstream_rq_total{cluster}" in stats.text
    assert "envoy_cluster_outlier_detection_ejections_active" in stats.text


def test_the_admin_interface_listens_on_the_loopback_address_only(stack):
    # 127.0.0.2 is loopback too, so a socket bound to every address would answer
    # there; check first that this machine routes it, with a listener of our own.
    with socket.socket() as control:
        control.bind(("127.0.0.2", 0))
        control.listen()
        socket.create_connection(control.getsockname(), timeout=5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", stack.gateway.admin_port), timeout=5)


def test_the_admin_interface_is_not_reachable_through_the_public_port(stack):
    with httpx.Client(base_url=stack.gateway.url, timeout=30) as public:
        for path in ("/stats", "/stats/prometheus", "/ready", "/clusters", "/config_dump"):
            expect_status_body(public.get(path), 404, 5)
        for path in ("/quitquitquit", "/healthcheck/fail", "/drain_listeners", "/logging"):
            expect_status_body(public.post(path), 404, 5)
    # Envoy did not stop, fail its health check or drain.
    assert stack.gateway.admin("/ready").text.strip() == "LIVE"
    with stack.client() as api:
        assert api.get("/v1/scenarios").status_code == 200


# --- The access log -------------------------------------------------------------


def test_the_access_log_shows_the_method_and_path_the_rest_client_sent(stack):
    calls = {}
    with stack.client() as api:

        def call(method: str, path: str, **kwargs) -> httpx.Response:
            request_id = f"log-{method.lower()}-{uuid.uuid4().hex}"
            calls[method, path] = request_id
            return api.request(method, path, headers={"x-request-id": request_id}, **kwargs)

        created = call("POST", "/v1/scenarios", json={"display_name": uuid.uuid4().hex})
        scenario = created.json()["scenario"]
        path = f"/v1/scenarios/{scenario['id']}"
        assert call("GET", path).status_code == 200
        patch = call(
            "PATCH", path, params={"update_mask": "description"}, json={"description": "x"}
        )
        assert patch.status_code == 200
        assert call("DELETE", path).status_code == 200

    for (method, sent_path), request_id in calls.items():
        entry = stack.gateway.log_entry(request_id)
        assert entry["method"] == method, entry
        assert entry["path"].split("?")[0] == sent_path, entry
        assert (entry["response_code"], entry["grpc_status"]) == (200, "0"), entry
        assert entry["upstream_host"] == f"127.0.0.1:{stack.server_port}", entry
        assert isinstance(entry["duration_ms"], int) and entry["duration_ms"] >= 0, entry

    get = stack.gateway.log_entry(calls["GET", path])
    assert get["rpc"] == "/simulation.v1.ScenarioService/GetScenario", get
    assert get["protocol"] == "HTTP/1.1", get


def test_the_access_log_has_the_servers_grpc_status_of_a_rest_error(stack):
    """A NOT_FOUND is logged as 5, not as the UNIMPLEMENTED a 404 would suggest."""
    request_id = f"log-missing-{uuid.uuid4().hex}"
    with stack.client() as api:
        missing = api.get("/v1/scenarios/no-such-id", headers={"x-request-id": request_id})
    expect_status_body(missing, 404, 5)
    entry = stack.gateway.log_entry(request_id)
    assert (entry["method"], entry["path"]) == ("GET", "/v1/scenarios/no-such-id"), entry
    assert (entry["response_code"], entry["grpc_status"]) == (404, "5"), entry


def test_the_access_log_of_an_envoy_reply_has_no_grpc_status_or_upstream(stack):
    request_id = f"log-unknown-{uuid.uuid4().hex}"
    response = httpx.get(
        f"{stack.gateway.url}/v1/nothing-here", headers={"x-request-id": request_id}, timeout=30
    )
    expect_status_body(response, 404, 5)
    entry = stack.gateway.log_entry(request_id)
    assert (entry["method"], entry["path"], entry["response_code"]) == (
        "GET",
        "/v1/nothing-here",
        404,
    )
    assert entry["grpc_status"] is None and entry["upstream_host"] is None, entry


def test_a_rest_client_cannot_forge_the_method_and_path_it_is_logged_with(stack):
    request_id = f"log-forged-{uuid.uuid4().hex}"
    forged = {
        "x-request-id": request_id,
        "x-envoy-original-method": "DELETE",
        "x-envoy-original-path": "/v1/forged",
    }
    with stack.client() as api:
        assert api.get("/v1/scenarios", headers=forged).status_code == 200
    entry = stack.gateway.log_entry(request_id)
    assert (entry["method"], entry["path"]) == ("GET", "/v1/scenarios"), entry


def test_native_grpc_calls_are_logged_as_they_came_and_cannot_forge_the_rest_fields(stack):
    request_id = f"log-grpc-{uuid.uuid4().hex}"
    metadata = [
        ("x-api-key", stack.key),
        ("x-request-id", request_id),
        # What the transcoder writes for REST calls; a client's own must not count.
        ("x-envoy-original-method", "DELETE"),
        ("x-envoy-original-path", "/v1/forged"),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{stack.gateway.port}") as channel:
        stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
        with pytest.raises(grpc.RpcError) as failure:
            stub.GetScenario(
                scenario_service_pb2.GetScenarioRequest(scenario_id="no-such-id"),
                metadata=metadata,
                timeout=30,
            )
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    entry = stack.gateway.log_entry(request_id)
    assert entry["method"] == "POST", entry
    assert entry["path"] == entry["rpc"] == "/simulation.v1.ScenarioService/GetScenario", entry
    assert (entry["protocol"], entry["response_code"], entry["grpc_status"]) == (
        "HTTP/2",
        200,
        "5",
    )


# --- x-request-id ---------------------------------------------------------------


def test_every_response_carries_a_request_id(stack):
    with stack.client() as api:
        generated = {api.get("/v1/scenarios").headers["x-request-id"] for _ in range(3)}
        assert all(UUID.fullmatch(r) for r in generated) and len(generated) == 3, generated
        # Envoy's own replies too.
        assert UUID.fullmatch(api.get("/v1/nothing-here").headers["x-request-id"])


def test_a_request_id_sent_by_the_client_comes_back_unchanged(stack):
    mine = f"client-{uuid.uuid4().hex}"
    with stack.client() as api:
        assert (
            api.get("/v1/scenarios", headers={"x-request-id": mine}).headers["x-request-id"] == mine
        )
        failed = api.get("/v1/scenarios/no-such-id", headers={"x-request-id": mine})
    assert failed.status_code == 404 and failed.headers["x-request-id"] == mine


# --- A server of the test's own: what reaches it, and failing on purpose --------


@dataclass
class FakeServer:
    """Answers health checks SERVING and GetScenario as `fail` says; records metadata."""

    server: grpc.Server
    port: int
    fail: bool = False
    metadata: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_scenario(self, request, context):
        with self.lock:
            self.metadata.append(dict(context.invocation_metadata()))
        if self.fail:
            context.abort(grpc.StatusCode.UNAVAILABLE, "fake server failing on purpose")
        return scenario_service_pb2.GetScenarioResponse(
            scenario=scenario_pb2.Scenario(id=request.scenario_id, display_name="fake")
        )


def start_fake_server() -> FakeServer:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    port = server.add_insecure_port("127.0.0.1:0")
    fake = FakeServer(server, port)
    handler = grpc.method_handlers_generic_handler(
        "simulation.v1.ScenarioService",
        {
            "GetScenario": grpc.unary_unary_rpc_method_handler(
                fake.get_scenario,
                request_deserializer=scenario_service_pb2.GetScenarioRequest.FromString,
                response_serializer=scenario_service_pb2.GetScenarioResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    server.start()
    return fake


@pytest.fixture
def fake_servers() -> Iterator[list[FakeServer]]:
    """Two fake servers; a test uses one or both."""
    fakes = [start_fake_server(), start_fake_server()]
    try:
        yield fakes
    finally:
        for fake in fakes:
            fake.server.stop(None)


def test_the_request_id_reaches_the_server_as_grpc_metadata(fake_servers, tmp_path):
    fake = fake_servers[0]
    gateway = start_gateway(fake.port, tmp_path)
    try:
        mine = f"client-{uuid.uuid4().hex}"
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            sent = client.get("/v1/scenarios/a", headers={"x-request-id": mine})
            assert sent.status_code == 200, sent.text
            generated = client.get("/v1/scenarios/b")
            assert generated.status_code == 200, generated.text
    finally:
        gateway.process.stop()
    received = [m.get("x-request-id") for m in fake.metadata]
    assert received == [mine, generated.headers["x-request-id"]]


def test_outlier_detection_never_ejects_the_only_replica(fake_servers, tmp_path):
    """With one replica its health checks decide alone: failing calls do not take it out."""
    fake = fake_servers[0]
    fake.fail = True
    gateway = start_gateway(fake.port, tmp_path)
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            for _ in range(6):
                # The server's own answer every time, never "no healthy upstream".
                message = expect_status_body(client.get("/v1/scenarios/a"), 503, 14)
                assert message == "fake server failing on purpose"
        stats = gateway.admin("/stats?filter=outlier_detection").text
    finally:
        gateway.process.stop()
    assert "ejections_detected_consecutive_gateway_failure: 0" not in stats, stats
    assert "ejections_enforced_total: 0" in stats, stats
    assert len(fake.metadata) == 6


def start_gateway_to_both(fakes: list[FakeServer], workdir: Path) -> Gateway:
    """The shipped config, rendered by gateway.py, with a second endpoint in the cluster.

    What a name resolving to two replicas gives Envoy; the test cannot make one
    resolve so, so it lists the two addresses itself.
    """
    port, admin_port = gateway_stack.free_port(), gateway_stack.free_port()
    access_log = workdir / "access.log"
    gateway = gateway_stack.gateway_module()
    settings = gateway.GatewaySettings.from_env(
        {
            "SIMCONFIG_PORT": str(fakes[0].port),
            "SIMCONFIG_GATEWAY_PORT": str(port),
            "SIMCONFIG_GATEWAY_ADMIN_PORT": str(admin_port),
            "SIMCONFIG_GATEWAY_ACCESS_LOG": str(access_log),
        }
    )
    config = yaml.safe_load(gateway.render_config(settings, gateway.ensure_descriptor()))
    (cluster,) = config["static_resources"]["clusters"]
    endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
    second = copy.deepcopy(endpoints[0])
    second["endpoint"]["address"]["socket_address"]["port_value"] = fakes[1].port
    endpoints.append(second)
    process = gateway_stack.start_envoy(yaml.safe_dump(config), port, ENVOY, workdir)
    return Gateway(process, port, admin_port, access_log)


def test_outlier_detection_ejects_one_of_two_replicas_until_it_passes_a_health_check(
    fake_servers, tmp_path
):
    failing, healthy = fake_servers
    failing.fail = True
    gateway = start_gateway_to_both(fake_servers, tmp_path)
    try:
        with httpx.Client(base_url=gateway.url, timeout=30) as client:
            # Round robin: the failing replica gets every other call until it has
            # failed three in a row and is ejected. Every call is answered.
            for _ in range(20):
                if len(failing.metadata) == 3:
                    break
                assert client.get("/v1/scenarios/a").status_code in (200, 503)
            stats = gateway.admin("/stats?filter=outlier_detection.ejections_enforced").text
            assert "ejections_enforced_consecutive_gateway_failure: 1" in stats, stats

            # Its health checks pass, so the next one brings it back early.
            failing.fail = False
            deadline = time.monotonic() + UNHEALTHY_WITHIN
            while len(failing.metadata) == 3:
                assert time.monotonic() < deadline, "the ejected replica was never brought back"
                assert client.get("/v1/scenarios/a").status_code == 200
                time.sleep(0.2)
    finally:
        gateway.process.stop()
    assert healthy.metadata


# --- Health checks against the real server --------------------------------------


@pytest.fixture
def own_stack(tmp_path) -> Iterator[Stack]:
    """A server and gateway for a test that stops or breaks the server."""
    started = start_stack(tmp_path)
    try:
        yield started
    finally:
        started.gateway.process.stop()
        started.server.stop()


def test_a_stopped_server_is_marked_unhealthy_and_calls_get_a_prompt_503(own_stack):
    with own_stack.client() as api:
        assert api.get("/v1/scenarios").status_code == 200
        own_stack.server.stop()
        own_stack.gateway.wait_for_health_flags(own_stack.server_port, "failed_active_hc")

        request_id = f"down-{uuid.uuid4().hex}"
        started = time.monotonic()
        response = api.get("/v1/scenarios", headers={"x-request-id": request_id})
        elapsed = time.monotonic() - started
    assert expect_status_body(response, 503, 14) == "no healthy upstream"
    assert response.json()["details"] == []
    assert elapsed < PROMPT, elapsed
    entry = own_stack.gateway.log_entry(request_id)
    assert entry["response_flags"] == "UH", entry  # no healthy upstream: no server was tried


def _drop_database(url: str) -> None:
    """Drops the server's database under it, as an outage would take it away."""
    target = make_url(url)
    admin = create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_a_server_that_loses_its_database_is_taken_out_and_calls_get_a_prompt_503(tmp_path):
    with throwaway_postgres_database() as url:
        stack = start_stack(
            tmp_path,
            {
                "SIMCONFIG_DATABASE_URL": url,
                "SIMCONFIG_PROCESSES": "1",
                "SIMCONFIG_HEALTH_CHECK_INTERVAL": "0.5",
            },
        )
        try:
            with stack.client() as api:
                assert api.get("/v1/scenarios").status_code == 200
                _drop_database(url)
                # The server still runs and answers its health check: NOT_SERVING.
                stack.gateway.wait_for_health_flags(stack.server_port, "failed_active_hc")
                assert stack.server.popen.poll() is None

                started = time.monotonic()
                response = api.get("/v1/scenarios")
                elapsed = time.monotonic() - started
            assert expect_status_body(response, 503, 14) == "no healthy upstream"
            assert elapsed < PROMPT, elapsed
        finally:
            stack.gateway.process.stop()
            stack.server.stop()
