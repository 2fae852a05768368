"""Domain errors raised by the use cases.

Each error says what went wrong in the API's terms; :mod:`service.api.error_status` is the
one place that turns them (and storage errors) into gRPC statuses with rich
details. Nothing here knows about gRPC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One bad request field: its path (``agents[3].id``, ``config.title``) and what is wrong.

    The one violation type: request checks, the config validator and the status mapping all
    speak it. A path may be empty for a problem with the whole config (its size).
    """

    field: str
    description: str


@dataclass(frozen=True)
class PreconditionViolation:
    """One unmet precondition: a type (``STATUS``), the subject and what is wrong."""

    type: str
    subject: str
    description: str


class ServiceError(Exception):
    """Base of every error a use case raises on purpose.

    ``reason`` is a stable UPPER_SNAKE_CASE code for ``google.rpc.ErrorInfo``;
    ``metadata`` adds structured context to it.
    """

    reason = "ERROR"

    def __init__(self, message: str, *, reason: str | None = None, metadata=None):
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(ServiceError):
    """The request is malformed; ``violations`` lists every bad field."""

    reason = "INVALID_ARGUMENT"

    def __init__(
        self,
        violations: Iterable[Violation],
        *,
        message: str | None = None,
        reason: str | None = None,
    ):
        self.violations = list(violations)
        if message is None:
            if len(self.violations) == 1:
                only = self.violations[0]
                message = f"invalid {only.field}: {only.description}"
            else:
                message = f"the request has {len(self.violations)} invalid fields"
        super().__init__(message, reason=reason)

    @classmethod
    def field(cls, field: str, description: str, *, reason: str | None = None) -> InvalidArgument:
        """Shortcut for a single bad field."""
        return cls([Violation(field, description)], reason=reason)


class NotFound(ServiceError):
    """The resource does not exist for this tenant (or belongs to another one)."""

    reason = "RESOURCE_NOT_FOUND"

    def __init__(self, resource: str, resource_id: str):
        super().__init__(
            f"{resource} {resource_id!r} not found",
            metadata={"resource": resource, "id": resource_id},
        )
        self.resource = resource
        self.resource_id = resource_id


class AlreadyExists(ServiceError):
    """A resource with the same unique value already exists."""

    reason = "RESOURCE_ALREADY_EXISTS"

    def __init__(self, resource: str, field: str, value: str):
        super().__init__(
            f"a {resource} with {field} {value!r} already exists",
            metadata={"resource": resource, "field": field},
        )
        self.resource = resource
        self.field = field
        self.value = value


class EtagMismatch(ServiceError):
    """The caller's etag is stale: someone else changed the resource first."""

    reason = "ETAG_MISMATCH"

    def __init__(self, resource: str, resource_id: str):
        super().__init__(
            f"{resource} {resource_id!r} was changed by another writer; "
            "read it again and retry with the new etag",
            metadata={"resource": resource, "id": resource_id},
        )
        self.resource = resource
        self.resource_id = resource_id


class FailedPrecondition(ServiceError):
    """The resource is not in a state that allows the call."""

    reason = "FAILED_PRECONDITION"

    def __init__(
        self,
        message: str,
        violations: Iterable[PreconditionViolation] = (),
        *,
        reason: str | None = None,
        metadata=None,
    ):
        super().__init__(message, reason=reason, metadata=metadata)
        self.violations = list(violations)


class Unauthenticated(ServiceError):
    """No valid API key was presented."""

    reason = "API_KEY_INVALID"


class PermissionDenied(ServiceError):
    """The API key is valid but may not make this call."""

    reason = "PERMISSION_DENIED"


class ResourceExhausted(ServiceError):
    """A quota or a per-server limit is used up; the caller may retry with backoff.

    For a tenant's quota, ``retry_after`` says when (seconds), ``subject`` names what the
    quota is counted on (``tenant:<id>``) and ``description`` which limit was hit, for
    ``google.rpc.RetryInfo`` and ``QuotaFailure``. A per-server limit (e.g. concurrent watch
    streams) sets none of them.
    """

    reason = "RESOURCE_EXHAUSTED"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        retry_after: float | None = None,
        subject: str = "",
        description: str = "",
    ):
        super().__init__(message, reason=reason)
        self.retry_after = retry_after
        self.subject = subject
        self.description = description


class ServiceUnavailable(ServiceError):
    """A dependency (the database, the architect backend) cannot be reached."""

    reason = "UNAVAILABLE"


class NotImplementedYet(ServiceError):
    """The call is part of the contract but this server does not offer it."""

    reason = "NOT_IMPLEMENTED"
