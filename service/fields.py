"""Checks shared by every resource's request validation.

Each check returns the violations it found rather than raising, so a request
with several problems reports all of them in one ``BadRequest``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from service.errors import FieldViolation, InvalidArgument

MAX_LABELS = 32
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
MAX_REQUEST_ID = 100


def check_text(
    value: str, field: str, *, max_length: int, required: bool = False
) -> list[FieldViolation]:
    """Length (in characters) and content checks for a string field."""
    if required and not value.strip():
        return [FieldViolation(field, "is required and must not be blank")]
    if len(value) > max_length:
        return [FieldViolation(field, f"must be at most {max_length} characters, got {len(value)}")]
    if "\x00" in value:
        return [FieldViolation(field, "must not contain NUL characters")]
    return []


def check_labels(labels: Mapping[str, str], field: str = "labels") -> list[FieldViolation]:
    """AIP-style label rules: at most 32; lower-case keys and values."""
    violations = []
    if len(labels) > MAX_LABELS:
        violations.append(
            FieldViolation(field, f"must have at most {MAX_LABELS} entries, got {len(labels)}")
        )
    for key in sorted(labels):
        if not _LABEL_KEY.match(key):
            violations.append(
                FieldViolation(
                    f"{field}[{key!r}]",
                    "key must be 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter",
                )
            )
        if not _LABEL_VALUE.match(labels[key]):
            violations.append(
                FieldViolation(
                    f"{field}[{key!r}]",
                    "value must be at most 63 characters of a-z, 0-9, _ and -",
                )
            )
    return violations


def check_request_id(request_id: str, field: str = "request_id") -> list[FieldViolation]:
    """An idempotency key: at most 100 printable ASCII characters."""
    if len(request_id) > MAX_REQUEST_ID:
        return [FieldViolation(field, f"must be at most {MAX_REQUEST_ID} characters")]
    if request_id and not all(33 <= ord(ch) <= 126 for ch in request_id):
        return [FieldViolation(field, "must be printable ASCII without spaces")]
    return []


def check_mask(paths: list[str], allowed: set[str], field: str = "update_mask") -> list[str]:
    """Validates update-mask paths; returns the fields to change (all for empty or ``*``)."""
    if not paths or paths == ["*"]:
        return sorted(allowed)
    unknown = [
        FieldViolation(
            f"{field}.paths[{index}]",
            f"unknown or immutable field {path!r}; updatable fields are {', '.join(sorted(allowed))}",
        )
        for index, path in enumerate(paths)
        if path not in allowed
    ]
    if unknown:
        raise InvalidArgument(unknown, reason="UPDATE_MASK_INVALID")
    return sorted(set(paths))
