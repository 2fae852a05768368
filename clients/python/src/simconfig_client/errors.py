"""Failed calls as Python exceptions, with the server's rich error details decoded.

The server answers per AIP-193: a status code, a message, and ``google.rpc`` details in the
``grpc-status-details-bin`` trailer: always an ``ErrorInfo`` (``reason``, ``domain``,
``metadata``), a ``BadRequest`` listing every field violation for ``INVALID_ARGUMENT``, a
``PreconditionFailure`` for ``FAILED_PRECONDITION`` and ``ABORTED``. Each status code has its
own exception class, so callers catch ``errors.NotFound`` rather than compare codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: its path (``config.agents[3].id``) and what is wrong."""

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One failed precondition: its type (``ETAG``, ``STATUS``), subject and description."""

    type: str
    subject: str
    description: str


class SimconfigError(Exception):
    """A call that ended with a status other than OK.

    ``code`` is the gRPC status, ``reason`` and ``domain`` come from the ``ErrorInfo``
    (``reason`` is the stable, machine-readable name of the failure), ``field_violations`` from
    the ``BadRequest`` and ``precondition_violations`` from the ``PreconditionFailure``.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        reason: str = "",
        domain: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        precondition_violations: tuple[PreconditionViolation, ...] = (),
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.reason = reason
        self.domain = domain
        self.metadata = dict(metadata or {})
        self.field_violations = tuple(field_violations)
        self.precondition_violations = tuple(precondition_violations)

    @property
    def fields(self) -> list[str]:
        """The paths of the field violations, in the server's order."""
        return [violation.field for violation in self.field_violations]

    def __str__(self) -> str:
        text = f"{self.code.name}: {self.message}"
        if self.reason:
            text += f" [{self.reason}]"
        for violation in self.field_violations:
            text += f"\n  {violation.field}: {violation.description}"
        return text


class InvalidArgument(SimconfigError):
    """``INVALID_ARGUMENT``: the request is wrong; ``field_violations`` says where."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(SimconfigError):
    """``NOT_FOUND``: no such resource for this tenant."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SimconfigError):
    """``ALREADY_EXISTS``: a unique value (a scenario's display name) is taken."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(SimconfigError):
    """``ABORTED``: the etag sent is stale; read the resource again and retry the change."""

    code = grpc.StatusCode.ABORTED


class FailedPrecondition(SimconfigError):
    """``FAILED_PRECONDITION``: the resource is in the wrong state for this call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(SimconfigError):
    """``UNAUTHENTICATED``: the API key is missing, unknown or revoked."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SimconfigError):
    """``PERMISSION_DENIED``: a read-only key called a mutating RPC."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unavailable(SimconfigError):
    """``UNAVAILABLE``: the server or its database is unreachable after the retries."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SimconfigError):
    """``DEADLINE_EXCEEDED``: the call did not finish within its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(SimconfigError):
    """``RESOURCE_EXHAUSTED``: a message or a quota is over its limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unimplemented(SimconfigError):
    """``UNIMPLEMENTED``: the server does not offer this RPC."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(SimconfigError):
    """``INTERNAL``: a server bug; ``metadata["request_id"]`` identifies it in the logs."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[SimconfigError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        Aborted,
        FailedPrecondition,
        Unauthenticated,
        PermissionDenied,
        Unavailable,
        DeadlineExceeded,
        ResourceExhausted,
        Unimplemented,
        Internal,
    )
}


@dataclass
class _Details:
    reason: str = ""
    domain: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)
    precondition_violations: list[PreconditionViolation] = field(default_factory=list)


def _decode(trailing_metadata) -> _Details:
    details = _Details()
    for key, value in trailing_metadata or ():
        if key != _DETAILS_KEY:
            continue
        status = status_pb2.Status.FromString(value)
        for packed in status.details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                details.reason, details.domain = info.reason, info.domain
                details.metadata = dict(info.metadata)
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                packed.Unpack(bad_request)
                details.field_violations += [
                    FieldViolation(v.field, v.description) for v in bad_request.field_violations
                ]
            elif packed.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
                failure = error_details_pb2.PreconditionFailure()
                packed.Unpack(failure)
                details.precondition_violations += [
                    PreconditionViolation(v.type, v.subject, v.description)
                    for v in failure.violations
                ]
    return details


def from_rpc_error(error: grpc.RpcError) -> SimconfigError:
    """The exception for a failed call, its rich details decoded from the trailers."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = error.details() if hasattr(error, "details") else str(error)
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else ()
    details = _decode(trailing)
    return _BY_CODE.get(code, SimconfigError)(
        message or "",
        code=code,
        reason=details.reason,
        domain=details.domain,
        metadata=details.metadata,
        field_violations=tuple(details.field_violations),
        precondition_violations=tuple(details.precondition_violations),
    )
