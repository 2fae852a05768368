"""What changed between two simulation configs: an RFC 6902 JSON Patch and the changed paths.

Both configs are compared in their JSON form with proto field names, every field written (the
form a REST client gets from GetConfig), so a client can apply the patch to the document it
already holds. The changed paths say the same thing in the path syntax of validation errors
(``agents[2].persona``, ``agents[0].attributes["mood"]``), so a reader can line a diff up with
the violations of a rejected write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import jsonpatch
from google.protobuf import descriptor, json_format
from simulation.v1 import config_pb2

__all__ = ["ConfigDiff", "config_json", "diff_configs", "path_of_pointer"]


@dataclass(frozen=True)
class ConfigDiff:
    """A JSON Patch (a list of operations) and the config paths it changes, each once."""

    patch: list[dict[str, Any]]
    changed_paths: list[str]


def config_json(config: config_pb2.SimulationConfig | None) -> dict[str, Any]:
    """The config's JSON form with proto field names and every field; ``{}`` for None."""
    if config is None:
        return {}
    return json_format.MessageToDict(
        config,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )


def diff_configs(
    before: config_pb2.SimulationConfig | None, after: config_pb2.SimulationConfig | None
) -> ConfigDiff:
    """The patch from ``before`` to ``after`` (None: an empty config) and the paths it changes."""
    patch = jsonpatch.make_patch(config_json(before), config_json(after)).patch
    paths: dict[str, None] = {}
    for operation in patch:
        # A move changes where it took the value from as well as where it put it.
        for pointer in (operation.get("from"), operation["path"]):
            if pointer is not None:
                paths.setdefault(path_of_pointer(pointer))
    return ConfigDiff(patch=patch, changed_paths=list(paths))


def path_of_pointer(pointer: str) -> str:
    """The validation-error path of a JSON Pointer into a config (``/agents/2/id`` →
    ``agents[2].id``).

    The config's message types tell a map key (quoted, ``["mood"]``) from a list index
    (``[2]``) and a field name (``.persona``).
    """
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    path = ""
    message_type: Any = config_pb2.SimulationConfig.DESCRIPTOR
    index = 0
    while index < len(parts):
        part = parts[index]
        index += 1
        field = message_type.fields_by_name.get(part) if message_type is not None else None
        if field is None:
            # Not a field of a known message (a value inside a Struct): keep it readable.
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
            continue
        path = f"{path}.{part}" if path else part
        message_type = field.message_type
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            if index < len(parts):
                path += f"[{json.dumps(parts[index], ensure_ascii=False)}]"
                index += 1
            value_field = field.message_type.fields_by_name["value"]
            message_type = value_field.message_type
        elif _is_repeated(field):
            if index < len(parts):
                path += f"[{parts[index]}]"
                index += 1
    return path


def _is_repeated(field: descriptor.FieldDescriptor) -> bool:
    return field.is_repeated
