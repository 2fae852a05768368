"""Shared test helpers: a grpcio-testing harness and rich-status decoding."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import grpc_testing
from google.rpc import error_details_pb2, status_pb2
from grpc_testing._server import _rpc as _testing_rpc

from service.auth import Principal


def _abort_keeping_trailing_metadata(self, code, details):
    # grpcio-testing drops the trailing metadata set before context.abort(),
    # where a real server sends it; rich error details travel there, so keep them.
    trailing = self._pending_trailing_metadata or ()
    self._terminate(trailing, code, details)


_testing_rpc.Rpc._abort = _abort_keeping_trailing_metadata


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

    grpcio-testing runs no interceptors, so the principal is picked from the
    ``x-api-key`` metadata by a resolver handed to the servicer.
    """

    def __init__(self, service_descriptors_to_servicers: dict):
        self._server = grpc_testing.server_from_dictionary(
            service_descriptors_to_servicers, grpc_testing.strict_real_time()
        )
        self._methods = {
            method.name: method
            for descriptor in service_descriptors_to_servicers
            for method in descriptor.methods
        }

    def call(self, method: str, request, principal: Principal) -> Outcome:
        rpc = self._server.invoke_unary_unary(
            self._methods[method], (("x-api-key", principal.key_id),), request, 10
        )
        response, trailing, code, details = rpc.termination()
        return Outcome(response, code, details, rich_status(trailing))


class PrincipalDirectory:
    """Maps the key id sent as ``x-api-key`` back to a principal (for grpcio-testing)."""

    def __init__(self):
        self._by_key: dict[str, Principal] = {}

    def add(self, principal: Principal) -> Principal:
        self._by_key[principal.key_id] = principal
        return principal

    def __call__(self, context) -> Principal:
        metadata = dict(context.invocation_metadata())
        return self._by_key[metadata["x-api-key"]]
