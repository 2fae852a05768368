"""The one check, at the edge, for values no database can store: every string of every request.

PostgreSQL refuses NUL (U+0000) in ``text`` and ``jsonb``. Rather than trust each use case to check each field, the interceptor walks every request
message once, before its handler runs, through the message's descriptor: a new field or a new
RPC is covered without a line of code. Paths name the field as a client wrote it
(``config.agents[3].name``, ``scenario.labels["k"]``, ``results["a"][2]``).

JSON numbers (NaN, infinity) are not checked here: the only JSON a request carries, run results
and analysis, is checked by its use case (:func:`service.domain.validation.check_json_values`).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service.domain.errors import Violation

# Enough to show the problem without building a huge error from a hostile request.
MAX_REPORTED = 20

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"
_LIST_VALUE = "google.protobuf.ListValue"

_NUL_IN_TEXT = "must not contain NUL characters"
_NUL_IN_KEY = "keys must not contain NUL characters"


def unstorable_values(message: Message, limit: int = MAX_REPORTED) -> list[Violation]:
    """Every string or map key in ``message`` holding a NUL, which no database column stores.

    At most ``limit`` are returned; the walk stops there.
    """
    # U+0000 encodes as a zero byte, and a message without one (most are) needs no walk: the
    # walk in Python costs milliseconds on a large config, the search in C microseconds.
    if b"\x00" not in message.SerializeToString():
        return []
    found: list[Violation] = []
    _walk(message, "", found, limit)
    return found


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _key_path(path: str, key: str) -> str:
    # JSON string syntax keeps the path readable when the key itself holds a NUL or quote.
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _check_text(value: str, path: str, found: list[Violation]) -> None:
    if "\x00" in value:
        found.append(Violation(path, _NUL_IN_TEXT))


def _walk(message: Any, path: str, found: list[Violation], limit: int) -> None:
    kind = message.DESCRIPTOR.full_name
    if kind == _STRUCT:
        _walk_struct(message, path, found, limit)
        return
    if kind == _VALUE:
        _walk_value(message, path, found, limit)
        return
    if kind == _LIST_VALUE:
        for index, item in enumerate(message.values):
            if len(found) >= limit:
                return
            _walk_value(item, f"{path}[{index}]", found, limit)
        return
    # Paths are only formatted for a value that is refused: a large config holds tens of
    # thousands of strings, and this runs on every call.
    for field, value in message.ListFields():
        if len(found) >= limit:
            return
        if field.type == FieldDescriptor.TYPE_STRING:
            if not field.is_repeated:
                if "\x00" in value:
                    found.append(Violation(_join(path, field.name), _NUL_IN_TEXT))
            elif any("\x00" in item for item in value):
                field_path = _join(path, field.name)
                bad = [index for index, item in enumerate(value) if "\x00" in item]
                found.extend(
                    Violation(f"{field_path}[{index}]", _NUL_IN_TEXT)
                    for index in bad[: limit - len(found)]
                )
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            field_path = _join(path, field.name)
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                _walk_map(field, value, field_path, found, limit)
            elif field.is_repeated:
                for index, item in enumerate(value):
                    if len(found) >= limit:
                        return
                    _walk(item, f"{field_path}[{index}]", found, limit)
            else:
                _walk(value, field_path, found, limit)


def _walk_map(field: FieldDescriptor, entries, path: str, found, limit: int) -> None:
    entry_type = field.message_type
    assert entry_type is not None  # a map field's entries are messages
    key_is_text = entry_type.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING
    value_field = entry_type.fields_by_name["value"]
    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
        for key in sorted(entries):
            if len(found) >= limit:
                return
            entry_path = _key_path(path, key) if key_is_text else f"{path}[{key}]"
            if key_is_text and "\x00" in key:
                found.append(Violation(entry_path, _NUL_IN_KEY))
            _walk(entries[key], entry_path, found, limit)
        return
    value_is_text = value_field.type == FieldDescriptor.TYPE_STRING
    # Joined first, in C: most maps hold no NUL and need no walk in Python.
    if not (key_is_text and "\x00" in "".join(entries)) and not (
        value_is_text and "\x00" in "".join(entries[key] for key in entries)
    ):
        return
    for key in sorted(entries):
        bad_key = key_is_text and "\x00" in key
        bad_value = value_is_text and "\x00" in entries[key]
        if bad_key or bad_value:
            entry_path = _key_path(path, key) if key_is_text else f"{path}[{key}]"
            if bad_key:
                found.append(Violation(entry_path, _NUL_IN_KEY))
            if bad_value:
                found.append(Violation(entry_path, _NUL_IN_TEXT))


def _walk_struct(struct: Any, path: str, found, limit: int) -> None:
    for key in sorted(struct.fields):
        if len(found) >= limit:
            return
        entry_path = _key_path(path, key)
        if "\x00" in key:
            found.append(Violation(entry_path, _NUL_IN_KEY))
        _walk_value(struct.fields[key], entry_path, found, limit)


def _walk_value(value: Any, path: str, found, limit: int) -> None:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        _check_text(value.string_value, path, found)
    elif kind == "struct_value":
        _walk_struct(value.struct_value, path, found, limit)
    elif kind == "list_value":
        _walk(value.list_value, path, found, limit)
