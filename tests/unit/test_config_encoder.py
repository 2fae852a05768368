"""The stored form is written by a fast encoder that must agree with protobuf's own JSON."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simulation.v1 import config_pb2

from service.domain.config_codec import _message_to_dict, _message_to_dict_by_json_format
from tests.unit.config_strategies import text, valid_configs


@settings(max_examples=200, deadline=None)
@given(valid_configs(max_agents=6))
def test_the_fast_encoder_writes_what_json_format_writes_for_any_config(config):
    assert _message_to_dict(config) == _message_to_dict_by_json_format(config)
    # Keys in declaration order, whatever is set: the stored JSON text is stable.
    document = _message_to_dict(config)
    assert list(document) == _declared(config, document)
    for agent, written in zip(config.agents, document["agents"], strict=True):
        assert list(written) == _declared(agent, written)


def _declared(message, document) -> list[str]:
    return [field.name for field in message.DESCRIPTOR.fields if field.name in document]


@settings(max_examples=100, deadline=None)
@given(
    st.builds(
        config_pb2.ArchitectParameters,
        model=text(),
        max_turns=st.integers(-(2**31), 2**31 - 1),
        num_agents=st.integers(-(2**31), 2**31 - 1),
        temperature=st.none() | st.floats(allow_nan=False),
        seed=st.none() | st.integers(-(2**63), 2**63 - 1),
        instructions=text(),
    )
)
def test_the_fast_encoder_writes_what_json_format_writes_for_any_parameters(parameters):
    assert _message_to_dict(parameters) == _message_to_dict_by_json_format(parameters)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_non_finite_doubles_are_written_as_json_format_names_them(value):
    parameters = config_pb2.ArchitectParameters(temperature=value)

    assert _message_to_dict(parameters) == _message_to_dict_by_json_format(parameters)


def test_an_unknown_enum_number_is_kept_as_a_number():
    metric = config_pb2.Metric(name="m", kind=42)

    assert _message_to_dict(metric)["kind"] == 42 == _message_to_dict_by_json_format(metric)["kind"]


def test_sources_are_written_as_json_format_writes_them():
    source = config_pb2.Source(uri="catalogue://p/1", title="A", snippet="")

    assert _message_to_dict(source) == _message_to_dict_by_json_format(source)
