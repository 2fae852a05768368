"""Checks shared by every resource's request validation.

Each check returns the violations it found rather than raising, so a request
with several problems reports all of them in one ``BadRequest``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from service.errors import EtagMismatch, FieldViolation, InvalidArgument

MAX_LABELS = 32
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}\Z")
MAX_REQUEST_ID = 100


# Zero-width (non-)joiners are format characters that Persian, Indic scripts and emoji
# sequences need, so a single-line name may hold them.
_ALLOWED_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"})


def check_text(
    value: str, field: str, *, max_length: int, required: bool = False, single_line: bool = False
) -> list[FieldViolation]:
    """Length (in characters) and content checks for a string field.

    ``single_line`` is for names shown in lists and titles: no control or format characters
    (Unicode categories Cc and Cf, e.g. a newline or a bell) and no leading or trailing
    whitespace.
    """
    if required and not value.strip():
        return [FieldViolation(field, "is required and must not be blank")]
    if len(value) > max_length:
        return [FieldViolation(field, f"must be at most {max_length} characters, got {len(value)}")]
    if "\x00" in value:
        return [FieldViolation(field, "must not contain NUL characters")]
    if single_line:
        return _check_single_line(value, field)
    return []


def _check_single_line(value: str, field: str) -> list[FieldViolation]:
    for index, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cf") and char not in _ALLOWED_FORMAT_CHARACTERS:
            return [
                FieldViolation(
                    field,
                    f"must be a single line without control characters; "
                    f"got U+{ord(char):04X} at position {index}",
                )
            ]
    if value != value.strip():
        return [FieldViolation(field, "must not start or end with whitespace")]
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


def check_mask(
    paths: list[str], allowed: set[str], populated: Collection[str], field: str = "update_mask"
) -> list[str]:
    """Validates update-mask paths; returns the fields to change (AIP-134).

    An empty mask means the ``populated`` fields: those the request resource sets (non-empty
    strings and maps), so a PATCH that sends only a name changes only the name. ``*`` means
    every updatable field, a full replace that clears the fields the request leaves empty.
    """
    if not paths:
        return sorted(set(populated) & allowed)
    if paths == ["*"]:
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


def require_id(value: str, field: str) -> None:
    """An id field must be present and of sane length (``INVALID_ARGUMENT`` otherwise)."""
    if not value:
        raise InvalidArgument([FieldViolation(field, "is required")])
    if len(value) > 100:
        raise InvalidArgument([FieldViolation(field, "must be at most 100 characters")])
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidArgument([FieldViolation(field, "must not contain control characters")])


def check_etag(given: str, stored: str, resource: str, resource_id: str) -> None:
    """A non-empty etag must match the stored one (``ABORTED`` otherwise)."""
    if given and given != stored:
        raise EtagMismatch(resource, resource_id)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC: the one clock every use case reads."""
    return datetime.now(UTC)


def check_json_values(value: Any, field: str, *, limit: int = 20) -> list[FieldViolation]:
    """Values both databases can store as JSON: finite numbers, no NUL in keys or strings.

    Paths name the offending place (``results.scores[2]``, ``analysis["a\\u0000b"]``); at most
    ``limit`` are reported.
    """
    found: list[FieldViolation] = []

    def walk(item: Any, path: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{key!r}]"
                if "\x00" in key:
                    found.append(FieldViolation(child_path, "keys must not contain NUL characters"))
                walk(child, child_path)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                walk(child, f"{path}[{index}]")
        elif isinstance(item, str) and "\x00" in item:
            found.append(FieldViolation(path, "must not contain NUL characters"))
        elif isinstance(item, float) and not math.isfinite(item):
            found.append(FieldViolation(path, f"must be a finite number; got {item}"))

    walk(value, field)
    return found


def request_fingerprint(**arguments: Any) -> str:
    """A hash of a create request's arguments, kept with what it created.

    A retry with the same ``request_id`` must send the same arguments (AIP-155); comparing
    fingerprints, rather than the resource as it is now, keeps a late retry valid after the
    resource was edited and catches a reuse that differs only in what is not stored on it
    (architect parameters, the imported config).
    """
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
