"""Tests of the config validator: one or more per rule, then properties over random configs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from simulation.v1 import config_pb2

from service.domain.validation import WHOLE_CONFIG_PATH, ConfigLimits, ConfigValidator, Violation
from tests.unit.config_strategies import (
    config_with_every_metric_kind,
    copy_config,
    valid_configs,
)

validator = ConfigValidator()


def make_config() -> config_pb2.SimulationConfig:
    """A small valid config that touches every section."""
    return config_pb2.SimulationConfig(
        title="Market panic",
        objective="See how rumours spread",
        max_turns=10,
        model="sim-small-1",
        temperature=0.7,
        seed=42,
        agents=[
            config_pb2.Agent(
                id="alice",
                name="Alice",
                role="trader",
                persona="Careful",
                attributes={"mood": "calm"},
                goals=["Sell high"],
            ),
            config_pb2.Agent(id="bob", name="Bob"),
        ],
        environment=config_pb2.Environment(
            description="A market", rules=["No lying"], parameters={"k": "v"}
        ),
        events=[config_pb2.ScheduledEvent(turn=3, description="Crash", agent_ids=["alice", "bob"])],
        metrics=[config_pb2.Metric(name="trust", kind=config_pb2.Metric.GAUGE)],
    )


def paths(violations: list[Violation]) -> list[str]:
    return [v.field for v in violations]


def only(config: config_pb2.SimulationConfig) -> Violation:
    """The single violation of `config`; fails when there is not exactly one."""
    violations = validator.validate(config)
    assert len(violations) == 1, violations
    return violations[0]


# -- the whole config ----------------------------------------------------------------------------


def test_accepts_a_valid_config():
    assert validator.validate(make_config()) == []


def test_accepts_a_config_with_only_the_required_fields():
    config = config_pb2.SimulationConfig(
        title="t", max_turns=1, model="m", agents=[config_pb2.Agent(id="a", name="A")]
    )
    assert validator.validate(config) == []


def test_accepts_metrics_of_every_kind():
    assert validator.validate(config_with_every_metric_kind()) == []


def test_reports_every_violation_together_in_field_order():
    config = make_config()
    config.title = ""
    config.max_turns = 0
    config.agents[1].id = "Bad Id"
    config.events[0].agent_ids[:] = ["alice", "Bad Id", "carol"]
    config.metrics[0].kind = 99

    assert paths(validator.validate(config)) == [
        "title",
        "max_turns",
        "agents[1].id",
        "events[0].agent_ids[2]",
        "metrics[0].kind",
    ]


def test_an_empty_config_reports_each_required_field():
    assert paths(validator.validate(config_pb2.SimulationConfig())) == [
        "title",
        "max_turns",
        "model",
        "agents",
    ]


def test_the_order_of_violations_is_stable():
    config = make_config()
    config.agents[0].attributes.update({"z": "x" * 1001, "a": "y" * 1001, "m": "\x00"})
    first = validator.validate(config)
    assert paths(first) == [
        'agents[0].attributes["a"]',
        'agents[0].attributes["m"]',
        'agents[0].attributes["z"]',
    ]
    assert validator.validate(config) == first


def test_rejects_a_config_larger_than_the_byte_limit():
    config = make_config()
    validator_1k = ConfigValidator(ConfigLimits(max_config_bytes=1000))
    config.objective = "x" * 1000
    violations = validator_1k.validate(config)
    assert paths(violations) == [WHOLE_CONFIG_PATH]
    assert "at most 1000 bytes" in violations[0].description


def test_default_byte_limit_is_one_megabyte():
    assert ConfigLimits().max_config_bytes == 1_000_000


# -- top-level fields ----------------------------------------------------------------------------


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_rejects_a_missing_blank_or_too_long_title(title):
    config = make_config()
    config.title = title
    assert only(config).field == "title"


def test_accepts_a_title_of_200_characters_of_any_script():
    config = make_config()
    config.title = "é" * 199 + "🙂"
    assert validator.validate(config) == []


def test_rejects_an_objective_over_4000_characters():
    config = make_config()
    config.objective = "x" * 4001
    violation = only(config)
    assert violation == Violation("objective", "must be at most 4000 characters; got 4001")


@pytest.mark.parametrize("max_turns", [0, -1, 1001])
def test_rejects_max_turns_outside_1_to_1000(max_turns):
    config = make_config()
    config.max_turns = max_turns
    violation = only(config)
    assert violation.field == "max_turns"
    assert str(max_turns) in violation.description


@pytest.mark.parametrize("max_turns", [3, 1000])
def test_accepts_max_turns_at_the_limits(max_turns):
    config = make_config()
    config.max_turns = max_turns
    assert validator.validate(config) == []


@pytest.mark.parametrize("model", ["", "-leading-dash", "has space", "x" * 101])
def test_rejects_a_bad_model(model):
    config = make_config()
    config.model = model
    assert only(config).field == "model"


@pytest.mark.parametrize("model", ["sim-small-1", "openai/gpt-4.1", "ns:model_v2", "M" * 100])
def test_accepts_model_names_of_the_documented_shape(model):
    config = make_config()
    config.model = model
    assert validator.validate(config) == []


@pytest.mark.parametrize("temperature", [-0.01, 2.01, math.inf, math.nan])
def test_rejects_a_temperature_outside_0_to_2_or_not_finite(temperature):
    config = make_config()
    config.temperature = temperature
    assert only(config).field == "temperature"


@pytest.mark.parametrize("temperature", [0.0, 2.0])
def test_accepts_temperature_at_the_limits(temperature):
    config = make_config()
    config.temperature = temperature
    assert validator.validate(config) == []


def test_temperature_and_seed_may_be_unset():
    config = make_config()
    config.ClearField("temperature")
    config.ClearField("seed")
    assert validator.validate(config) == []


@pytest.mark.parametrize("seed", [-(2**63), 0, 2**63 - 1])
def test_accepts_any_int64_seed(seed):
    config = make_config()
    config.seed = seed
    assert validator.validate(config) == []


def test_rejects_nul_characters_in_any_string():
    config = make_config()
    config.objective = "a\x00b"
    config.agents[0].persona = "\x00"
    config.environment.rules[0] = "r\x00"
    violations = validator.validate(config)
    assert paths(violations) == ["objective", "agents[0].persona", "environment.rules[0]"]
    assert all("NUL" in v.description for v in violations)


# -- agents --------------------------------------------------------------------------------------


def test_rejects_a_config_without_agents():
    config = make_config()
    del config.agents[:]
    config.events[0].ClearField("agent_ids")
    violation = only(config)
    assert violation.field == "agents"
    assert "at least 1 agent" in violation.description


def test_rejects_more_than_500_agents():
    config = make_config()
    config.agents.extend(config_pb2.Agent(id=f"a{i}", name="A") for i in range(499))
    assert only(config) == Violation("agents", "must have at most 500 agents; got 501")


def test_accepts_exactly_500_agents():
    config = make_config()
    config.agents.extend(config_pb2.Agent(id=f"a{i}", name="A") for i in range(498))
    assert validator.validate(config) == []


def test_rejects_an_agent_id_with_bad_syntax_quoting_it():
    config = make_config()
    config.agents[1].id = "Bad Id"
    config.events[0].agent_ids[1] = "Bad Id"
    assert only(config) == Violation(
        "agents[1].id", "must match [a-z0-9][a-z0-9_-]{0,63}; got 'Bad Id'"
    )


@pytest.mark.parametrize("agent_id", ["_x", "-x", "x.y", "x" * 65, "ÿ"])
def test_rejects_agent_ids_outside_the_pattern(agent_id):
    config = make_config()
    config.agents[1].id = agent_id
    config.events[0].agent_ids[1] = agent_id
    assert only(config).field == "agents[1].id"


@pytest.mark.parametrize("agent_id", ["0", "a_b-c", "x" * 64])
def test_accepts_agent_ids_inside_the_pattern(agent_id):
    config = make_config()
    config.agents[1].id = agent_id
    config.events[0].agent_ids[1] = agent_id
    assert validator.validate(config) == []


def test_rejects_a_missing_agent_id():
    config = make_config()
    config.agents[1].id = ""
    config.events[0].agent_ids.remove("bob")
    assert only(config) == Violation("agents[1].id", "is required")


def test_reports_a_duplicate_agent_id_at_the_duplicate_naming_the_first():
    config = make_config()
    config.agents.add(id="carol", name="Carol")
    config.agents.add(id="alice", name="Alice again")
    violation = only(config)
    assert violation.field == "agents[3].id"
    assert "agents[0]" in violation.description
    assert "'alice'" in violation.description


def test_reports_each_later_duplicate_of_an_id():
    config = make_config()
    config.agents.add(id="bob", name="B2")
    config.agents.add(id="bob", name="B3")
    assert paths(validator.validate(config)) == ["agents[2].id", "agents[3].id"]


@pytest.mark.parametrize("name", ["", " \t", "n" * 201])
def test_rejects_a_missing_blank_or_too_long_agent_name(name):
    config = make_config()
    config.agents[1].name = name
    assert only(config).field == "agents[1].name"


def test_rejects_role_and_persona_over_their_limits():
    config = make_config()
    config.agents[0].role = "r" * 201
    config.agents[0].persona = "p" * 4001
    assert paths(validator.validate(config)) == ["agents[0].role", "agents[0].persona"]


def test_accepts_role_and_persona_at_their_limits():
    config = make_config()
    config.agents[0].role = "r" * 200
    config.agents[0].persona = "p" * 4000
    assert validator.validate(config) == []


def test_rejects_more_than_64_attributes():
    config = make_config()
    config.agents[1].attributes.update({f"k{i}": "v" for i in range(65)})
    assert only(config) == Violation("agents[1].attributes", "must have at most 64 entries; got 65")


def test_reports_attribute_key_and_value_problems_at_the_entry_path():
    config = make_config()
    config.agents[0].attributes[""] = "v"
    config.agents[0].attributes["k" * 65] = "v"
    config.agents[0].attributes["mood"] = "x" * 1001
    violations = validator.validate(config)
    assert paths(violations) == [
        'agents[0].attributes[""]',
        'agents[0].attributes["' + "k" * 65 + '"]',
        'agents[0].attributes["mood"]',
    ]
    assert violations[0].description == "key must not be empty"
    assert violations[1].description.startswith("key must be at most 64 characters")
    assert violations[2].description.startswith("value must be at most 1000 characters")


def test_quotes_attribute_keys_with_special_characters_as_json_strings():
    config = make_config()
    config.agents[0].attributes['a"b'] = "x" * 1001
    assert only(config).field == 'agents[0].attributes["a\\"b"]'


def test_accepts_attributes_at_their_limits():
    config = make_config()
    config.agents[1].attributes.update({f"{i:064d}": "v" * 1000 for i in range(64)})
    assert validator.validate(config) == []


def test_rejects_more_than_32_goals_and_walks_only_the_first_32():
    config = make_config()
    config.agents[1].goals.extend(["g"] * 31 + ["", "x" * 1001])
    # goals[32] is past the maximum: the count reports it, its own content is not checked.
    assert paths(validator.validate(config)) == [
        "agents[1].goals",
        "agents[1].goals[31]",
    ]


# -- environment ---------------------------------------------------------------------------------


def test_rejects_an_environment_description_over_8000_characters():
    config = make_config()
    config.environment.description = "d" * 8001
    assert only(config).field == "environment.description"


def test_rejects_too_many_rules_and_walks_only_the_first_100():
    config = make_config()
    config.environment.rules.extend(["r"] * 98 + ["", "x" * 1001])
    assert paths(validator.validate(config)) == [
        "environment.rules",
        "environment.rules[99]",
    ]


def test_rejects_too_many_environment_parameters_and_bad_entries():
    config = make_config()
    config.environment.parameters.update({f"p{i}": "v" for i in range(64)})
    config.environment.parameters["k"] = "v" * 1001
    assert paths(validator.validate(config)) == [
        "environment.parameters",
        'environment.parameters["k"]',
    ]


def test_environment_may_be_unset():
    config = make_config()
    config.ClearField("environment")
    assert validator.validate(config) == []


# -- events --------------------------------------------------------------------------------------


def test_rejects_an_event_after_max_turns_saying_so():
    config = make_config()
    config.events.add(turn=11, description="Too late")
    assert only(config) == Violation("events[1].turn", "is after max_turns (10); got 11")


@pytest.mark.parametrize("turn", [0, -5])
def test_rejects_an_event_before_turn_1(turn):
    config = make_config()
    config.events[0].turn = turn
    assert only(config).field == "events[0].turn"


def test_accepts_events_on_the_first_and_last_turn():
    config = make_config()
    config.events.add(turn=1, description="Start")
    config.events.add(turn=10, description="End")
    assert validator.validate(config) == []


def test_an_invalid_max_turns_is_not_blamed_on_every_event():
    config = make_config()
    config.max_turns = 0
    assert paths(validator.validate(config)) == ["max_turns"]
    config.max_turns = 5000
    config.events[0].turn = 2000
    assert paths(validator.validate(config)) == ["max_turns", "events[0].turn"]


def test_rejects_an_event_naming_an_unknown_agent_saying_which():
    config = make_config()
    config.events[0].agent_ids.insert(1, "carol")
    violation = only(config)
    assert violation.field == "events[0].agent_ids[1]"
    assert "'carol'" in violation.description


def test_rejects_an_agent_named_twice_in_one_event():
    config = make_config()
    config.events[0].agent_ids.append("alice")
    violation = only(config)
    assert violation.field == "events[0].agent_ids[2]"
    assert "events[0].agent_ids[0]" in violation.description


def test_the_same_agent_may_be_named_by_different_events():
    config = make_config()
    config.events.add(turn=4, description="Again", agent_ids=["alice"])
    assert validator.validate(config) == []


@pytest.mark.parametrize("description", ["", "  ", "x" * 4001])
def test_rejects_a_missing_blank_or_too_long_event_description(description):
    config = make_config()
    config.events[0].description = description
    assert only(config).field == "events[0].description"


def test_rejects_more_than_1000_events():
    config = make_config()
    config.events.extend(config_pb2.ScheduledEvent(turn=1, description="e") for _ in range(1000))
    assert only(config) == Violation("events", "must have at most 1000 events; got 1001")


# -- metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Trust", "1st", "_x", "with-dash", "bad name"])
def test_rejects_metric_names_outside_the_pattern(name):
    config = make_config()
    config.metrics[0].name = name
    violation = only(config)
    assert violation.field == "metrics[0].name"
    assert "[a-z][a-z0-9_]{0,63}" in violation.description


def test_rejects_a_metric_name_over_64_characters():
    config = make_config()
    config.metrics[0].name = "x" * 65
    assert only(config) == Violation("metrics[0].name", "must be at most 64 characters; got 65")


def test_rejects_a_missing_metric_name():
    config = make_config()
    config.metrics[0].name = ""
    assert only(config) == Violation("metrics[0].name", "is required")


def test_rejects_a_duplicate_metric_name_at_the_duplicate():
    config = make_config()
    config.metrics.add(name="speed", kind=config_pb2.Metric.COUNTER)
    config.metrics.add(name="trust", kind=config_pb2.Metric.SCORE)
    violation = only(config)
    assert violation.field == "metrics[2].name"
    assert "metrics[0]" in violation.description


def test_rejects_an_unspecified_metric_kind():
    config = make_config()
    config.metrics[0].kind = config_pb2.Metric.KIND_UNSPECIFIED
    violation = only(config)
    assert violation.field == "metrics[0].kind"
    assert "COUNTER" in violation.description


def test_rejects_an_unknown_metric_kind_by_number():
    config = make_config()
    config.metrics[0].kind = 99
    violation = only(config)
    assert violation.field == "metrics[0].kind"
    assert "unknown value 99" in violation.description


def test_rejects_a_metric_description_over_1000_characters():
    config = make_config()
    config.metrics[0].description = "d" * 1001
    assert only(config).field == "metrics[0].description"


def test_rejects_more_than_100_metrics():
    config = make_config()
    config.metrics.extend(
        config_pb2.Metric(name=f"m{i}", kind=config_pb2.Metric.TEXT) for i in range(100)
    )
    assert only(config) == Violation("metrics", "must have at most 100 metrics; got 101")


# -- limits --------------------------------------------------------------------------------------


def test_limits_can_be_tightened():
    strict = ConfigValidator(ConfigLimits(agents_max=1, max_turns_max=5, agent_id_max_chars=3))
    config = make_config()
    config.agents[0].id = "a.c"
    config.events[0].agent_ids[0] = "a.c"
    violations = strict.validate(config)
    # The event names both agents: more targets than the tightened maximum.
    assert paths(violations) == ["max_turns", "agents", "agents[0].id", "events[0].agent_ids"]
    assert "[a-z0-9][a-z0-9_-]{0,2}" in violations[2].description


def test_long_values_are_shortened_in_descriptions():
    config = make_config()
    config.model = " " * 90
    violation = only(config)
    assert len(violation.description) < 100


# -- architect parameters ------------------------------------------------------------------------


def test_accepts_default_parameters():
    assert validator.validate_parameters(config_pb2.ArchitectParameters()) == []


def test_accepts_parameters_at_their_limits():
    parameters = config_pb2.ArchitectParameters(
        model="sim-small-1",
        max_turns=1000,
        num_agents=500,
        temperature=2.0,
        seed=-(2**63),
        instructions="i" * 4000,
    )
    assert validator.validate_parameters(parameters) == []


def test_reports_every_parameter_violation_with_the_prefix():
    parameters = config_pb2.ArchitectParameters(
        model="bad model",
        max_turns=-1,
        num_agents=501,
        temperature=-0.5,
        instructions="i" * 4001,
    )
    assert paths(validator.validate_parameters(parameters)) == [
        "parameters.model",
        "parameters.max_turns",
        "parameters.num_agents",
        "parameters.temperature",
        "parameters.instructions",
    ]


@pytest.mark.parametrize(
    ("field", "value"), [("max_turns", 1001), ("num_agents", -1), ("temperature", math.nan)]
)
def test_rejects_each_parameter_outside_its_range(field, value):
    parameters = config_pb2.ArchitectParameters(**{field: value})
    assert paths(validator.validate_parameters(parameters)) == [f"parameters.{field}"]


def test_parameter_paths_use_the_given_prefix():
    parameters = config_pb2.ArchitectParameters(max_turns=2000, instructions="\x00")
    assert paths(validator.validate_parameters(parameters, field_prefix="request.params")) == [
        "request.params.max_turns",
        "request.params.instructions",
    ]
    assert paths(validator.validate_parameters(parameters, field_prefix="")) == [
        "max_turns",
        "instructions",
    ]


# -- sources -------------------------------------------------------------------------------------


def test_sources_at_their_limits_are_accepted():
    sources = [
        config_pb2.Source(uri="u" * 2000, title="t" * 500, snippet="s" * 2000),
        *(config_pb2.Source(uri=f"catalogue://personas/{i}") for i in range(99)),
    ]
    assert validator.validate_sources(sources) == []
    assert validator.validate_sources([]) == []


@pytest.mark.parametrize(
    ("source", "path"),
    [
        (config_pb2.Source(uri=""), "sources[0].uri"),
        (config_pb2.Source(uri="  "), "sources[0].uri"),
        (config_pb2.Source(uri="u" * 2001), "sources[0].uri"),
        (config_pb2.Source(uri="a\x00b"), "sources[0].uri"),
        (config_pb2.Source(uri="u", title="t" * 501), "sources[0].title"),
        (config_pb2.Source(uri="u", title="\x00"), "sources[0].title"),
        (config_pb2.Source(uri="u", snippet="s" * 2001), "sources[0].snippet"),
        (config_pb2.Source(uri="u", snippet="\x00"), "sources[0].snippet"),
    ],
)
def test_rejects_each_bad_source_field(source, path):
    assert paths(validator.validate_sources([source])) == [path]


def test_rejects_more_than_100_sources_under_the_given_prefix():
    sources = [config_pb2.Source(uri="u")] * 101
    assert paths(validator.validate_sources(sources, field_prefix="revision.sources")) == [
        "revision.sources"
    ]


# -- properties ----------------------------------------------------------------------------------

# Acceptance gets more examples than each mutation: mutations reuse the same generator, so the
# mutation tests together cover far more shapes than any one of them alone.
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None)
MUTATION_SETTINGS = settings(max_examples=40, deadline=None)


@PROPERTY_SETTINGS
@given(valid_configs())
def test_every_generated_valid_config_is_accepted(config):
    assert validator.validate(config) == []


@MUTATION_SETTINGS
@given(valid_configs(), st.data())
def test_a_duplicated_agent_id_is_reported_at_the_duplicate(config, data):
    config = copy_config(config)
    i = data.draw(st.integers(0, len(config.agents) - 1), label="agent copied")
    config.agents.add(id=config.agents[i].id, name="Copy")
    assert f"agents[{len(config.agents) - 1}].id" in paths(validator.validate(config))


@MUTATION_SETTINGS
@given(valid_configs(), st.data())
def test_an_event_after_max_turns_is_reported(config, data):
    config = copy_config(config)
    turn = data.draw(st.integers(config.max_turns + 1, config.max_turns + 1000), label="turn")
    config.events.add(turn=turn, description="late")
    violations = validator.validate(config)
    assert f"events[{len(config.events) - 1}].turn" in paths(violations)


@MUTATION_SETTINGS
@given(valid_configs())
def test_an_event_naming_a_missing_agent_is_reported(config):
    config = copy_config(config)
    missing = "missing-agent-" + "x" * 50  # longer than any generated id
    config.events.add(turn=1, description="ghost", agent_ids=[missing])
    assert f"events[{len(config.events) - 1}].agent_ids[0]" in paths(validator.validate(config))


@MUTATION_SETTINGS
@given(valid_configs(), st.data(), st.sampled_from(["Upper", "", "-dash", "sp ace", "x" * 65]))
def test_a_broken_agent_id_is_reported(config, data, bad_id):
    config = copy_config(config)
    i = data.draw(st.integers(0, len(config.agents) - 1), label="agent broken")
    old_id = config.agents[i].id
    config.agents[i].id = bad_id
    for event in config.events:  # keep references pointing at the renamed agent
        event.agent_ids[:] = [bad_id if a == old_id else a for a in event.agent_ids]
    assert f"agents[{i}].id" in paths(validator.validate(config))


@MUTATION_SETTINGS
@given(valid_configs(), st.sampled_from([0, -1, 1001]))
def test_a_max_turns_out_of_range_is_reported(config, max_turns):
    config = copy_config(config)
    config.max_turns = max_turns
    assert "max_turns" in paths(validator.validate(config))


@MUTATION_SETTINGS
@given(valid_configs(), st.sampled_from([3.0, -1.0, math.inf, math.nan]))
def test_a_temperature_out_of_range_is_reported(config, temperature):
    config = copy_config(config)
    config.temperature = temperature
    assert paths(validator.validate(config)) == ["temperature"]


@MUTATION_SETTINGS
@given(valid_configs(), st.sampled_from([0, 6, 99, -3]))
def test_an_unknown_or_unspecified_metric_kind_is_reported(config, kind):
    config = copy_config(config)
    config.metrics.add(name="zz_added_metric", kind=kind)
    assert paths(validator.validate(config)) == [f"metrics[{len(config.metrics) - 1}].kind"]


@MUTATION_SETTINGS
@given(valid_configs(), st.data())
def test_a_duplicated_metric_name_is_reported_at_the_duplicate(config, data):
    config = copy_config(config)
    if not config.metrics:
        config.metrics.add(name="only", kind=config_pb2.Metric.COUNTER)
    i = data.draw(st.integers(0, len(config.metrics) - 1), label="metric copied")
    config.metrics.add(name=config.metrics[i].name, kind=config_pb2.Metric.SCORE)
    assert paths(validator.validate(config)) == [f"metrics[{len(config.metrics) - 1}].name"]


# Strings near every agent limit: empty, blank, NUL, at and past the (lowered) lengths.
_agent_text = st.sampled_from(["", " ", "a", "ab", "a\x00", "abc", "ABC", "a b", "x" * 5, "x" * 6])
_small_limits = ConfigLimits(
    agent_id_max_chars=5,
    agent_name_max_chars=5,
    agent_role_max_chars=5,
    agent_persona_max_chars=5,
    agent_attributes_max=2,
    attribute_key_max_chars=5,
    attribute_value_max_chars=5,
    agent_goals_max=2,
    goal_max_chars=5,
)


class _FullChecksOnly(ConfigValidator):
    def _agent_is_clean(self, agent, seen):
        return False


@st.composite
def _edge_agents(draw) -> config_pb2.Agent:
    return config_pb2.Agent(
        id=draw(st.sampled_from(["", "a", "b", "a-1", "A", "a b", "abcde", "abcdef"])),
        name=draw(_agent_text),
        role=draw(_agent_text),
        persona=draw(_agent_text),
        attributes=draw(st.dictionaries(_agent_text, _agent_text, max_size=3)),
        goals=draw(st.lists(_agent_text, max_size=3)),
    )


@settings(max_examples=300, deadline=None)
@given(agents=st.lists(_edge_agents(), min_size=1, max_size=4))
def test_the_fast_path_for_clean_agents_agrees_with_the_full_checks(agents):
    """Agents are first tested inline (the valid config's fast path); the full checks decide.

    Whatever the agents, the violations are those of the full checks alone.
    """
    fast = ConfigValidator(_small_limits)
    full = _FullChecksOnly(_small_limits)
    config = copy_config(make_config())
    del config.agents[:]
    del config.events[:]
    config.agents.extend(agents)
    assert fast.validate(config) == full.validate(config)
