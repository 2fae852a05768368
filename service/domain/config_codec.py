"""The stored form of simulation configs, their sources and architect parameters.

Configs are stored as JSON documents carrying a `schema_version`, so the stored form can evolve
while the API form (the `SimulationConfig` proto) stays. Writers always produce the current
version; readers accept every version listed here and upgrade older ones in memory.

Version 2 (current) is the proto's JSON form with proto field names (snake_case)::

    {"schema_version": 2,
     "title": "...", "objective": "...", "max_turns": 10, "model": "sim-small-1",
     "temperature": 0.7,                 # absent when unset
     "seed": 42,                         # absent when unset; a JSON number, never a string
     "agents": [{"id": "alice", "name": "Alice", "role": "", "persona": "",
                 "attributes": {"mood": "calm"}, "goals": ["..."]}],
     "environment": {"description": "", "rules": [], "parameters": {}},   # absent when unset
     "events": [{"turn": 3, "description": "...", "agent_ids": ["alice"]}],
     "metrics": [{"name": "trust", "description": "", "kind": "GAUGE"}]}

Fields without presence are always written, so a document reads the same whatever the proto's
defaults are. Enum values are written by name; a number the proto does not know (proto3 enums are
open) is written as that number so it survives the round trip.

Version 1 (legacy, written by the original V1 HTTP API) differs from version 2 in three places:

- each agent's free-form traits were stored under `traits` rather than `attributes`, and their
  values could be any JSON scalar (`{"age": 42, "shy": true}`); they are upgraded to strings,
  strings as they are and anything else as its JSON text (`"42"`, `"true"`);
- the scheduled events were stored under `scheduled_events` rather than `events`;
- a metric's `kind` was a lower-case name (`"counter"`, `"gauge"`, ...); missing or empty meant
  unspecified.

Reading is strict: an unknown key or enum name is a `ValueError`, never silently dropped, so a
corrupt or misrouted document is noticed instead of being saved back without its data. A later
additive change therefore needs readers that know the new field deployed before writers use it.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, cast

from google.protobuf import descriptor, json_format, message
from google.protobuf.internal import type_checkers
from simulation.v1 import config_pb2

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "RevisionConfigs",
    "SUPPORTED_SCHEMA_VERSIONS",
    "config_from_document",
    "config_to_document",
    "parameters_from_document",
    "parameters_to_document",
    "sources_from_documents",
    "sources_to_documents",
]

CURRENT_SCHEMA_VERSION: int = 2
SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1, 2})

_SCHEMA_VERSION_KEY = "schema_version"

_INT64_TYPES = frozenset(
    {
        descriptor.FieldDescriptor.TYPE_INT64,
        descriptor.FieldDescriptor.TYPE_UINT64,
        descriptor.FieldDescriptor.TYPE_SINT64,
        descriptor.FieldDescriptor.TYPE_FIXED64,
        descriptor.FieldDescriptor.TYPE_SFIXED64,
    }
)


# -- configs -------------------------------------------------------------------------------------


def config_to_document(config: config_pb2.SimulationConfig) -> dict[str, Any]:
    """Return the current stored form of `config`: a JSON-safe dict with `schema_version`."""
    document: dict[str, Any] = {_SCHEMA_VERSION_KEY: CURRENT_SCHEMA_VERSION}
    document.update(_message_to_dict(config))
    return document


def config_from_document(document: dict[str, Any]) -> config_pb2.SimulationConfig:
    """Read a stored config of any supported schema version.

    Raises `ValueError` when the version is missing or unknown, or the document is malformed.
    """
    if not isinstance(document, dict):
        raise ValueError(f"config document must be a JSON object; got {type(document).__name__}")
    version = document.get(_SCHEMA_VERSION_KEY)
    # bool is an int in Python; `true` is not a version.
    if type(version) is not int or version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ValueError(
            f"unsupported config schema_version {version!r}; "
            f"supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)}"
        )
    body = {key: value for key, value in document.items() if key != _SCHEMA_VERSION_KEY}
    if version == 1:
        body = _upgrade_v1_to_v2(body)
    return _parse(body, config_pb2.SimulationConfig(), what="config")


def _upgrade_v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a version 1 config body into the version 2 shape (see the module docstring)."""
    upgraded = dict(body)
    if "scheduled_events" in upgraded:
        upgraded["events"] = upgraded.pop("scheduled_events")
    upgraded["agents"] = [_upgrade_v1_agent(agent) for agent in _list(upgraded, "agents")]
    upgraded["metrics"] = [_upgrade_v1_metric(metric) for metric in _list(upgraded, "metrics")]
    return upgraded


