"""OpenTelemetry traces: a span per RPC, per database statement in it, and per architect job.

Off unless ``SIMCONFIG_TRACING`` is ``console`` or ``otlp``, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the OTLP exporter then reads the other ``OTEL_*``
variables itself (headers, protocol details, timeouts). Nothing here is imported while
tracing is off, so it costs nothing then. A caller's W3C ``traceparent`` (the gateway
forwards it) makes the server's span a child of the caller's, so one trace id spans both.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import server_interceptor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from service.api.fair_executor import carry_lane

SERVICE_NAME = "simconfig"
# Probed every few seconds by every gateway and orchestrator: spans of these are noise.
_UNTRACED_PREFIXES = ("/grpc.health.v1.Health/",)


class _NoOrphanStatements(Sampler):
    """Keeps database statements only inside a call or a job.

    Health probes, queue polls and metric counts run statements every few seconds outside
    any call; as root spans they would bury the traces that matter.
    """

    def __init__(self, delegate: Sampler):
        self._delegate = delegate

    def should_sample(
        self,
        parent_context,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes=None,
        links: Sequence | None = None,
        trace_state=None,
    ) -> SamplingResult:
        """Drops a client span (a statement) that has no parent; asks the delegate otherwise."""
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind == SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """Names the sampler in the SDK's diagnostics."""
        return f"NoOrphanStatements({self._delegate.get_description()})"


def new_tracer_provider(exporter: SpanExporter) -> TracerProvider:
    """A provider that batches this service's spans to ``exporter``."""
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "").strip() or SERVICE_NAME}
    )
    provider = TracerProvider(resource=resource)
    # The SDK chose the sampler the standard OTEL_TRACES_SAMPLER(_ARG) variables name
    # (every call by default; e.g. parentbased_traceidratio and 0.01 for one in a hundred).
    provider.sampler = _NoOrphanStatements(provider.sampler)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def start_tracing(mode: str) -> TracerProvider:
    """Sets up this process's tracer provider for ``mode`` (call it after any fork)."""
    if mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        exporter: SpanExporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = new_tracer_provider(exporter)
    trace.set_tracer_provider(provider)
    return provider


def rpc_interceptor() -> grpc.ServerInterceptor:
    """The server interceptor that opens a span per RPC (continuing the caller's trace)."""
    return _KeepingLanes(
        server_interceptor(tracer_provider=trace.get_tracer_provider(), filter_=_traced)
    )


class _KeepingLanes(grpc.ServerInterceptor):
    """Runs ``inner`` and puts the tenant lane of the handler it wrapped back on its result."""

    def __init__(self, inner: grpc.ServerInterceptor):
        self._inner = inner

    def intercept_service(self, continuation, handler_call_details):
        wrapped = []

        def keep(details):
            handler = continuation(details)
            wrapped.append(handler)
            return handler

        handler = self._inner.intercept_service(keep, handler_call_details)
        return carry_lane(wrapped[0] if wrapped else None, handler)


def _traced(details: grpc.HandlerCallDetails) -> bool:
    # A plain prefix test: the instrumentation's own filters check the argument against a
    # runtime Protocol, which took longer than the rest of the span's work together.
    return not details.method.startswith(_UNTRACED_PREFIXES)


class SpanStatusObserver:
    """Puts each call's final gRPC code on its span (errors sent with rich details too)."""

    def started(self, method: str) -> None:
        """Nothing to do at the start: the span is already open."""

    def handled(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Records ``code`` on the current span; anything but OK marks it as an error."""
        span = trace.get_current_span()
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
