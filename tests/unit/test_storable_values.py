"""The edge check finds every value a database cannot store, with the path a client wrote."""

from __future__ import annotations

import math

from google.protobuf import struct_pb2
from simulation.v1 import config_pb2, simulation_service_pb2

from service.api.storable_values import unstorable_values
from service.domain.errors import Violation


def test_a_clean_request_has_nothing_to_report():
    request = simulation_service_pb2.GetSimulationRequest(simulation_id="abc")
    assert unstorable_values(request) == []


def test_names_nested_repeated_and_map_fields():
    config = config_pb2.SimulationConfig(title="a\x00")
    config.agents.add(id="x", goals=["ok", "b\x00"])
    config.agents[0].attributes["k\x00"] = "v"
    assert unstorable_values(config) == [
        Violation("title", "must not contain NUL characters"),
        Violation('agents[0].attributes["k\\u0000"]', "keys must not contain NUL characters"),
        Violation("agents[0].goals[1]", "must not contain NUL characters"),
    ]


def test_names_struct_keys_and_values_as_json_paths():
    results = struct_pb2.Struct()
    results.update({"a": ["ok", "b\x00"], "n": math.nan, "k\x00": 1})
    request = simulation_service_pb2.CompleteRunRequest(simulation_id="s", results=results)
    assert unstorable_values(request) == [
        Violation('results["a"][1]', "must not contain NUL characters"),
        Violation('results["k\\u0000"]', "keys must not contain NUL characters"),
    ]


def test_zero_bytes_that_are_not_text_are_not_reported():
    # 0.0 and an empty message both encode with zero bytes; neither is a NUL in a string.
    config = config_pb2.SimulationConfig(temperature=0.0, max_turns=256)
    config.environment.SetInParent()
    assert b"\x00" in config.SerializeToString()
    assert unstorable_values(config) == []


def test_stops_after_the_limit():
    config = config_pb2.SimulationConfig()
    config.environment.rules.extend(["\x00"] * 1000)
    assert len(unstorable_values(config, limit=5)) == 5
