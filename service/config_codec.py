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

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import descriptor, json_format, message
from simulation.v1 import config_pb2

__all__ = [
    "CURRENT_SCHEMA_VERSION",
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
    document = json_format.MessageToDict(
        msg,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    _unquote_int64(msg.DESCRIPTOR, document)
    return document


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
