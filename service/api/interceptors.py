"""The two server interceptors: who is calling, and what a failure looks like.

:class:`TenantInterceptor` resolves ``x-api-key`` to a
:class:`~service.app.authentication.Principal` once per call, before the request is read, and
binds it for exactly as long as the handler runs (:func:`current_principal`).
:class:`ErrorInterceptor` is the one place where whatever a handler raises becomes a gRPC
status with rich details (:mod:`service.api.error_status`); handlers themselves only raise.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf.message import Message

from service.api.access import note_principal
from service.api.error_status import abort_with, is_abort
from service.api.fair_executor import KEY_LOOKUP_LANE, enter_lane, in_lane
from service.api.handler_cache import HandlerCache
from service.api.storable_values import unstorable_values
from service.api.tenant_limits import TenantLimits
from service.app.authentication import Authenticator, Principal
from service.domain import errors
from storage.deadlines import bounded_by
from storage.tenancy import acting_for

log = logging.getLogger(__name__)

API_KEY_METADATA = "x-api-key"

# Services any caller may use without a key.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

_current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "simconfig_principal", default=None
)
# The principal a call was admitted as from memory, set by the tenant interceptor while gRPC
# looks up the call's handler. gRPC does that look-up and runs the handler in one
# contextvars.Context of the call's own, so the handler finds it there: one handler per method
# serves every caller.
_admitted: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "simconfig_admitted", default=None
)


def current_principal() -> Principal:
    """The principal the running call was authenticated as."""
    principal = _current_principal.get()
    if principal is None:
        # Reaching a handler without the interceptor is a wiring bug; refuse
        # rather than serve data without a tenant.
        raise errors.Unauthenticated("no authenticated principal for this call")
    return principal


def in_a_call() -> bool:
    """True on a thread serving an authenticated call (False in background work)."""
    return _current_principal.get() is not None


@contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    """Makes ``principal`` the current one on this thread until the block ends.

    Its tenant is bound for the storage layer too: on PostgreSQL the block's database work
    runs under row-level security for that tenant (:mod:`storage.tenancy`), a second wall
    behind every query's own tenant filter.
    """
    note_principal(principal)
    token = _current_principal.set(principal)
    try:
        with acting_for(principal.tenant_id):
            yield
    finally:
        _current_principal.reset(token)


def _metadata_values(details: grpc.HandlerCallDetails, name: str) -> list[str]:
    # Metadata keys not ending in "-bin" carry str values.
    return [
        value
        for key, value in details.invocation_metadata or ()
        if key == name and isinstance(value, str)
    ]


class _Undecodable:
    """Stands in for a request whose bytes did not parse, so the handler can refuse it.

    gRPC would otherwise answer ``INTERNAL`` ("Exception deserializing request!") for what
    is the client's mistake: invalid UTF-8 in a string, or a Struct nested too deeply.
    """

    def __init__(self, error: Exception):
        self.error = error


def _tolerant(deserializer):
    if deserializer is None:
        return None

    def deserialize(data: bytes):
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the client's bad bytes
            return _Undecodable(exc)

    return deserialize


class TenantInterceptor(grpc.ServerInterceptor):
    """Authenticates every call and enforces key scope, before the request is read.

    ``intercept_service`` runs on gRPC's polling thread, so it decides only from memory: a
    key known to be good binds the call to its principal; a missing, malformed, unknown or
    revoked key is refused at once. A key not in memory is looked up on the call's worker
    thread, still before the request is read. A refused call never reads or parses its
    request, so unauthenticated callers cannot make the server hold their bodies.

    With ``limits``, a tenant's call past its concurrency or rate limit is refused here too;
    an admitted call is queued in its tenant's lane of the RPC executor
    (:mod:`service.api.fair_executor`).

    An admitted call's principal and lane are put in the call's own context, where its handler
    and the executor find them, so every caller of a method shares one wrapped handler.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        read_only_methods: frozenset[str],
        limits: TenantLimits | None = None,
    ):
        self._authenticator = authenticator
        # A read-scoped key may call these; every other method writes.
        self._read_only = read_only_methods
        self._limits = limits
        self._handlers = HandlerCache(lambda _method, handler: _bound(handler))

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        keys = _metadata_values(handler_call_details, API_KEY_METADATA)
        try:
            if len(keys) > 1:
                # Which one would win is an accident of ordering: refuse to guess.
                raise errors.Unauthenticated("send exactly one x-api-key metadata entry")
            principal = self._authenticator.authenticate_from_memory(keys[0] if keys else None)
            if principal is None:
                return _authenticating(handler, lambda: self._authorize(method, keys[0]), _tolerant)
            self._check_scope(method, principal)
            self._admit(principal)
        except errors.ServiceError as exc:
            return _refusing(handler, exc)
        _admitted.set(principal)
        enter_lane(principal.tenant_id)
        return self._handlers.get(method, handler)

    def _authorize(self, method: str, key: str) -> Principal:
        principal = self._authenticator.authenticate(key)
        self._check_scope(method, principal)
        self._admit(principal)
        return principal

    def _admit(self, principal: Principal) -> None:
        if self._limits is not None:
            self._limits.admit(principal.tenant_id)

    def _check_scope(self, method: str, principal: Principal) -> None:
        if method not in self._read_only and not principal.can_write:
            raise errors.PermissionDenied(f"a read-only API key cannot call {method}")


def _refuse_bad_request(request) -> None:
    """Refuses a request that did not parse, or that holds values no database can store."""
    if isinstance(request, _Undecodable):
        raise errors.InvalidArgument.field(
            "request",
            "is not a valid message: strings must be UTF-8 and Structs at most "
            "about 30 levels deep",
            reason="REQUEST_UNDECODABLE",
        )
    # Checked here, once for every RPC, so no field can carry a NUL to the database.
    violations = unstorable_values(request) if isinstance(request, Message) else []
    if violations:
        raise errors.InvalidArgument(violations, reason="VALUE_NOT_STORABLE")


