"""Conversions between protobuf values and plain Python values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

# Every datetime in a response goes through timestamp(): a list page holds a hundred or more.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    """A ``Timestamp`` for an aware datetime (None stays None).

    The same value as ``Timestamp.FromDatetime`` gives, from the exact difference to the
    epoch, about three times faster than that method's time-tuple conversion.
    """
    if value is None:
        return None
    since = value - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000
    )


def struct(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    """A ``Struct`` for a JSON object (None stays None)."""
    if value is None:
        return None
    message = struct_pb2.Struct()
    message.update(value)
    return message


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """The object held by a ``Struct``, as plain Python values.

    Unlike ``json_format`` it never raises: a NaN or infinite number stays a float, so the use
    case can reject it as a bad field (``check_json_values``) instead of the call failing.
    """
    return {key: _value(value) for key, value in message.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    if kind in ("number_value", "string_value", "bool_value"):
        return getattr(value, kind)
    return None
