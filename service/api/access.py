"""The access interceptor: one request id, one access log line and the call metrics per call.

It runs outside the other interceptors, so it sees the status a call really ended with
(including refusals by :class:`~service.api.interceptors.TenantInterceptor`). The request id is
the caller's ``x-request-id`` metadata when it is a sane token (the gateway sends one), else a
new one; it goes back in the response's initial metadata and onto every log line of the call.
The line names who called (tenant and key id, never the key) and never holds a message body.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import grpc

from service.api.fair_executor import carry_lane
from service.api.handler_cache import HandlerCache
from service.app.authentication import Principal
from service.telemetry.logs import current_request_id

REQUEST_ID_METADATA = "x-request-id"
# A caller's request id is logged and echoed: only short, plain tokens are taken as they are.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

access_log = logging.getLogger("simconfig.access")
# Asked every few seconds by every gateway and orchestrator: counted in the metrics, but an
# access line each would bury the calls that matter.
UNLOGGED_PREFIXES = ("/grpc.health.v1.Health/",)


class CallObserver(Protocol):
    """Receives the start and end of every call (the Prometheus metrics implement it)."""

    def started(self, method: str) -> None:
        """A call of ``method`` (``/package.Service/Method``) began."""

    def handled(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """A call of ``method`` ended with ``code`` after ``seconds``."""


@dataclass
class CallRecord:
    """What the access line says about the running call; the interceptors fill in the caller."""

    request_id: str
    tenant_id: str = ""
    key_id: str = ""


_current_call: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "simconfig_call", default=None
)


def note_principal(principal: Principal) -> None:
    """Records who the running call was authenticated as, for its access line."""
    call = _current_call.get()
    if call is not None:
        call.tenant_id = principal.tenant_id
        call.key_id = principal.key_id


def response_headers() -> tuple[tuple[str, str], ...]:
    """The headers a streaming handler sends when it opens its stream: the call's request id.

    A unary call's headers go out when it starts; a stream's wait for its handler, which
    decides when the stream counts as open (WatchEvents: once it is subscribed).
    """
    call = _current_call.get()
    return () if call is None else ((REQUEST_ID_METADATA, call.request_id),)


def request_id_from(metadata) -> str:
    """The caller's ``x-request-id`` if it is a short plain token, else a new id."""
    for key, value in metadata or ():
        if key == REQUEST_ID_METADATA and isinstance(value, str):
            if _SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    return uuid.uuid4().hex


class AccessInterceptor(grpc.ServerInterceptor):
    """Gives each call a request id, logs one access line and reports it to ``observers``."""

    def __init__(self, observers: tuple[CallObserver, ...] = ()):
        self._observers = observers
        # What it needs of a call (its metadata) it reads as the call runs: one wrapping per
        # method does for every call.
        self._handlers = HandlerCache(
            lambda method, handler: carry_lane(handler, self._wrap(handler, method))
        )

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._handlers.get(handler_call_details.method, handler)

    def _wrap(self, handler, method: str):
        if handler.unary_unary:
            return handler._replace(unary_unary=self._observed(handler.unary_unary, method))
        if handler.stream_unary:
            return handler._replace(stream_unary=self._observed(handler.stream_unary, method))
        if handler.unary_stream:
            return handler._replace(
                unary_stream=self._observed_stream(handler.unary_stream, method)
            )
        return handler._replace(stream_stream=self._observed_stream(handler.stream_stream, method))

    def _observed(self, behavior, method: str):
        def run(request, context):
            call, tokens, started = self._begin(method, context)
            failed = True
            try:
                response = behavior(request, context)
                failed = False
                return response
            finally:
                self._end(method, call, context, started, tokens, failed)

        return run

    def _observed_stream(self, behavior, method: str):
        def run(request, context):
            call, tokens, started = self._begin(method, context, headers=False)
            failed = True
            try:
                first = True
                for response in behavior(request, context):
                    if first:
                        first = False
                        # Unless the handler sent its headers already (response_headers()).
                        with contextlib.suppress(ValueError):
                            context.send_initial_metadata(response_headers())
                    yield response
                failed = False
            finally:
                self._end(method, call, context, started, tokens, failed)

        return run

    def _begin(self, method: str, context, *, headers: bool = True):
        started = time.perf_counter()
        call = CallRecord(request_id=request_id_from(context.invocation_metadata()))
        tokens = (_current_call.set(call), current_request_id.set(call.request_id))
        if headers:
            context.send_initial_metadata(((REQUEST_ID_METADATA, call.request_id),))
        for observer in self._observers:
            observer.started(method)
        return call, tokens, started

    def _end(self, method: str, call: CallRecord, context, started: float, tokens, failed):
        seconds = time.perf_counter() - started
        # Set by abort()/set_code(); unset, a handler that returned answered OK and one that
        # raised (which the error interceptor prevents) is answered UNKNOWN by gRPC.
        code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
        try:
            for observer in self._observers:
                observer.handled(method, code, seconds)
            # Checked first: with the line off, not even its fields are gathered.
            if access_log.isEnabledFor(logging.INFO) and not method.startswith(UNLOGGED_PREFIXES):
                fields = {
                    "method": method,
                    "grpc_code": code.name,
                    "duration_ms": round(seconds * 1000, 3),
                    "tenant_id": call.tenant_id,
                    "key_id": call.key_id,
                    "peer": context.peer(),
                }
                # Made here rather than by access_log.info(), which would walk the stack for
                # the caller's file and line: no format prints them, and this is every call.
                access_log.handle(
                    access_log.makeRecord(
                        access_log.name,
                        logging.INFO,
                        __file__,
                        0,
                        "%s %s",
                        (method, code.name),
                        None,
                        extra=fields,
                    )
                )
        finally:
            _current_call.reset(tokens[0])
            current_request_id.reset(tokens[1])
