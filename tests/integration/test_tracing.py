"""OpenTelemetry traces of an in-process server, captured with an in-memory exporter.

The tracer provider is the one the server builds (:func:`new_tracer_provider`), set as the
process's global provider as ``simconfig serve`` does; only its exporter is in memory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode
from simulation.v1 import scenario_pb2, scenario_service_pb2_grpc, simulation_service_pb2_grpc
from simulation.v1 import scenario_service_pb2 as pb
from simulation.v1 import simulation_service_pb2 as sim_pb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from service.telemetry.logs import CallContextFilter
from service.telemetry.tracing import RpcSpanInterceptor, new_tracer_provider

GATEWAY_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GATEWAY_SPAN = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def provider() -> TracerProvider:
    exporter = InMemorySpanExporter()
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # set by an earlier module: export there too
        current.add_span_processor(SimpleSpanProcessor(exporter))
        current.exporter = exporter
        return current
    made = new_tracer_provider(exporter)
    made.exporter = exporter
    trace.set_tracer_provider(made)
    return made


@pytest.fixture
def traced_server(provider, tmp_path, migrated_sqlite_url):
    database = storage.Database(migrated_sqlite_url)
    tenant = tenants.new_tenant(database, "acme")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path, tracing="console", metrics_port=0),
        database=database,
    )
    server.start()
    provider.force_flush()
    provider.exporter.clear()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, key, provider
    server.stop(0)


def finished(provider) -> list:
    provider.force_flush()
    return list(provider.exporter.get_finished_spans())


def rpc_span(spans, method: str):
    (found,) = [s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith(method)]
    return found


def test_the_rpc_span_continues_the_gateways_trace_with_database_children(traced_server):
    channel, key, provider = traced_server
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    created = stub.CreateScenario(
        pb.CreateScenarioRequest(scenario=scenario_pb2.Scenario(display_name="Traced")),
        metadata=(("x-api-key", key),),
    ).scenario
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(CallContextFilter())
    handler.emit = records.append
    access = logging.getLogger("simconfig.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        stub.GetScenario(
            pb.GetScenarioRequest(scenario_id=created.id),
            metadata=(
                ("x-api-key", key),
                ("traceparent", f"00-{GATEWAY_TRACE}-{GATEWAY_SPAN}-01"),
            ),
        )
    finally:
        access.removeHandler(handler)

    spans = finished(provider)
    get = rpc_span(spans, "ScenarioService/GetScenario")
    assert format(get.context.trace_id, "032x") == GATEWAY_TRACE
    assert format(get.parent.span_id, "016x") == GATEWAY_SPAN and get.parent.is_remote
    statements = [
        s for s in spans if s.parent is not None and s.parent.span_id == get.context.span_id
    ]
    assert statements and all(s.kind == SpanKind.CLIENT for s in statements)
    assert any("SELECT" in s.attributes.get("db.statement", s.name) for s in statements)
    # The access line of that call carries its trace id.
    (line,) = [r for r in records if r.method.endswith("GetScenario")]
    assert line.trace_id == GATEWAY_TRACE
    # The create had no traceparent: a trace of its own.
    create = rpc_span(spans, "ScenarioService/CreateScenario")
    assert create.parent is None and create.context.trace_id != get.context.trace_id


def test_a_failed_call_is_an_error_span_with_its_grpc_code(traced_server):
    channel, key, provider = traced_server
    stub = scenario_service_pb2_grpc.ScenarioServiceStub(channel)
    with pytest.raises(grpc.RpcError):
        stub.GetScenario(
            pb.GetScenarioRequest(scenario_id="00000000-0000-0000-0000-000000000000"),
            metadata=(("x-api-key", key),),
        )

    span = rpc_span(finished(provider), "ScenarioService/GetScenario")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


def test_an_architect_job_is_a_span_with_its_statements_and_background_work_is_not(
    traced_server,
):
    channel, key, provider = traced_server
    stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
    stub.CreateSimulation(
        sim_pb.CreateSimulationRequest(
            simulation={"name": "Traced job", "prompt": "Two bakeries compete for a street"},
            parameters={"max_turns": 3, "num_agents": 2, "seed": 1},
            wait=True,
        ),
        metadata=(("x-api-key", key),),
        timeout=60,
    )
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)

    spans = finished(provider)
    (job,) = [s for s in spans if s.name == "architect job"]
    assert job.attributes["simconfig.job.attempt"] == 1
    assert any(s.parent is not None and s.parent.span_id == job.context.span_id for s in spans)
    # The job's span is a child of the call that queued it: one trace from request to config.
    create = rpc_span(spans, "SimulationService/CreateSimulation")
    assert job.context.trace_id == create.context.trace_id
    assert job.parent.span_id == create.context.span_id
    assert not [s for s in spans if "Health" in s.name]
    # Statements outside any call or job (health probes, queue polls) make no root spans.
    assert not [s for s in spans if s.kind == SpanKind.CLIENT and s.parent is None]


def test_a_job_queued_by_a_gateway_call_runs_in_the_gateways_trace_after_the_call_ended(
    traced_server,
):
    channel, key, provider = traced_server
    stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
    created = stub.CreateSimulation(
        sim_pb.CreateSimulationRequest(
            simulation={"name": "Queued", "prompt": "A ferry company and a bridge plan"},
            parameters={"max_turns": 3, "num_agents": 2, "seed": 2},
        ),
        metadata=(("x-api-key", key), ("traceparent", f"00-{GATEWAY_TRACE}-{GATEWAY_SPAN}-01")),
    ).simulation
    wait_until_configured(stub, key, created.id)

    spans = finished(provider)
    create = rpc_span(spans, "SimulationService/CreateSimulation")
    (job,) = [s for s in spans if s.name == "architect job"]
    assert format(job.context.trace_id, "032x") == GATEWAY_TRACE
    assert job.parent.span_id == create.context.span_id
    assert job.kind == SpanKind.CONSUMER
    assert job.start_time > create.end_time  # queued, then run by a worker later


def test_a_job_queued_by_a_call_sampled_out_is_not_traced(traced_server):
    channel, key, provider = traced_server
    stub = simulation_service_pb2_grpc.SimulationServiceStub(channel)
    with access_lines() as records:
        created = stub.CreateSimulation(
            sim_pb.CreateSimulationRequest(
                simulation={"name": "Unsampled", "prompt": "A ferry company and a bridge plan"},
                parameters={"max_turns": 3, "num_agents": 2, "seed": 3},
            ),
            # The gateway decided not to sample this trace (flags 00).
            metadata=(
                ("x-api-key", key),
                ("traceparent", f"00-{GATEWAY_TRACE}-{GATEWAY_SPAN}-00"),
            ),
        ).simulation
    wait_until_configured(stub, key, created.id)

    # Not sampled, but its log line still names the gateway's trace.
    (line,) = [r for r in records if r.method.endswith("CreateSimulation")]
    assert line.trace_id == GATEWAY_TRACE

    spans = finished(provider)
    # Neither the call, its statements nor its job: only the polls of GetSimulation.
    assert not [s for s in spans if format(s.context.trace_id, "032x") == GATEWAY_TRACE]
    assert not [s for s in spans if s.name == "architect job"]
    assert {s.name for s in spans if s.kind == SpanKind.SERVER} == {
        "/simulation.v1.SimulationService/GetSimulation"
    }


@contextmanager
def access_lines() -> Iterator[list[logging.LogRecord]]:
    """The access log records written meanwhile, stamped as the server's log handler does."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.addFilter(CallContextFilter())
    handler.emit = records.append  # type: ignore[method-assign]
    access = logging.getLogger("simconfig.access")
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield records
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


