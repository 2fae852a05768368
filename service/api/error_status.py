"""The one place where errors become gRPC statuses (AIP-193).

Domain errors (:mod:`service.domain.errors`) and storage errors (:mod:`storage.errors`)
map to a status code plus rich details: ``ErrorInfo`` always, ``BadRequest`` for
field violations, ``PreconditionFailure`` for state problems. Anything else is a
bug: it becomes ``INTERNAL`` with a request id, and the cause is logged, never
sent.
"""

from __future__ import annotations

import logging
import uuid
from typing import NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

import storage
from service.domain import errors
from service.telemetry.logs import current_request_id

log = logging.getLogger(__name__)

ERROR_DOMAIN = "simconfig.simulation.v1"

# Default gRPC clients refuse responses whose metadata exceeds 8 KiB, and the details travel
# base64-encoded (4/3 larger) in one trailer beside grpc-message: an error listing thousands of
# violations would reach the client as RESOURCE_EXHAUSTED instead of INVALID_ARGUMENT. So a
# BadRequest carries at most MAX_FIELD_VIOLATIONS entries and MAX_BAD_REQUEST_BYTES of them,
# then one entry counting the rest; long paths and descriptions are shortened.
MAX_FIELD_VIOLATIONS = 100
MAX_BAD_REQUEST_BYTES = 3_000
_MAX_FIELD_CHARS = 200
_MAX_DESCRIPTION_CHARS = 300
_MAX_MESSAGE_CHARS = 200