def _run_as(principal: Principal, behavior, request, context, streaming: bool):
    """Runs ``behavior`` with ``principal`` as the current one (for a stream: while it yields)."""
    if streaming:
        return _stream_as(principal, behavior, request, context)
    # The call's deadline bounds its database work, retries included.
    with calling_as(principal), bounded_by(context.time_remaining()):
        return behavior(request, context)


def _stream_as(principal: Principal, behavior, request, context):
    # gRPC pulls the responses on the call's own worker thread, after the handler returned.
    with calling_as(principal), bounded_by(context.time_remaining()):
        yield from behavior(request, context)


def _bound(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """``handler`` run as the principal the call was admitted as (from the call's context)."""
    streaming = handler.response_streaming

    def guard(behavior):
        def run(request, context):
            principal = _admitted.get()
            try:
                if principal is None:
                    # Only a call the interceptor admitted gets here; anything else is a
                    # wiring bug, refused rather than served without a tenant.
                    raise errors.Unauthenticated("no authenticated principal for this call")
                _refuse_bad_request(request)
            except errors.ServiceError as exc:
                abort_with(context, exc)
            return _run_as(principal, behavior, request, context, streaming)

        return run

    return _wrapped(handler, guard, _tolerant(handler.request_deserializer))


def _wrapped(
    handler: grpc.RpcMethodHandler,
    wrap: Callable[[Callable], Callable],
    request_deserializer: Callable[[bytes], Any] | None,
) -> grpc.RpcMethodHandler:
    """``handler`` with its behaviour passed through ``wrap`` and the given deserializer.

    Rebuilt through grpc's public factories, which make the same kind of handler.
    """
    serializer = handler.response_serializer
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary), request_deserializer, serializer
        )
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream), request_deserializer, serializer
        )
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(
            wrap(handler.stream_unary), request_deserializer, serializer
        )
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(
            wrap(handler.stream_stream), request_deserializer, serializer
        )
    raise TypeError("a method handler without a behaviour")


def _refusing(handler: grpc.RpcMethodHandler, exc: errors.ServiceError) -> grpc.RpcMethodHandler:
    """A handler that ends the call with ``exc`` without reading the request."""

    def refuse(_request_iterator, context):
        abort_with(context, exc)

    # A request-streaming handler is started before any message arrives, and this one never
    # asks for one: the body is neither buffered nor parsed.
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(
            refuse, response_serializer=handler.response_serializer
        )
    return grpc.stream_unary_rpc_method_handler(
        refuse, response_serializer=handler.response_serializer
    )


def _authenticating(handler: grpc.RpcMethodHandler, authorize, tolerant):
    """``handler`` preceded by ``authorize()`` on the worker thread, before the request is read."""
    deserialize = tolerant(handler.request_deserializer)

    def requests(request_iterator):
        for raw in request_iterator:
            yield deserialize(raw) if deserialize else raw

    def single_request(request_iterator):
        for request in requests(request_iterator):
            return request
        raise errors.InvalidArgument.field("request", "is missing", reason="REQUEST_MISSING")

    def prepare(request_iterator, context, unary_request: bool):
        try:
            principal = authorize()
            request = (
                single_request(request_iterator) if unary_request else requests(request_iterator)
            )
            if unary_request:
                _refuse_bad_request(request)
        except Exception as exc:  # noqa: BLE001 - mapped to a status in one place
            abort_with(context, exc)
        return principal, request

    def call(behavior, unary_request: bool):
        def run(request_iterator, context):
            principal, request = prepare(request_iterator, context, unary_request)
            return _run_as(principal, behavior, request, context, handler.response_streaming)

        return in_lane(run, KEY_LOOKUP_LANE)

    if handler.unary_unary:
        behavior, streaming_response = call(handler.unary_unary, True), False
    elif handler.unary_stream:
        behavior, streaming_response = call(handler.unary_stream, True), True
    elif handler.stream_unary:
        behavior, streaming_response = call(handler.stream_unary, False), False
    else:
        behavior, streaming_response = call(handler.stream_stream, False), True
    if streaming_response:
        return grpc.stream_stream_rpc_method_handler(
            behavior, response_serializer=handler.response_serializer
        )
    return grpc.stream_unary_rpc_method_handler(
        behavior, response_serializer=handler.response_serializer
    )


class ErrorInterceptor(grpc.ServerInterceptor):
    """Turns whatever a handler raises into the gRPC status :func:`status_for` gives it.

    Domain and storage errors get their codes and rich details; anything else is INTERNAL
    with a request id, its cause logged and never sent.
    """

    def __init__(self) -> None:
        self._handlers = HandlerCache(lambda _method, handler: _mapping_errors(handler))

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return self._handlers.get(handler_call_details.method, handler)


def _mapping_errors(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    wrap = _streaming if handler.response_streaming else _answering
    return _wrapped(handler, wrap, handler.request_deserializer)


def _answering(behavior: Callable) -> Callable:
    def run(request, context):
        try:
            return behavior(request, context)
        except Exception as exc:  # noqa: BLE001 - the one boundary that maps every error
            if is_abort(exc):
                raise
            abort_with(context, exc)

    return run


def _streaming(behavior: Callable) -> Callable:
    def run(request, context):
        try:
            yield from behavior(request, context)
        except Exception as exc:  # noqa: BLE001 - the one boundary that maps every error
            if is_abort(exc):
                raise
            abort_with(context, exc)

    return run