def wait_until_configured(stub, key: str, simulation_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        simulation = stub.GetSimulation(
            sim_pb.GetSimulationRequest(simulation_id=simulation_id),
            metadata=(("x-api-key", key),),
        ).simulation
        if simulation.status == simulation.COMPLETED_CONFIG:
            return
        time.sleep(0.05)
    raise AssertionError("the architect job did not finish")


def test_the_standard_sampler_variables_choose_which_calls_are_traced(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.01")

    sampler = new_tracer_provider(InMemorySpanExporter()).sampler

    assert "TraceIdRatioBased{0.01}" in sampler.get_description()
    assert sampler.get_description().startswith("NoOrphanStatements(")


# -- the RPC span interceptor on a server of its own, with a provider of its own ---------------


class EvenTraceIds(Sampler):
    """Samples a call whose trace id is even; remembers the ids it said yes to."""

    def __init__(self):
        self.said_yes: set[int] = set()

    def should_sample(self, parent_context, trace_id, name, kind=None, *args, **kwargs):
        if trace_id % 2:
            return SamplingResult(Decision.DROP)
        self.said_yes.add(trace_id)
        return SamplingResult(Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "EvenTraceIds"


def echo_server(interceptor: grpc.ServerInterceptor, seen: list):
    """A real server on port 0 whose one method records the trace id its handler runs in."""

    def echo(request: bytes, context) -> bytes:
        seen.append(trace.get_current_span().get_span_context())
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.server(ThreadPoolExecutor(2), interceptors=[interceptor])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_a_sampled_calls_span_has_the_trace_id_the_sampler_said_yes_to():
    sampler = EvenTraceIds()
    provider = new_tracer_provider(InMemorySpanExporter())
    provider.sampler = sampler
    seen: list = []
    server, port = echo_server(RpcSpanInterceptor(provider), seen)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            echo = channel.unary_unary("/test.Echo/Echo")
            for index in range(40):
                # A malformed traceparent names no trace: those calls start their own.
                echo(b"x", metadata=(("traceparent", "00-not-a-trace-01"),) if index % 2 else ())
    finally:
        server.stop(0)

    spans = exporter.get_finished_spans()
    # Asked once per call and never again with another id: a ratio sampler keeps its ratio.
    assert {s.context.trace_id for s in spans} == sampler.said_yes
    assert 0 < len(spans) < 40
    assert all(s.attributes["rpc.method"] == "Echo" for s in spans)
    # A call sampled out with no caller's trace runs in no trace at all: nothing to carry.
    assert sum(not c.is_valid for c in seen) == 40 - len(spans)


class CallDetails(NamedTuple):
    method: str
    invocation_metadata: tuple


def test_with_no_sdk_provider_the_interceptor_passes_every_call_through_untouched():
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = CallDetails("/test.Echo/Echo", ())

    interceptor = RpcSpanInterceptor(trace.NoOpTracerProvider())

    assert interceptor.intercept_service(lambda _: handler, details) is handler
