"""OpenTelemetry traces: a span per RPC, per database statement in it, and per architect job.

Off unless ``SIMCONFIG_TRACING`` is ``console`` or ``otlp``, or the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; the OTLP exporter then reads the other ``OTEL_*``
variables itself (headers, protocol details, timeouts). Nothing here is imported while
tracing is off, so it costs nothing then. A caller's W3C ``traceparent`` (the gateway
forwards it) makes the server's span a child of the caller's, so one trace id spans both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import grpc
from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.api.fair_executor import carry_lane
from service.api.handler_cache import HandlerCache

SERVICE_NAME = "simconfig"
# Probed every few seconds by every gateway and orchestrator: spans of these are noise.
_UNTRACED_PREFIXES = ("/grpc.health.v1.Health/",)
# W3C trace context: what a caller (the gateway) sends to continue its trace.
_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
_w3c = TraceContextTextMapPropagator()


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
        # Asked for every call too: only statements pay for looking at the parent.
        if (
            kind == SpanKind.CLIENT
            and not trace.get_current_span(parent_context).get_span_context().is_valid
        ):
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        """Names the sampler in the SDK's diagnostics."""
        return f"NoOrphanStatements({self._delegate.get_description()})"


class _PresetTraceIds(RandomIdGenerator):
    """Random ids, except for a trace id the RPC interceptor drew to ask the sampler with.

    The interceptor asks the sampler before it makes any span, and makes one only when the
    answer is yes; the span must then get the very trace id the sampler said yes to, or a
    ratio sampler would decide a second time (sampling p² of the calls instead of p).
    """

    def __init__(self) -> None:
        self._preset = threading.local()

    def preset(self, trace_id: int) -> None:
        """Makes ``trace_id`` the next trace id this thread generates."""
        self._preset.trace_id = trace_id

    def generate_trace_id(self) -> int:
        """The trace id preset on this thread, once; a random one otherwise."""
        trace_id = getattr(self._preset, "trace_id", None)
        if trace_id is None:
            return super().generate_trace_id()
        self._preset.trace_id = None
        return trace_id


def new_tracer_provider(exporter: SpanExporter) -> TracerProvider:
    """A provider that batches this service's spans to ``exporter``."""
    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME", "").strip() or SERVICE_NAME}
    )
    provider = TracerProvider(resource=resource, id_generator=_PresetTraceIds())
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
    return RpcSpanInterceptor(trace.get_tracer_provider())


