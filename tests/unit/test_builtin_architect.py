"""The built-in architect: deterministic, honours its parameters, always valid, cites its personas."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simulation.v1 import config_pb2

from service.architect import (
    ArchitectError,
    BuiltinArchitectEngine,
    PersonaCatalogue,
    RemoteArchitectEngine,
    create_engine,
)
from service.architect.builtin import (
    DEFAULT_MAX_TURNS,
    DEFAULT_MODEL,
    DEFAULT_NUM_AGENTS,
    DEFAULT_TEMPERATURE,
)
from service.domain.validation import ConfigValidator

PROMPT = "A city council debates a housing tax while inflation squeezes local businesses"
AGENT_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@pytest.fixture(scope="module")
def engine() -> BuiltinArchitectEngine:
    return BuiltinArchitectEngine()


@pytest.fixture(scope="module")
def validator() -> ConfigValidator:
    return ConfigValidator()


def params(**fields) -> config_pb2.ArchitectParameters:
    return config_pb2.ArchitectParameters(**fields)


def serialized(config: config_pb2.SimulationConfig) -> bytes:
    return config.SerializeToString(deterministic=True)


# -- determinism ---------------------------------------------------------------------------------


def test_same_prompt_and_parameters_give_byte_identical_config_and_sources(engine):
    p = params(max_turns=30, num_agents=6, seed=42, instructions="Keep it civil.")
    first = engine.generate(PROMPT, p)
    second = BuiltinArchitectEngine().generate(PROMPT, p)

    assert serialized(first.config) == serialized(second.config)
    assert first.sources == second.sources


def test_simulation_and_request_ids_do_not_change_the_output(engine):
    plain = engine.generate(PROMPT, params(seed=1))
    tagged = engine.generate(PROMPT, params(seed=1), simulation_id="sim-1", request_id="job-9")
    assert plain == tagged


def test_unset_parameters_and_explicit_defaults_give_the_same_config(engine):
    unset = engine.generate(PROMPT, params())
    explicit = engine.generate(
        PROMPT,
        params(
            model=DEFAULT_MODEL,
            max_turns=DEFAULT_MAX_TURNS,
            num_agents=DEFAULT_NUM_AGENTS,
            temperature=DEFAULT_TEMPERATURE,
            seed=0,
        ),
    )
    assert serialized(unset.config) == serialized(explicit.config)


def test_a_different_seed_gives_a_different_config(engine):
    configs = {serialized(engine.generate(PROMPT, params(seed=s)).config) for s in range(10)}
    assert len(configs) == 10


def test_the_seed_varies_more_than_the_seed_field(engine):
    def body(seed: int) -> bytes:
        config = engine.generate(PROMPT, params(seed=seed)).config
        config.ClearField("seed")
        return serialized(config)

    assert len({body(s) for s in range(10)}) > 1


def test_a_different_prompt_gives_different_agents_or_title(engine):
    health = engine.generate("An epidemic overwhelms the hospital and its nurses", params())
    market = engine.generate("A stock market crash hits traders and the central bank", params())

    assert health.config.title != market.config.title
    assert [a.id for a in health.config.agents] != [a.id for a in market.config.agents]


def test_agents_are_chosen_by_relevance_to_the_prompt(engine):
    config = engine.generate(
        "A pandemic outbreak overwhelms the hospital: doctors, nurses and patients",
        params(num_agents=3),
    ).config
    roles = " ".join(a.role.lower() for a in config.agents)
    assert any(word in roles for word in ("health", "physician", "nurse", "patient"))


# -- parameters ----------------------------------------------------------------------------------


def test_defaults_apply_when_parameters_are_unset(engine):
    config = engine.generate(PROMPT, params()).config

    assert config.model == DEFAULT_MODEL == "sim-small-1"
    assert config.max_turns == DEFAULT_MAX_TURNS == 20
    assert len(config.agents) == DEFAULT_NUM_AGENTS == 4
    assert config.temperature == DEFAULT_TEMPERATURE == 0.7
    assert config.HasField("seed") and config.seed == 0


@pytest.mark.parametrize("num_agents", [1, 2, 45, 46, 137, 500])
def test_num_agents_is_honoured_with_unique_valid_ids(engine, validator, num_agents):
    config = engine.generate(PROMPT, params(num_agents=num_agents)).config

    ids = [a.id for a in config.agents]
    assert len(ids) == num_agents
    assert len(set(ids)) == num_agents
    assert all(AGENT_ID.fullmatch(i) for i in ids)
    assert validator.validate(config) == []


def test_reused_personas_get_numbered_ids(engine):
    catalogue_size = len(PersonaCatalogue.load())
    config = engine.generate(PROMPT, params(num_agents=catalogue_size + 3)).config

    numbered = [a.id for a in config.agents if a.id.endswith("-2")]
    assert len(numbered) == 3
    base_ids = {a.id for a in config.agents[:catalogue_size]}
    assert {i.removesuffix("-2") for i in numbered} <= base_ids


@pytest.mark.parametrize("max_turns", [1, 2, 7, 1000])
def test_max_turns_is_honoured_and_events_fall_within_it(engine, validator, max_turns):
    config = engine.generate(PROMPT, params(max_turns=max_turns)).config

    assert config.max_turns == max_turns
    assert config.events
    assert all(1 <= e.turn <= max_turns for e in config.events)
    assert validator.validate(config) == []


@pytest.mark.parametrize("temperature", [0.0, 0.25, 1.3, 2.0])
def test_temperature_is_honoured_exactly_including_zero(engine, temperature):
    config = engine.generate(PROMPT, params(temperature=temperature)).config
    assert config.HasField("temperature")
    assert config.temperature == temperature


@pytest.mark.parametrize("seed", [0, 1, -5, 2**63 - 1, -(2**63)])
def test_seed_and_model_are_written_into_the_config(engine, seed):
    config = engine.generate(PROMPT, params(seed=seed, model="gpt-sim/large:2")).config
    assert config.seed == seed
    assert config.model == "gpt-sim/large:2"


def test_instructions_become_environment_rules(engine):
    config = engine.generate(
        PROMPT, params(instructions="No one may resign.\n\nVote by turn 5.")
    ).config
    assert "No one may resign." in config.environment.rules
    assert "Vote by turn 5." in config.environment.rules


def test_long_instruction_lines_are_split_to_fit_a_rule(engine, validator):
    config = engine.generate(PROMPT, params(instructions="word " * 799)).config
    assert validator.validate(config) == []
    assert sum(r.startswith("word") for r in config.environment.rules) == 4


def test_title_and_objective_come_from_the_prompt_within_limits(engine, validator):
    prompt = "  First line of the brief  \n" + "detail " * 1000
    config = engine.generate(prompt, params()).config

    assert config.title == "First line of the brief"
    assert config.objective == prompt.strip()[:4000]
    long_title = engine.generate("word " * 100, params()).config.title
    assert len(long_title) <= 200
    assert validator.validate(config) == []


def test_an_empty_prompt_still_gives_a_valid_config(engine, validator):
    config = engine.generate("   ", params()).config
    assert config.title == "Untitled simulation"
    assert validator.validate(config) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"max_turns": 1001},
        {"max_turns": -1},
        {"num_agents": 501},
        {"num_agents": -3},
        {"temperature": 2.5},
        {"temperature": float("nan")},
    ],
)
def test_parameters_out_of_range_are_refused_not_honoured(engine, bad):
    with pytest.raises(ArchitectError) as info:
        engine.generate(PROMPT, params(**bad))
    assert info.value.reason == "INVALID_PARAMETERS"
    assert not info.value.retryable


# -- validity across the parameter space ---------------------------------------------------------

_models = st.one_of(
    st.just(""), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True)
)
_prompts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
# Instructions with NUL are invalid parameters; a prompt with NUL is still turned into a config.
_instructions = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=300
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    prompt=_prompts,
    max_turns=st.one_of(st.just(0), st.integers(1, 1000)),
    num_agents=st.one_of(st.just(0), st.integers(1, 60), st.integers(400, 500)),
    temperature=st.one_of(st.none(), st.floats(0, 2)),
    seed=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    model=_models,
    instructions=_instructions,
)
def test_output_passes_the_validator_for_every_valid_parameter_set(
    engine, validator, prompt, max_turns, num_agents, temperature, seed, model, instructions
):
    p = params(max_turns=max_turns, num_agents=num_agents, model=model, instructions=instructions)
    if temperature is not None:
        p.temperature = temperature
    if seed is not None:
        p.seed = seed
    assert validator.validate_parameters(p) == []

    config = engine.generate(prompt, p).config

    assert validator.validate(config) == []
    assert config.max_turns == (max_turns or DEFAULT_MAX_TURNS)
    assert len(config.agents) == (num_agents or DEFAULT_NUM_AGENTS)


def test_a_huge_cast_with_a_long_unicode_prompt_stays_under_the_size_limit(engine, validator):
    prompt = "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 " * 2000
    config = engine.generate(
        prompt, params(num_agents=500, max_turns=1000, instructions="規則 " * 1300)
    ).config
    assert validator.validate(config) == []


# -- sources and the catalogue -------------------------------------------------------------------


def test_sources_are_the_catalogue_entries_used_once_each_in_order(engine):
    generated = engine.generate(PROMPT, params(num_agents=50))
    catalogue = {p.id: p for p in PersonaCatalogue.load().personas}

    used_ids = list(dict.fromkeys(a.attributes["catalogue_id"] for a in generated.config.agents))
    assert [s.uri for s in generated.sources] == [f"catalogue://personas/{i}" for i in used_ids]
    for source, persona_id in zip(generated.sources, used_ids, strict=True):
        persona = catalogue[persona_id]
        assert source.title == persona.name
        assert source.snippet == persona.description[:200]


def test_each_agent_reflects_its_persona(engine):
    generated = engine.generate(PROMPT, params(num_agents=5))
    catalogue = {p.id: p for p in PersonaCatalogue.load().personas}
    for agent in generated.config.agents:
        persona = catalogue[agent.attributes["catalogue_id"]]
        assert agent.role == persona.role
        assert agent.persona.startswith(persona.description)
        assert list(agent.goals[: len(persona.goals)]) == list(persona.goals)


def test_the_shipped_catalogue_has_at_least_36_unique_valid_personas():
    catalogue = PersonaCatalogue.load()

    assert len(catalogue) >= 36
    ids = [p.id for p in catalogue.personas]
    assert len(set(ids)) == len(ids)
    for persona in catalogue.personas:
        # Room for a "-500" suffix when the persona is reused.
        assert AGENT_ID.fullmatch(f"{persona.id}-500"), persona.id
        assert persona.name and persona.role and persona.description
        assert persona.traits and persona.goals and persona.tags


def test_a_catalogue_with_duplicate_ids_is_refused():
    entry = {
        "id": "same",
        "name": "A",
        "role": "r",
        "traits": {},
        "goals": [],
        "description": "d",
        "tags": [],
    }
    with pytest.raises(ValueError, match="duplicate"):
        PersonaCatalogue.from_json({"personas": [entry, entry]})


def test_an_engine_accepts_a_custom_catalogue():
    entry = {
        "id": "solo",
        "name": "Solo",
        "role": "Lone voice",
        "traits": {"calm": "yes"},
        "goals": ["Be heard"],
        "description": "The only persona.",
        "tags": ["voice"],
    }
    engine = BuiltinArchitectEngine(PersonaCatalogue.from_json({"personas": [entry]}))
    generated = engine.generate(PROMPT, params(num_agents=3))

    assert [a.id for a in generated.config.agents] == ["solo", "solo-2", "solo-3"]
    assert [s.uri for s in generated.sources] == ["catalogue://personas/solo"]


# -- the factory ---------------------------------------------------------------------------------


def test_create_engine_builds_each_kind_and_refuses_unknown_ones():
    assert isinstance(create_engine("builtin"), BuiltinArchitectEngine)
    remote = create_engine("remote", remote_address="127.0.0.1:1", remote_timeout=2.5)
    try:
        assert isinstance(remote, RemoteArchitectEngine)
        assert remote.timeout_seconds == 2.5
    finally:
        remote.close()
    with pytest.raises(ValueError):
        create_engine("remote")
    with pytest.raises(ValueError):
        create_engine("oracle")


def test_output_does_not_depend_on_the_process_hash_seed(engine):
    """Set and dict order of strings changes per process; the config must not."""
    script = (
        "import sys;"
        "from simulation.v1 import config_pb2;"
        "from service.architect import BuiltinArchitectEngine;"
        "g = BuiltinArchitectEngine().generate(sys.argv[1], "
        "config_pb2.ArchitectParameters(num_agents=12, seed=7));"
        "sys.stdout.buffer.write(g.config.SerializeToString(deterministic=True))"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", script, PROMPT],
            env=env,
            capture_output=True,
            check=True,
            timeout=30,
        )
        outputs.add(result.stdout)
    expected = serialized(engine.generate(PROMPT, params(num_agents=12, seed=7)).config)
    assert outputs == {expected}