def _pack(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _status(code: int, message: str, reason: str, metadata=None, extra=()) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(
        reason=reason,
        domain=ERROR_DOMAIN,
        metadata={k: _shorten(str(v), _MAX_FIELD_CHARS) for k, v in (metadata or {}).items()},
    )
    return status_pb2.Status(
        code=code,
        message=_shorten(message, _MAX_MESSAGE_CHARS),
        details=[_pack(info), *(_pack(e) for e in extra)],
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bad_request_for(violations) -> error_details_pb2.BadRequest:
    """The ``BadRequest`` for ``violations``, small enough for any client to receive.

    The first violations are kept in order, up to :data:`MAX_FIELD_VIOLATIONS` and
    :data:`MAX_BAD_REQUEST_BYTES`; when some are left out, one last entry with the empty
    path says how many.
    """
    bad_request = error_details_pb2.BadRequest()
    kept = 0
    for violation in violations:
        entry = error_details_pb2.BadRequest.FieldViolation(
            field=_shorten(violation.field, _MAX_FIELD_CHARS),
            description=_shorten(violation.description, _MAX_DESCRIPTION_CHARS),
        )
        if kept == MAX_FIELD_VIOLATIONS or (
            bad_request.ByteSize() + entry.ByteSize() > MAX_BAD_REQUEST_BYTES
        ):
            break
        bad_request.field_violations.append(entry)
        kept += 1
    left_out = len(violations) - kept
    if left_out:
        bad_request.field_violations.append(
            error_details_pb2.BadRequest.FieldViolation(
                field="",
                description=f"{left_out} more violations not shown; fix these and retry",
            )
        )
    return bad_request


def status_for(exc: BaseException) -> status_pb2.Status:
    """Returns the ``google.rpc.Status`` a client sees for ``exc``."""
    if isinstance(exc, errors.InvalidArgument):
        return _status(
            code_pb2.INVALID_ARGUMENT,
            exc.message,
            exc.reason,
            exc.metadata,
            [bad_request_for(exc.violations)],
        )
    if isinstance(exc, errors.FailedPrecondition):
        extra = []
        if exc.violations:
            extra.append(
                error_details_pb2.PreconditionFailure(
                    violations=[
                        error_details_pb2.PreconditionFailure.Violation(
                            type=v.type, subject=v.subject, description=v.description
                        )
                        for v in exc.violations
                    ]
                )
            )
        return _status(code_pb2.FAILED_PRECONDITION, exc.message, exc.reason, exc.metadata, extra)
    if isinstance(exc, errors.EtagMismatch):
        failure = error_details_pb2.PreconditionFailure(
            violations=[
                error_details_pb2.PreconditionFailure.Violation(
                    type="ETAG",
                    subject=f"{exc.resource}/{exc.resource_id}",
                    description="the etag does not match the stored one",
                )
            ]
        )
        return _status(code_pb2.ABORTED, exc.message, exc.reason, exc.metadata, [failure])
    if isinstance(exc, errors.ResourceExhausted) and exc.retry_after is not None:
        # RetryInfo says when to come back, QuotaFailure which limit was hit.
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(max(1, round(exc.retry_after * 1e9)))
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=exc.subject, description=exc.description
                )
            ]
        )
        retry = error_details_pb2.RetryInfo(retry_delay=delay)
        return _status(
            code_pb2.RESOURCE_EXHAUSTED, exc.message, exc.reason, exc.metadata, [retry, quota]
        )
    simple: dict[type[errors.ServiceError], int] = {
        errors.NotFound: code_pb2.NOT_FOUND,
        errors.AlreadyExists: code_pb2.ALREADY_EXISTS,
        errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
        errors.PermissionDenied: code_pb2.PERMISSION_DENIED,
        errors.ServiceUnavailable: code_pb2.UNAVAILABLE,
        errors.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
        errors.NotImplementedYet: code_pb2.UNIMPLEMENTED,
    }
    for error_type, code in simple.items():
        if isinstance(exc, error_type):
            return _status(code, exc.message, exc.reason, exc.metadata)
    if isinstance(exc, storage.DeadlineExceeded):
        return _status(
            code_pb2.DEADLINE_EXCEEDED,
            "the call's deadline passed before its change was committed; nothing was applied",
            "DEADLINE_EXCEEDED",
        )
    if isinstance(exc, storage.CommitOutcomeUnknown):
        log.warning("commit outcome unknown: %s", exc)
        return _status(
            code_pb2.UNAVAILABLE,
            "the database connection was lost while committing, so the change may or may not "
            "have been applied; retry with the same request_id (or the same etag), which "
            "applies it at most once",
            "COMMIT_OUTCOME_UNKNOWN",
        )
    if isinstance(exc, storage.Unavailable):
        log.warning("database unavailable: %s", exc)
        return _status(
            code_pb2.UNAVAILABLE,
            "the database is unavailable; retry later",
            "DATABASE_UNAVAILABLE",
        )
    # Storage errors that reach this point were not translated by a use case:
    # still answer with the honest code rather than INTERNAL.
    if isinstance(exc, storage.NotFound):
        return status_for(errors.NotFound(exc.entity, exc.id))
    if isinstance(exc, storage.AlreadyExists):
        return status_for(errors.AlreadyExists(exc.entity, exc.field, exc.value))
    if isinstance(exc, storage.Conflict):
        return status_for(errors.EtagMismatch(exc.entity, exc.id))
    # The call's own request id (also on its access line), so a report finds its log lines.
    request_id = current_request_id.get() or uuid.uuid4().hex
    log.error("internal error, request_id=%s", request_id, exc_info=exc)
    info = error_details_pb2.RequestInfo(request_id=request_id)
    return _status(
        code_pb2.INTERNAL,
        f"internal error; quote request id {request_id} when reporting it",
        "INTERNAL",
        {"request_id": request_id},
        [info],
    )


def abort_with(context: grpc.ServicerContext, exc: BaseException) -> NoReturn:
    """Ends the call with the status for ``exc`` (rich details in trailing metadata)."""
    context.abort_with_status(rpc_status.to_status(status_for(exc)))


def is_abort(exc: BaseException) -> bool:
    """True for what ``context.abort()`` raises to unwind a handler: let it through."""
    return type(exc) is Exception and not exc.args
