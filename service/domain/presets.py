"""Built-in template presets: configs that ship with the service, readable by every tenant.

They live in ``template_presets.json`` (package data) in the API's JSON form, are parsed once,
and are never stored in the database: they cannot be edited or deleted, and every tenant sees
the same ones. Their ids start with ``preset-`` so they never collide with a tenant's UUIDs.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources

from google.protobuf import json_format
from simulation.v1 import config_pb2

PRESET_ID_PREFIX = "preset-"


@dataclass(frozen=True)
class Preset:
    """One built-in template: always at revision 1."""

    id: str
    display_name: str
    description: str
    labels: dict[str, str] = field(default_factory=dict)
    config: config_pb2.SimulationConfig = field(default_factory=config_pb2.SimulationConfig)
    parameters: config_pb2.ArchitectParameters | None = None


def is_preset_id(template_id: str) -> bool:
    """True for the id of a built-in preset (whether or not one has that id)."""
    return template_id.startswith(PRESET_ID_PREFIX)


@functools.cache
def presets() -> dict[str, Preset]:
    """The built-in presets by id, in file order."""
    text = resources.files("service.domain").joinpath("template_presets.json").read_text("utf-8")
    loaded: dict[str, Preset] = {}
    for entry in json.loads(text):
        parameters = entry.get("parameters")
        loaded[entry["id"]] = Preset(
            id=entry["id"],
            display_name=entry["display_name"],
            description=entry.get("description", ""),
            labels=dict(entry.get("labels", {})),
            config=json_format.ParseDict(entry["config"], config_pb2.SimulationConfig()),
            parameters=None
            if parameters is None
            else json_format.ParseDict(parameters, config_pb2.ArchitectParameters()),
        )
    return loaded