class RpcSpanInterceptor(grpc.ServerInterceptor):
    """A span per RPC, doing only the work a sampled call needs.

    OpenTelemetry's own gRPC interceptor parses the peer, copies every metadata entry, runs
    the global propagators, makes a span and wraps the servicer context on every call,
    sampled or not: about a quarter more CPU per GetScenario with no call sampled. This one
    reads the caller's ``traceparent`` (and ``tracestate``) only and asks the sampler first;
    a span, its attributes and the context switch happen only for a call sampled. A call
    sampled out that continues a caller's trace runs in that trace's context, so its log
    lines carry the caller's trace id and the work it starts (statements, architect jobs)
    stays sampled out with it; one with no caller's trace costs the sampler's answer alone.
    With no SDK provider (tracing never started) it hands every call through untouched.

    The call's status code is put on the span by :class:`SpanStatusObserver`, which sees the
    code every call really ends with (the access interceptor runs inside this one).
    """

    def __init__(self, tracer_provider: trace.TracerProvider):
        self._tracer = tracer_provider.get_tracer("simconfig.rpc")
        self._enabled = isinstance(tracer_provider, TracerProvider)
        # Asking the sampler before making a span needs the span to get the trace id asked
        # with: only a provider made by new_tracer_provider can be told it.
        self._ids: _PresetTraceIds | None = None
        self._sampler: Sampler | None = None
        if isinstance(tracer_provider, TracerProvider) and isinstance(
            tracer_provider.id_generator, _PresetTraceIds
        ):
            self._ids = tracer_provider.id_generator
            self._sampler = tracer_provider.sampler
        self._handlers = HandlerCache(self._traced)

    def intercept_service(self, continuation, handler_call_details):
        """Wraps the call's behaviour in a span, unless tracing is off or the call untraced."""
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not self._enabled or method.startswith(_UNTRACED_PREFIXES):
            return handler
        return self._handlers.get(method, handler)

    def _traced(self, method: str, handler):
        """``handler`` in a span; the call's metadata is read when it runs, so once per method."""
        if handler.unary_unary:
            traced = handler._replace(unary_unary=self._unary(handler.unary_unary, method))
        elif handler.stream_unary:
            traced = handler._replace(stream_unary=self._unary(handler.stream_unary, method))
        elif handler.unary_stream:
            traced = handler._replace(unary_stream=self._stream(handler.unary_stream, method))
        else:
            traced = handler._replace(stream_stream=self._stream(handler.stream_stream, method))
        # The tenant interceptor may have tagged the behaviour with its lane; the wrapper
        # keeps it.
        return carry_lane(handler, traced)

    def _unary(self, behavior, method: str):
        def run(request, context):
            span, token = self._open(method, context.invocation_metadata(), context)
            try:
                return behavior(request, context)
            except Exception as error:
                _record(span, error)
                raise
            finally:
                if token is not None:
                    detach(token)
                if span is not None:
                    span.end()

        return run

    def _stream(self, behavior, method: str):
        def run(request, context):
            span, token = self._open(method, context.invocation_metadata(), context)
            try:
                yield from behavior(request, context)
            except Exception as error:
                _record(span, error)
                raise
            finally:
                if token is not None:
                    detach(token)
                if span is not None:
                    span.end()

        return run

    def _open(self, method: str, metadata, context):
        """The call's span (None when not sampled) and the context token to detach (or None)."""
        caller = _caller_context(metadata)
        if self._ids is not None and self._sampler is not None:
            if caller is None:
                trace_id = self._ids.generate_trace_id()
            else:
                trace_id = trace.get_current_span(caller).get_span_context().trace_id
            sampled = self._sampler.should_sample(caller, trace_id, method, SpanKind.SERVER)
            if not sampled.decision.is_recording():
                return None, (None if caller is None else attach(caller))
            if caller is None:
                self._ids.preset(trace_id)
        span = self._tracer.start_span(method, context=caller, kind=SpanKind.SERVER)
        if span.is_recording():
            service, _, name = method[1:].partition("/")
            span.set_attributes(
                {
                    "rpc.system": "grpc",
                    "rpc.service": service,
                    "rpc.method": name,
                    # Until SpanStatusObserver records how the call really ended.
                    "rpc.grpc.status_code": 0,
                    **_peer_attributes(context.peer()),
                }
            )
        return span, attach(trace.set_span_in_context(span))


def _caller_context(metadata):
    """The caller's trace from its ``traceparent`` metadata, or None (a new trace).

    A malformed ``traceparent`` names no trace: the call starts one of its own.
    """
    carrier = None
    for key, value in metadata or ():
        if key in _TRACE_HEADERS:
            if carrier is None:
                carrier = {}
            carrier[key] = value
    if carrier is None or "traceparent" not in carrier:
        return None
    context = _w3c.extract(carrier)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def _peer_attributes(peer: str) -> dict[str, str]:
    """``ipv4:10.0.0.7:51234`` or ``ipv6:[::1]:51234`` as ``net.peer.ip`` and ``net.peer.port``."""
    family, _, address = peer.partition(":")
    if family not in ("ipv4", "ipv6"):
        return {}
    ip, _, port = address.rpartition(":")
    return {"net.peer.ip": ip.strip("[]"), "net.peer.port": port}


def _record(span: trace.Span | None, error: Exception) -> None:
    # abort() raises a bare Exception after setting the code, which the observer records.
    if span is not None and span.is_recording() and type(error) is not Exception:
        span.record_exception(error)


class SpanStatusObserver:
    """Puts each call's final gRPC code on its span (errors sent with rich details too)."""

    def started(self, method: str) -> None:
        """Nothing to do at the start: the span is already open."""

    def handled(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Records ``code`` on the current span; anything but OK marks it as an error."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code is not grpc.StatusCode.OK:
            span.set_status(Status(StatusCode.ERROR, code.name))
