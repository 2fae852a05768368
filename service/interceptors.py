"""The tenant interceptor: every call but health and reflection needs a key.

It resolves ``x-api-key`` to a :class:`~service.auth.Principal` once per call and
hands it to the servicer through a context variable that lives exactly as long
as the handler runs on its worker thread.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

import grpc

from service import errors
from service.auth import Authenticator, Principal
from service.status import abort_with

log = logging.getLogger(__name__)

API_KEY_METADATA = "x-api-key"

# Services any caller may use without a key.
OPEN_SERVICES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

# Methods a read-scoped key may call; every other method mutates.
READ_ONLY_METHODS = frozenset(
    {
        "/simulation.v1.ScenarioService/GetScenario",
        "/simulation.v1.ScenarioService/ListScenarios",
        "/simulation.v1.ConfigService/GetConfig",
        "/simulation.v1.ConfigService/ValidateConfig",
        "/simulation.v1.ConfigService/ListConfigRevisions",
        "/simulation.v1.SimulationService/GetSimulation",
        "/simulation.v1.SimulationService/ListSimulations",
        "/simulation.v1.SimulationService/ListSimulationEvents",
    }
)

_current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "simconfig_principal", default=None
)


# How a servicer learns who is calling: the interceptor's principal in production, a lookup
# table in servicer tests (grpcio-testing runs no interceptors).
PrincipalResolver = Callable[[grpc.ServicerContext], Principal]


def current_principal(context: grpc.ServicerContext) -> Principal:
    """The principal the tenant interceptor resolved for the running call."""
    principal = _current_principal.get()
    if principal is None:
        # Reaching a handler without the interceptor is a wiring bug; refuse
        # rather than serve data without a tenant.
        raise errors.Unauthenticated("no authenticated principal for this call")
    return principal


def _metadata_values(details: grpc.HandlerCallDetails, name: str) -> list[str]:
    return [value for key, value in details.invocation_metadata or () if key == name]


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
    """Authenticates every call and enforces key scope."""

    def __init__(self, authenticator: Authenticator):
        self._authenticator = authenticator

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        handler = continuation(handler_call_details)
        if handler is None or method.startswith(OPEN_SERVICES):
            return handler
        keys = _metadata_values(handler_call_details, API_KEY_METADATA)
        return _wrap(handler, lambda: self._authorize(method, keys))

    def _authorize(self, method: str, keys: list[str]) -> Principal:
        if len(keys) > 1:
            # Which one would win is an accident of ordering: refuse to guess.
            raise errors.Unauthenticated("send exactly one x-api-key metadata entry")
        principal = self._authenticator.authenticate(keys[0] if keys else None)
        if method not in READ_ONLY_METHODS and not principal.can_write:
            raise errors.PermissionDenied(f"a read-only API key cannot call {method}")
        return principal


def _wrap(handler: grpc.RpcMethodHandler, authorize: Callable[[], Principal]):
    """Returns ``handler`` with its behaviour run under the authorised principal."""

    def guard(behavior):
        def run(request_or_iterator, context):
            try:
                principal = authorize()
                if isinstance(request_or_iterator, _Undecodable):
                    raise errors.InvalidArgument.field(
                        "request",
                        "is not a valid message: strings must be UTF-8 and Structs at most "
                        "about 30 levels deep",
                        reason="REQUEST_UNDECODABLE",
                    )
            except Exception as exc:  # noqa: BLE001 - mapped to a status in one place
                abort_with(context, exc)
            token = _current_principal.set(principal)
            try:
                return behavior(request_or_iterator, context)
            finally:
                _current_principal.reset(token)

        return run

    handler = handler._replace(request_deserializer=_tolerant(handler.request_deserializer))
    if handler.unary_unary:
        return handler._replace(unary_unary=guard(handler.unary_unary))
    if handler.unary_stream:
        return handler._replace(unary_stream=guard(handler.unary_stream))
    if handler.stream_unary:
        return handler._replace(stream_unary=guard(handler.stream_unary))
    return handler._replace(stream_stream=guard(handler.stream_stream))
