"""Tests of the stored form of configs, sources and architect parameters."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simulation.v1 import config_pb2

from service.domain.config_codec import (
    CURRENT_SCHEMA_VERSION,
    config_from_document,
    config_to_document,
    parameters_from_document,
    parameters_to_document,
    sources_from_documents,
    sources_to_documents,
)
from tests.unit.config_strategies import (
    INT64_MAX,
    INT64_MIN,
    config_with_every_metric_kind,
    temperatures,
    text,
    valid_configs,
)


def through_json(document):
    """What comes back from a JSON column: strict JSON, no NaN."""
    return json.loads(json.dumps(document, allow_nan=False))


def make_config() -> config_pb2.SimulationConfig:
    return config_pb2.SimulationConfig(
        title="Market panic",
        max_turns=10,
        model="sim-small-1",
        temperature=0.5,
        seed=2**62 + 1,  # beyond a double's exact range
        agents=[config_pb2.Agent(id="alice", name="Alice", attributes={"mood": "calm"})],
        environment=config_pb2.Environment(description="A market"),
        events=[config_pb2.ScheduledEvent(turn=2, description="Crash", agent_ids=["alice"])],
        metrics=[config_pb2.Metric(name="trust", kind=config_pb2.Metric.COUNTER)],
    )


# -- version 2 -----------------------------------------------------------------------------------


def test_writes_the_current_schema_version():
    assert CURRENT_SCHEMA_VERSION == 2
    assert config_to_document(make_config())["schema_version"] == 2


def test_writes_proto_field_names_enum_names_and_int64_as_a_number():
    document = config_to_document(make_config())
    assert document["max_turns"] == 10
    assert document["seed"] == 2**62 + 1
    assert isinstance(document["seed"], int)
    assert document["agents"][0]["attributes"] == {"mood": "calm"}
    assert document["events"][0]["agent_ids"] == ["alice"]
    assert document["metrics"][0]["kind"] == "COUNTER"


def test_leaves_unset_optional_fields_out():
    config = make_config()
    config.ClearField("temperature")
    config.ClearField("seed")
    config.ClearField("environment")
    document = config_to_document(config)
    assert "temperature" not in document
    assert "seed" not in document
    assert "environment" not in document


def test_keeps_optional_fields_set_to_zero():
    config = make_config()
    config.temperature = 0.0
    config.seed = 0
    document = config_to_document(config)
    assert document["temperature"] == 0.0
    assert document["seed"] == 0
    assert config_from_document(through_json(document)) == config


def test_writes_fields_without_presence_even_when_empty():
    document = config_to_document(config_pb2.SimulationConfig())
    assert document == {
        "schema_version": 2,
        "title": "",
        "objective": "",
        "max_turns": 0,
        "model": "",
        "agents": [],
        "events": [],
        "metrics": [],
    }


def test_round_trips_a_config_exactly():
    config = make_config()
    assert config_from_document(through_json(config_to_document(config))) == config


def test_round_trips_every_metric_kind():
    config = config_with_every_metric_kind()
    document = through_json(config_to_document(config))
    assert [m["kind"] for m in document["metrics"]] == [
        "COUNTER",
        "GAUGE",
        "SCORE",
        "CATEGORICAL",
        "TEXT",
    ]
    assert config_from_document(document) == config


def test_round_trips_an_unknown_enum_number():
    config = make_config()
    config.metrics[0].kind = 99
    document = through_json(config_to_document(config))
    assert document["metrics"][0]["kind"] == 99
    assert config_from_document(document).metrics[0].kind == 99


def test_round_trips_an_empty_but_present_environment():
    config = make_config()
    config.environment.Clear()
    config.environment.SetInParent()
    restored = config_from_document(through_json(config_to_document(config)))
    assert restored.HasField("environment")
    assert restored == config


def test_reads_a_quoted_int64_seed_too():
    document = config_to_document(make_config())
    document["seed"] = str(document["seed"])
    assert config_from_document(document).seed == 2**62 + 1


@pytest.mark.parametrize("path", [(), ("agents", 0), ("environment",)])
def test_rejects_unknown_keys_rather_than_dropping_data(path):
    document = config_to_document(make_config())
    target = document
    for step in path:
        target = target[step]
    target["added_later"] = "x"
    with pytest.raises(ValueError, match="added_later"):
        config_from_document(document)


def test_does_not_modify_the_document_it_reads():
    document = through_json(config_to_document(make_config()))
    snapshot = json.dumps(document, sort_keys=True)
    config_from_document(document)
    assert json.dumps(document, sort_keys=True) == snapshot


@pytest.mark.parametrize("version", [None, 0, 3, "2", True, 2.0])
def test_rejects_a_missing_or_unknown_schema_version(version):
    document = config_to_document(make_config())
    if version is None:
        del document["schema_version"]
    else:
        document["schema_version"] = version
    with pytest.raises(ValueError, match="schema_version"):
        config_from_document(document)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"schema_version": 2, "max_turns": "many"},
        {"schema_version": 2, "agents": {"id": "a"}},
        {"schema_version": 2, "metrics": [{"kind": "HISTOGRAM"}]},
    ],
)
def test_rejects_malformed_documents_with_value_error(document):
    with pytest.raises(ValueError):
        config_from_document(document)


# -- version 1 -----------------------------------------------------------------------------------


def v1_document() -> dict:
    return {
        "schema_version": 1,
        "title": "Market panic",
        "max_turns": 10,
        "model": "sim-small-1",
        "temperature": 0.5,
        "seed": 2**62 + 1,
        "agents": [{"id": "alice", "name": "Alice", "traits": {"mood": "calm"}}],
        "environment": {"description": "A market"},
        "scheduled_events": [{"turn": 2, "description": "Crash", "agent_ids": ["alice"]}],
        "metrics": [{"name": "trust", "kind": "counter"}],
    }


def test_reads_a_version_1_document_as_the_same_config():
    assert config_from_document(v1_document()) == make_config()


def test_a_version_1_document_is_written_back_as_version_2():
    config = config_from_document(v1_document())
    document = config_to_document(config)
    assert document["schema_version"] == 2
    assert "scheduled_events" not in document
    assert document["events"][0]["turn"] == 2
    assert "traits" not in document["agents"][0]
    assert document["metrics"][0]["kind"] == "COUNTER"


def test_upgrades_non_string_version_1_traits_to_json_text():
    document = v1_document()
    document["agents"][0]["traits"] = {"age": 42, "shy": True, "height": 1.8, "nick": "Al"}
    attributes = config_from_document(document).agents[0].attributes
    assert dict(attributes) == {"age": "42", "shy": "true", "height": "1.8", "nick": "Al"}


def test_reads_version_1_documents_with_missing_sections():
    document = {
        "schema_version": 1,
        "title": "t",
        "max_turns": 1,
        "model": "m",
        "agents": [{"id": "a", "name": "A"}],
        "metrics": [{"name": "m"}],
    }
    config = config_from_document(document)
    assert config.agents[0].attributes == {}
    assert list(config.events) == []
    assert config.metrics[0].kind == config_pb2.Metric.KIND_UNSPECIFIED


@pytest.mark.parametrize("kind", ["histogram", 1, ["counter"]])
def test_rejects_an_unknown_version_1_metric_kind(kind):
    document = v1_document()
    document["metrics"][0]["kind"] = kind
    with pytest.raises(ValueError, match="metric kind"):
        config_from_document(document)


def test_rejects_malformed_version_1_traits():
    document = v1_document()
    document["agents"][0]["traits"] = ["mood"]
    with pytest.raises(ValueError):
        config_from_document(document)


# -- sources and parameters ----------------------------------------------------------------------


def test_round_trips_sources():
    sources = [
        config_pb2.Source(uri="catalogue://personas/economist", title="Economist", snippet="…"),
        config_pb2.Source(uri="catalogue://personas/nurse"),
    ]
    documents = through_json(sources_to_documents(iter(sources)))
    assert documents[1] == {"uri": "catalogue://personas/nurse", "title": "", "snippet": ""}
    assert sources_from_documents(documents) == sources


def test_reads_no_sources_as_an_empty_list():
    assert sources_to_documents([]) == []
    assert sources_from_documents([]) == []
    assert sources_from_documents(None) == []


def test_rejects_malformed_sources():
    with pytest.raises(ValueError):
        sources_from_documents([{"uri": 5}])
    with pytest.raises(ValueError):
        sources_from_documents(["catalogue://x"])


def test_writes_parameters_with_int64_seed_as_a_number():
    parameters = config_pb2.ArchitectParameters(
        model="m", max_turns=5, num_agents=3, temperature=1.5, seed=-(2**63), instructions="go"
    )
    document = through_json(parameters_to_document(parameters))
    assert document["seed"] == -(2**63)
    assert parameters_from_document(document) == parameters


def test_reads_missing_parameters_as_defaults():
    assert parameters_from_document(None) == config_pb2.ArchitectParameters()
    document = parameters_to_document(config_pb2.ArchitectParameters())
    assert "temperature" not in document and "seed" not in document
    assert parameters_from_document(document) == config_pb2.ArchitectParameters()


# -- properties ----------------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None)


@PROPERTY_SETTINGS
@given(valid_configs())
def test_every_valid_config_round_trips_through_json_unchanged(config):
    document = through_json(config_to_document(config))
    assert document["schema_version"] == CURRENT_SCHEMA_VERSION
    assert config_from_document(document) == config


@PROPERTY_SETTINGS
@given(valid_configs())
def test_the_document_of_a_config_is_stable(config):
    document = config_to_document(config)
    again = config_to_document(config_from_document(through_json(document)))
    assert json.dumps(again, sort_keys=True) == json.dumps(document, sort_keys=True)


@PROPERTY_SETTINGS
@given(valid_configs())
def test_a_config_written_as_version_1_reads_back_unchanged(config):
    document = through_json(config_to_document(config))
    document["schema_version"] = 1
    document["scheduled_events"] = document.pop("events")
    for agent in document["agents"]:
        agent["traits"] = agent.pop("attributes")
    for metric in document["metrics"]:
        metric["kind"] = metric["kind"].lower()
    assert config_from_document(document) == config


@PROPERTY_SETTINGS
@given(
    st.builds(
        config_pb2.ArchitectParameters,
        model=text(max_size=20),
        max_turns=st.integers(-(2**31), 2**31 - 1),
        num_agents=st.integers(-(2**31), 2**31 - 1),
        instructions=text(max_size=40),
    ),
    st.none() | temperatures(),
    st.none() | st.integers(INT64_MIN, INT64_MAX),
)
def test_parameters_round_trip_through_json(parameters, temperature, seed):
    if temperature is not None:
        parameters.temperature = temperature
    if seed is not None:
        parameters.seed = seed
    document = through_json(parameters_to_document(parameters))
    assert parameters_from_document(document) == parameters
