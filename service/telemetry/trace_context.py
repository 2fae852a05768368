"""W3C trace context kept with durable work, so work run later joins the trace that asked for it.

A call that queues an architect job stores the ``traceparent`` of its span on the job row; the
worker that runs the job, in any process or replica and however much later, opens the job's span
as a child of that call's span. Only OpenTelemetry's API is used here (no SDK): with tracing off
there is never a valid span, so nothing is stored and the job's span is a no-op.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_TRACEPARENT = "traceparent"
_propagator = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the active span, or None when no span is active."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def context_from_traceparent(traceparent: str | None) -> Context | None:
    """A context whose (remote) span is the one ``traceparent`` names; None if it names none.

    A malformed value (the column is plain text) yields None: the work gets a trace of its own.
    """
    if not traceparent:
        return None
    context = _propagator.extract({_TRACEPARENT: traceparent})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context
