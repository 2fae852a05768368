"""Hypothesis strategies for simulation configs, shared by every test that needs one.

`valid_configs()` draws configs the validator must accept: varied shapes, unicode text, agents
with attributes and goals, events that target existing agents, metrics of every kind. Sizes stay
small so property tests run fast; the limits themselves are covered by example tests.
"""

from __future__ import annotations

from hypothesis import strategies as st
from simulation.v1 import config_pb2

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

METRIC_KINDS = tuple(
    value for name, value in config_pb2.Metric.Kind.items() if name != "KIND_UNSPECIFIED"
)

# Any code point a proto string can hold, minus NUL (rejected by the validator).
_CHARACTERS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def text(*, min_size: int = 0, max_size: int = 30) -> st.SearchStrategy[str]:
    """Unicode text the validator accepts in a free-text field."""
    return st.text(_CHARACTERS, min_size=min_size, max_size=max_size)


def required_text(*, max_size: int = 30) -> st.SearchStrategy[str]:
    """Unicode text with at least one non-whitespace character (required fields)."""
    return text(min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


def agent_ids() -> st.SearchStrategy[str]:
    """Ids matching `[a-z0-9][a-z0-9_-]{0,63}`, mostly short."""
    return st.from_regex(r"[a-z0-9][a-z0-9_-]{0,12}", fullmatch=True)


def metric_names() -> st.SearchStrategy[str]:
    """Names matching `[a-z][a-z0-9_]{0,63}`, mostly short."""
    return st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


def model_names() -> st.SearchStrategy[str]:
    """Model names matching `[A-Za-z0-9][A-Za-z0-9._:/-]*`, at most 100 characters."""
    return st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True)


def string_maps(*, max_size: int = 4) -> st.SearchStrategy[dict[str, str]]:
    """Attribute or parameter maps: non-empty keys, any valid values."""
    return st.dictionaries(text(min_size=1, max_size=16), text(max_size=30), max_size=max_size)


def temperatures() -> st.SearchStrategy[float]:
    """Finite temperatures within 0..2, including both ends."""
    return st.floats(min_value=0.0, max_value=2.0, allow_nan=False, allow_infinity=False)


@st.composite
def agents(draw: st.DrawFn, agent_id: str) -> config_pb2.Agent:
    """One valid agent with the given id."""
    return config_pb2.Agent(
        id=agent_id,
        name=draw(required_text()),
        role=draw(text(max_size=20)),
        persona=draw(text(max_size=60)),
        attributes=draw(string_maps()),
        goals=draw(st.lists(required_text(), max_size=3)),
    )


@st.composite
def environments(draw: st.DrawFn) -> config_pb2.Environment:
    """A valid environment, sometimes empty."""
    return config_pb2.Environment(
        description=draw(text(max_size=60)),
        rules=draw(st.lists(required_text(), max_size=3)),
        parameters=draw(string_maps()),
    )


@st.composite
def events(draw: st.DrawFn, max_turns: int, ids: list[str]) -> config_pb2.ScheduledEvent:
    """A valid event within `max_turns` that targets some (or, when empty, all) of `ids`."""
    targets = draw(st.lists(st.sampled_from(ids), unique=True, max_size=min(len(ids), 4)))
    return config_pb2.ScheduledEvent(
        turn=draw(st.integers(min_value=1, max_value=max_turns)),
        description=draw(required_text(max_size=40)),
        agent_ids=targets,
    )


@st.composite
def metrics(draw: st.DrawFn, name: str) -> config_pb2.Metric:
    """A valid metric with the given name and any known kind."""
    return config_pb2.Metric(
        name=name,
        description=draw(text(max_size=40)),
        kind=draw(st.sampled_from(METRIC_KINDS)),
    )


@st.composite
def valid_configs(draw: st.DrawFn, *, max_agents: int = 5) -> config_pb2.SimulationConfig:
    """A random `SimulationConfig` that the validator accepts."""
    max_turns = draw(st.one_of(st.integers(1, 1000), st.sampled_from([1, 1000])))
    ids = draw(st.lists(agent_ids(), min_size=1, max_size=max_agents, unique=True))
    config = config_pb2.SimulationConfig(
        title=draw(required_text(max_size=40)),
        objective=draw(text(max_size=80)),
        max_turns=max_turns,
        model=draw(model_names()),
        agents=[draw(agents(agent_id)) for agent_id in ids],
        events=draw(st.lists(events(max_turns, ids), max_size=5)),
    )
    names = draw(st.lists(metric_names(), max_size=len(METRIC_KINDS) + 1, unique=True))
    config.metrics.extend(draw(metrics(name)) for name in names)
    # Optional fields: drawn separately so "unset" and "set to 0" both occur.
    temperature = draw(st.none() | temperatures())
    if temperature is not None:
        config.temperature = temperature
    seed = draw(st.none() | st.integers(INT64_MIN, INT64_MAX))
    if seed is not None:
        config.seed = seed
    environment = draw(st.none() | environments())
    if environment is not None:
        config.environment.CopyFrom(environment)
    return config


def config_with_every_metric_kind() -> config_pb2.SimulationConfig:
    """A small valid config whose metrics cover every known kind once."""
    config = config_pb2.SimulationConfig(
        title="Every kind",
        max_turns=10,
        model="sim-small-1",
        agents=[config_pb2.Agent(id="a", name="A")],
    )
    for kind in METRIC_KINDS:
        name = config_pb2.Metric.Kind.Name(kind).lower()
        config.metrics.add(name=name, kind=kind)
    return config


def copy_config(config: config_pb2.SimulationConfig) -> config_pb2.SimulationConfig:
    """An independent copy, for mutating without touching the drawn example."""
    copied = config_pb2.SimulationConfig()
    copied.CopyFrom(config)
    return copied
