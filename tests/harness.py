"""Shared test helpers: a grpcio-testing harness and rich-status decoding."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
import grpc_testing
from google.rpc import error_details_pb2, status_pb2

from service.api.error_status import status_for
from service.api.interceptors import calling_as
from service.app.authentication import Principal


def rich_status(trailing_metadata) -> status_pb2.Status | None:
    """The ``google.rpc.Status`` carried in ``grpc-status-details-bin``, if any."""
    for key, value in trailing_metadata or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def detail(status: status_pb2.Status, message_type):
    """The first detail of ``message_type`` in ``status`` (None when absent)."""
    for packed in status.details:
        if packed.Is(message_type.DESCRIPTOR):
            message = message_type()
            packed.Unpack(message)
            return message
    return None


def field_violations(status: status_pb2.Status) -> list[str]:
    """The field paths of the ``BadRequest`` in ``status``."""
    bad_request = detail(status, error_details_pb2.BadRequest)
    return [v.field for v in bad_request.field_violations] if bad_request else []


@dataclass
class Outcome:
    """What a unary call ended with."""

    response: object
    code: grpc.StatusCode
    details: str
    status: status_pb2.Status | None

    @property
    def ok(self) -> bool:
        return self.code == grpc.StatusCode.OK

    @property
    def violations(self) -> list[str]:
        return field_violations(self.status) if self.status else []

    @property
    def reason(self) -> str:
        info = detail(self.status, error_details_pb2.ErrorInfo) if self.status else None
        return info.reason if info else ""


class ServicerHarness:
    """Calls servicers through grpcio-testing as a given principal.

    grpcio-testing runs no interceptors, so the harness does their two jobs itself, around
    each servicer method: it makes the caller's principal the current one (as the tenant
    interceptor does, with the same :func:`calling_as`), and it turns what the method raised
    into the status the error interceptor would send (:func:`status_for`). What the servicers
    translate is tested here; the interceptors themselves are tested on a real server.
    """

    def __init__(self, service_descriptors_to_servicers: dict):
        self._raised: list[BaseException] = []
        self._server = grpc_testing.server_from_dictionary(
            {
                descriptor: _Calling(servicer, self._raised)
                for descriptor, servicer in service_descriptors_to_servicers.items()
            },
            grpc_testing.strict_real_time(),
        )
        self._methods = {
            method.name: method
            for descriptor in service_descriptors_to_servicers
            for method in descriptor.methods
        }
        self._lock = threading.Lock()

    def call(self, method: str, request, principal: Principal) -> Outcome:
        with self._lock:  # one call at a time: the raised exception is found by the call
            rpc = self._server.invoke_unary_unary(
                self._methods[method], _principal_metadata(principal), request, 10
            )
            response, trailing, code, details = rpc.termination()
            raised = self._raised.pop() if self._raised else None
        if raised is not None:
            status = status_for(raised)
            return Outcome(None, _code_of(status.code), status.message, status)
        return Outcome(response, code, details, rich_status(trailing))


_PRINCIPALS: dict[str, Principal] = {}


def _principal_metadata(principal: Principal) -> tuple:
    _PRINCIPALS[principal.key_id] = principal
    return (("x-api-key", principal.key_id),)


def _code_of(value: int) -> grpc.StatusCode:
    return next(code for code in grpc.StatusCode if code.value[0] == value)


class _Calling:
    """A servicer whose methods run as the principal named in the call's metadata."""

    def __init__(self, servicer, raised: list[BaseException]):
        self._servicer = servicer
        self._raised = raised

    def __getattr__(self, name: str):
        method = getattr(self._servicer, name)

        def run(request, context):
            principal = _PRINCIPALS[dict(context.invocation_metadata())["x-api-key"]]
            try:
                with calling_as(principal):
                    return method(request, context)
            except Exception as exc:  # noqa: BLE001 - reported as the error interceptor would
                self._raised.append(exc)
                context.abort(grpc.StatusCode.UNKNOWN, "raised; see the harness")

        return run


@dataclass
class Raised:
    """What a :func:`raises_status` block raised, and the status the client gets for it."""

    value: BaseException | None = None
    status: status_pb2.Status | None = None


@contextmanager
def raises_status(code: grpc.StatusCode) -> Iterator[Raised]:
    """The block must raise what the API edge answers with ``code`` (as :func:`status_for` maps it).

    Use cases raise domain errors and leave storage errors (a missing row, a taken name) to the
    edge; either way the client sees one status, and that is what is asserted.
    """
    raised = Raised()
    try:
        yield raised
    except Exception as exc:  # noqa: BLE001 - mapped below, as the error interceptor would
        raised.value, raised.status = exc, status_for(exc)
        assert raised.status.code == code.value[0], (
            f"{exc!r} answers {raised.status.code}, not {code.name}"
        )
        return
    raise AssertionError(f"nothing raised; expected {code.name}")
