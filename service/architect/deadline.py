"""Lets a blocking use case see the deadline of the gRPC call it runs in.

``wait: true`` on CreateSimulation and RunArchitect must give up before the caller's deadline, but
the servicers hand the use case only the request. This interceptor publishes the running call's
``time_remaining`` in a context variable for exactly as long as the handler runs on its thread.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import grpc

_time_remaining: contextvars.ContextVar[Callable[[], float | None] | None] = contextvars.ContextVar(
    "simconfig_time_remaining", default=None
)


def call_time_remaining() -> float | None:
    """Seconds left before the running call's deadline; None outside a call."""
    remaining = _time_remaining.get()
    return None if remaining is None else remaining()


class CallDeadlineInterceptor(grpc.ServerInterceptor):
    """Publishes ``context.time_remaining`` to the handlers of ``methods`` (unary ones)."""

    def __init__(self, methods: frozenset[str]):
        self._methods = methods

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if (
            handler is None
            or handler.unary_unary is None
            or handler_call_details.method not in self._methods
        ):
            return handler
        behavior = handler.unary_unary

        def run(request, context):
            token = _time_remaining.set(context.time_remaining)
            try:
                return behavior(request, context)
            finally:
                _time_remaining.reset(token)

        return handler._replace(unary_unary=run)


WAITING_METHODS = frozenset(
    {
        "/simulation.v1.SimulationService/CreateSimulation",
        "/simulation.v1.ConfigService/RunArchitect",
    }
)