def _upgrade_v1_agent(agent: Any) -> dict[str, Any]:
    if not isinstance(agent, dict):
        raise ValueError(f"version 1 agent must be a JSON object; got {type(agent).__name__}")
    upgraded = dict(agent)
    traits = upgraded.pop("traits", None) or {}
    if not isinstance(traits, dict):
        raise ValueError(f"version 1 agent traits must be a JSON object; got {traits!r}")
    upgraded["attributes"] = {
        key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        for key, value in traits.items()
    }
    return upgraded


def _upgrade_v1_metric(metric: Any) -> dict[str, Any]:
    if not isinstance(metric, dict):
        raise ValueError(f"version 1 metric must be a JSON object; got {type(metric).__name__}")
    upgraded = dict(metric)
    kind = upgraded.pop("kind", None)
    if kind in (None, ""):
        return upgraded
    name = kind.upper() if isinstance(kind, str) else None
    if name is None or name not in config_pb2.Metric.Kind.keys():
        raise ValueError(f"unknown version 1 metric kind {kind!r}")
    upgraded["kind"] = name
    return upgraded


def _list(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a JSON array; got {type(value).__name__}")
    return value


# -- decoded revisions ---------------------------------------------------------------------------


class RevisionConfigs:
    """Decoded configs of stored revisions, kept by revision (revisions never change).

    Decoding a stored document into the proto costs more than reading it from the database;
    a revision's config is decoded once per process, then copied from its serialized form.
    Least recently used entries go first once ``max_bytes`` of serialized configs are held.
    """

    def __init__(self, max_bytes: int = 16 * 1024 * 1024):
        self._max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def config(
        self, tenant_id: str, simulation_id: str, revision: int, document: dict[str, Any]
    ) -> config_pb2.SimulationConfig:
        """The config of that revision, decoded from ``document`` unless known already."""
        key = (tenant_id, simulation_id, revision)
        with self._lock:
            serialized = self._entries.get(key)
            if serialized is not None:
                self._entries.move_to_end(key)
        if serialized is not None:
            return config_pb2.SimulationConfig.FromString(serialized)
        config = config_from_document(document)
        self.remember(tenant_id, simulation_id, revision, config)
        return config

    def remember(
        self, tenant_id: str, simulation_id: str, revision: int, config: config_pb2.SimulationConfig
    ) -> None:
        """Keeps the config of a revision just written (or read)."""
        serialized = config.SerializeToString()
        key = (tenant_id, simulation_id, revision)
        with self._lock:
            previous = self._entries.pop(key, None)
            self._bytes -= len(previous) if previous is not None else 0
            self._entries[key] = serialized
            self._bytes += len(serialized)
            while self._bytes > self._max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)


# -- sources and architect parameters ------------------------------------------------------------


def sources_to_documents(sources: Iterable[config_pb2.Source]) -> list[dict[str, Any]]:
    """Return the stored form of the sources of a config revision."""
    return [_message_to_dict(source) for source in sources]


def sources_from_documents(documents: list[dict[str, Any]] | None) -> list[config_pb2.Source]:
    """Read stored sources; `None` reads as no sources. Raises `ValueError` when malformed."""
    if documents is None:
        return []
    if not isinstance(documents, list):
        raise ValueError(f"sources must be a JSON array; got {type(documents).__name__}")
    return [_parse(document, config_pb2.Source(), what="source") for document in documents]


def parameters_to_document(parameters: config_pb2.ArchitectParameters) -> dict[str, Any]:
    """Return the stored form of architect parameters."""
    return _message_to_dict(parameters)


def parameters_from_document(document: dict[str, Any] | None) -> config_pb2.ArchitectParameters:
    """Read stored architect parameters; `None` reads as all defaults."""
    if document is None:
        return config_pb2.ArchitectParameters()
    return _parse(document, config_pb2.ArchitectParameters(), what="architect parameters")


# -- shared --------------------------------------------------------------------------------------


def _message_to_dict(msg: message.Message) -> dict[str, Any]:
    """The stored form of ``msg``: what :func:`_message_to_dict_by_json_format` returns, faster.

    ``json_format.MessageToDict`` inspects every field's descriptor on every call; on a config
    with a few dozen agents that costs more than the database write it feeds. The encoder here
    is built once per message type from the same descriptors and gives the same document (a
    test compares the two on generated configs).
    """
    return _encoder(_descriptor_of(msg))(msg)


