"""The API conventions every use case follows: update masks, etags, request ids, the clock.

- Update masks (AIP-134): an empty mask means the fields the request sets (at least one);
  ``*`` means all.
- Etags: a write that sends one is refused (ABORTED) unless it is the stored one.
- Request ids (AIP-155): a create carries a fingerprint of its arguments, so a retry with the
  same id gets the first result and a different request reusing the id is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, TypeVar

from service.domain.errors import EtagMismatch, InvalidArgument, Violation

T = TypeVar("T")


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the one clock every use case reads."""
    return datetime.now(UTC)


def check_mask(
    paths: list[str], allowed: set[str], populated: Collection[str], field: str = "update_mask"
) -> list[str]:
    """Validates update-mask paths; returns the fields to change (AIP-134).

    An empty mask means the ``populated`` fields: those the request resource sets (non-empty
    strings and maps), so a PATCH that sends only a name changes only the name. ``*`` means
    every updatable field, a full replace that clears the fields the request leaves empty.
    An empty mask over a request that sets none of them is ``INVALID_ARGUMENT``: it is almost
    always a misspelt field (dropped by a JSON gateway), and answering it with success would
    hide the mistake.
    """
    if not paths:
        changed = sorted(set(populated) & allowed)
        if not changed:
            raise InvalidArgument(
                [
                    Violation(
                        field,
                        "names no field and the request sets none of the updatable fields "
                        f"({', '.join(sorted(allowed))}): nothing would change",
                    )
                ],
                reason="UPDATE_MASK_EMPTY",
            )
        return changed
    if paths == ["*"]:
        return sorted(allowed)
    unknown = [
        Violation(
            f"{field}.paths[{index}]",
            f"unknown or immutable field {path!r}; updatable fields are {', '.join(sorted(allowed))}",
        )
        for index, path in enumerate(paths)
        if path not in allowed
    ]
    if unknown:
        raise InvalidArgument(unknown, reason="UPDATE_MASK_INVALID")
    return sorted(set(paths))


def check_etag(given: str, stored: str, resource: str, resource_id: str) -> None:
    """A non-empty etag must match the stored one (``ABORTED`` otherwise)."""
    if given and given != stored:
        raise EtagMismatch(resource, resource_id)


def fingerprint(**arguments: Any) -> str:
    """A hash of a request's arguments: what a request id or a page token is bound to.

    Comparing fingerprints, rather than the resource as it is now, keeps a late retry valid
    after the resource was edited and catches a reuse that differs only in what is not stored
    on it (architect parameters, the imported config).
    """
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def first_result(
    existing: T, stored_fingerprint: str | None, request_fingerprint: str, noun: str
) -> T:
    """``existing`` when the request that created it is this one (AIP-155).

    A request id reused for a different request is ``INVALID_ARGUMENT`` (REQUEST_ID_REUSED).
    """
    if stored_fingerprint != request_fingerprint:
        raise InvalidArgument.field(
            "request_id",
            f"was already used for a different request; send a new request_id for a new "
            f"{noun}, or the same arguments to get the first result",
            reason="REQUEST_ID_REUSED",
        )
    return existing