def _message_to_dict_by_json_format(msg: message.Message) -> dict[str, Any]:
    """The reference form: proto JSON with proto field names, int64 as JSON numbers."""
    document = json_format.MessageToDict(
        msg,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    _unquote_int64(_descriptor_of(msg), document)
    return document


def _descriptor_of(msg: message.Message) -> descriptor.Descriptor:
    # The stubs type DESCRIPTOR as the Python or the C (upb) descriptor; at run time the upb
    # one is a descriptor.Descriptor too (its metaclass says so), so no check is paid here.
    return cast(descriptor.Descriptor, msg.DESCRIPTOR)


_Encode = Callable[[Any], Any]
_ENCODERS: dict[str, Callable[[message.Message], dict[str, Any]]] = {}


def _encoder(message_type: descriptor.Descriptor) -> Callable[[message.Message], dict[str, Any]]:
    encode = _ENCODERS.get(message_type.full_name)
    if encode is None:
        encode = _ENCODERS[message_type.full_name] = _build_encoder(message_type)
    return encode


def _build_encoder(message_type: descriptor.Descriptor) -> Callable[[message.Message], dict]:
    if message_type.file.name.startswith("google/protobuf/"):
        # Well-known types have their own JSON forms: leave them to json_format.
        return _message_to_dict_by_json_format
    # One entry per field, in declaration order (so the stored
    # JSON text is stable): its name, number, how an absent value is written, and its encoder
    # (None: the value is its own JSON form, as strings and integers are).
    plan: list[tuple[str, int, Callable[[], Any] | None, _Encode | None]] = []
    for field in message_type.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_encoder = _value_encoder(field.message_type.fields_by_name["value"])
            encode_map = dict if value_encoder is _same else _map_encoder(value_encoder)
            plan.append((field.name, field.number, dict, encode_map))
        elif field.is_repeated:
            item_encoder = _value_encoder(field)
            encode_list = list if item_encoder is _same else _list_encoder(item_encoder)
            plan.append((field.name, field.number, list, encode_list))
        else:
            value_encoder = _value_encoder(field)
            # Fields without presence are always written; with presence, only when set.
            absent = None
            if not field.has_presence:
                default = value_encoder(field.default_value)
                absent = functools.partial(_same, default)
            plan.append(
                (
                    field.name,
                    field.number,
                    absent,
                    None if value_encoder is _same else value_encoder,
                )
            )
    missing = object()

    def encode(msg: message.Message) -> dict[str, Any]:
        # ListFields (implemented in C) reports what is set.
        present = {field.number: value for field, value in msg.ListFields()}
        document: dict[str, Any] = {}
        for name, number, absent, encode_value in plan:
            value = present.get(number, missing)
            if value is missing:
                if absent is not None:
                    document[name] = absent()
            else:
                document[name] = value if encode_value is None else encode_value(value)
        return document

    return encode


def _map_encoder(encode_value: _Encode) -> _Encode:
    return lambda entries: {key: encode_value(value) for key, value in entries.items()}


def _list_encoder(encode_item: _Encode) -> _Encode:
    return lambda items: [encode_item(item) for item in items]


def _value_encoder(field: descriptor.FieldDescriptor) -> _Encode:
    if field.message_type is not None:
        nested = field.message_type
        found: list[Callable[[message.Message], dict[str, Any]]] = []

        def encode_nested(value: message.Message) -> dict[str, Any]:
            # Looked up on first use, not when built: a message type may contain itself.
            if not found:
                found.append(_encoder(nested))
            return found[0](value)

        return encode_nested
    if field.enum_type is not None:
        names = {value.number: value.name for value in field.enum_type.values}
        # An open enum's unknown number is kept as that number.
        return lambda value: names.get(value, value)
    if field.cpp_type in (descriptor.FieldDescriptor.CPPTYPE_DOUBLE,):
        return _double
    if field.cpp_type == descriptor.FieldDescriptor.CPPTYPE_FLOAT:
        return _float
    if field.type == descriptor.FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("ascii")
    return _same


def _same(value: Any) -> Any:
    return value


def _double(value: float) -> Any:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float(value: float) -> Any:
    if math.isfinite(value):
        return type_checkers.ToShortestFloat(value)
    return _double(value)


def _unquote_int64(message_type: descriptor.Descriptor, document: dict[str, Any]) -> None:
    """Turn the strings proto JSON uses for 64-bit integers back into JSON numbers, in place.

    Proto JSON quotes them for JavaScript's sake; our stored form is read by Python and by
    PostgreSQL JSONB, both exact for any int64, and a number keeps the document honest.
    """
    for field in message_type.fields:
        if field.name not in document:
            continue
        value = document[field.name]
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key, item in value.items():
                value[key] = _unquote_value(value_field, item)
        elif field.is_repeated:
            document[field.name] = [_unquote_value(field, item) for item in value]
        else:
            document[field.name] = _unquote_value(field, value)


def _unquote_value(field: descriptor.FieldDescriptor, value: Any) -> Any:
    if field.type in _INT64_TYPES:
        return int(value)
    if field.message_type is not None and isinstance(value, dict):
        _unquote_int64(field.message_type, value)
    return value


def _parse(document: Any, msg: message.Message, *, what: str) -> Any:
    if not isinstance(document, dict):
        raise ValueError(f"{what} document must be a JSON object; got {type(document).__name__}")
    try:
        return json_format.ParseDict(document, msg)
    except json_format.ParseError as error:
        raise ValueError(f"malformed {what} document: {error}") from error
