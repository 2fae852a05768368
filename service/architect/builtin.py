"""The built-in architect: offline, deterministic, drawing agents from a shipped persona catalogue."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from simulation.v1 import config_pb2

from service.architect.engine import ArchitectEngine, ArchitectError, GeneratedConfig

DEFAULT_MODEL = "sim-small-1"
DEFAULT_MAX_TURNS = 20
DEFAULT_NUM_AGENTS = 4
DEFAULT_TEMPERATURE = 0.7

# Bounds of the config document (DESIGN.md); the engine refuses parameters it could only turn into
# an invalid or absurdly large config rather than allocating, say, a billion agents.
MAX_TURNS = 1000
MAX_AGENTS = 500

_TITLE_MAX = 200
_OBJECTIVE_MAX = 4000
_RULE_MAX = 1000
_RULES_MAX = 100
_SNIPPET_MAX = 200
_TOPIC_MAX = 30
# Every agent's goals quote the title; a short form keeps 500 agents well inside the size limit.
_GOAL_TITLE_MAX = 80
# Catalogue ids leave room for a "-500" suffix when personas are reused.
_CATALOGUE_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    "the and for with that this from into what when where which while about after before over "
    "under how why who whom their there they them then than are was were will would could should "
    "can may might must have has had not but all any each some most more less very just also "
    "simulate simulation simulated scenario model agents agent between during against".split()
)

_STANCES = ("cautious", "bold", "cooperative", "sceptical", "pragmatic", "idealistic", "stubborn")
_FOCUSES = (
    "short-term gains",
    "long-term consequences",
    "fairness",
    "their own reputation",
    "the people they represent",
    "hard evidence",
    "building alliances",
)
_BASE_RULES = (
    "Agents act only through their own role and the information they have.",
    "Each turn every agent may make one public statement and one private action.",
    "Agents cannot read each other's private notes.",
    "Commitments made in public are remembered by every agent.",
    "Resources spent in one turn are not available in the next.",
    "Agents may form and break alliances at any time.",
    "Facts introduced by scheduled events are true for every agent.",
)
_SETTINGS = (
    "a mid-sized city",
    "a coastal region",
    "a national capital",
    "an online community",
    "a fast-growing industry",
    "a divided town",
)
_EVENT_TEMPLATES = (
    "A surprising report about {topic} is published.",
    "A sudden shortage puts pressure on everyone involved in {topic}.",
    "Rumours about {topic} spread quickly online.",
    "An outside authority demands a decision on {topic}.",
    "New data about {topic} contradicts the prevailing view.",
    "A public meeting on {topic} is called at short notice.",
    "A key deadline related to {topic} is moved forward.",
)
_METRICS = (
    ("consensus_level", "How close the agents are to agreement, 0 to 1.", config_pb2.Metric.GAUGE),
    ("messages_sent", "Statements made by all agents.", config_pb2.Metric.COUNTER),
    ("alliances_formed", "Alliances agreed between agents.", config_pb2.Metric.COUNTER),
    (
        "objective_score",
        "How well the objective was met, scored at the end.",
        config_pb2.Metric.SCORE,
    ),
    ("outcome", "Which way the scenario resolved.", config_pb2.Metric.CATEGORICAL),
    ("tension", "Level of conflict between agents each turn.", config_pb2.Metric.GAUGE),
    ("final_summary", "A narrative summary of the run.", config_pb2.Metric.TEXT),
    ("trust_index", "Average trust between agents each turn.", config_pb2.Metric.GAUGE),
)


@dataclass(frozen=True)
class Persona:
    """One catalogue entry an agent can be drawn from."""

    id: str
    name: str
    role: str
    traits: dict[str, str]
    goals: tuple[str, ...]
    description: str
    tags: tuple[str, ...]

    @property
    def uri(self) -> str:
        """Where the persona lives, recorded in the config's sources."""
        return f"catalogue://personas/{self.id}"


class PersonaCatalogue:
    """The personas the built-in architect draws agents from, in catalogue order."""

    def __init__(self, personas: Sequence[Persona]) -> None:
        if not personas:
            raise ValueError("persona catalogue is empty")
        ids = [p.id for p in personas]
        if len(set(ids)) != len(ids):
            raise ValueError("persona catalogue has duplicate ids")
        for persona in personas:
            if not _CATALOGUE_ID_RE.fullmatch(persona.id):
                raise ValueError(f"persona id {persona.id!r} is not a valid catalogue id")
        self.personas: tuple[Persona, ...] = tuple(personas)

    def __len__(self) -> int:
        return len(self.personas)

    @classmethod
    def load(cls) -> PersonaCatalogue:
        """Load the catalogue that ships with the package (``personas.json``)."""
        text = resources.files(__package__).joinpath("personas.json").read_text("utf-8")
        return cls.from_json(json.loads(text))

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> PersonaCatalogue:
        """Build a catalogue from the JSON document form (``{"personas": [...]}``)."""
        return cls(
            [
                Persona(
                    id=entry["id"],
                    name=entry["name"],
                    role=entry["role"],
                    traits={str(k): str(v) for k, v in entry.get("traits", {}).items()},
                    goals=tuple(entry.get("goals", ())),
                    description=entry.get("description", ""),
                    tags=tuple(t.lower() for t in entry.get("tags", ())),
                )
                for entry in document["personas"]
            ]
        )


@dataclass(frozen=True)
class _Resolved:
    """Parameters with the engine's defaults filled in."""

    model: str
    max_turns: int
    num_agents: int
    temperature: float
    seed: int
    instructions: str

    def as_proto(self) -> config_pb2.ArchitectParameters:
        return config_pb2.ArchitectParameters(
            model=self.model,
            max_turns=self.max_turns,
            num_agents=self.num_agents,
            temperature=self.temperature,
            seed=self.seed,
            instructions=self.instructions,
        )


class BuiltinArchitectEngine(ArchitectEngine):
    """Deterministic offline architect: same prompt and parameters, byte-identical config."""

    name = "builtin"

    def __init__(self, catalogue: PersonaCatalogue | None = None) -> None:
        self._catalogue = catalogue if catalogue is not None else PersonaCatalogue.load()

    def generate(
        self,
        prompt: str,
        parameters: config_pb2.ArchitectParameters,
        *,
        simulation_id: str = "",
        request_id: str = "",
    ) -> GeneratedConfig:
        """Generate a config; ids are ignored so re-runs of a job give the same output."""
        # NUL is the one character the validator refuses anywhere; nothing else needs cleaning.
        prompt = prompt.replace("\x00", "")
        params = _resolve(parameters)
        rng = _rng_for(prompt, params)
        words = _keywords(prompt)
        personas = self._choose_personas(words, params.num_agents, rng)
        topics = _topics(words, personas)

        title = _title(prompt)
        config = config_pb2.SimulationConfig(
            title=title,
            objective=prompt.strip()[:_OBJECTIVE_MAX],
            max_turns=params.max_turns,
            model=params.model,
            temperature=params.temperature,
            seed=params.seed,
        )
        config.agents.extend(_agents(personas, title, rng))
        _fill_environment(config.environment, prompt, params, topics, rng)
        config.events.extend(_events(params.max_turns, [a.id for a in config.agents], topics, rng))
        config.metrics.extend(_metrics(rng))

        used: dict[str, Persona] = {}
        for persona in personas:
            used.setdefault(persona.id, persona)
        sources = [
            config_pb2.Source(uri=p.uri, title=p.name, snippet=p.description[:_SNIPPET_MAX])
            for p in used.values()
        ]
        return GeneratedConfig(config=config, sources=sources)

    def _choose_personas(self, words: set[str], count: int, rng: random.Random) -> list[Persona]:
        """Rank the catalogue by relevance to the prompt, jittered by the seed, and cycle it."""
        stems = {w[:5] for w in words if len(w) >= 5}

        def relevance(p: Persona) -> float:
            tag_hits = sum(1 for t in p.tags if t in words or (len(t) >= 5 and t[:5] in stems))
            role_hits = sum(1 for w in _WORD_RE.findall(p.role.lower()) if w in words)
            return 2.0 * tag_hits + role_hits

        # The jitter (< 1.5) reorders personas of similar relevance, so the seed varies the cast
        # without letting an irrelevant persona outrank a clearly relevant one.
        scored = [
            (relevance(p) + 1.5 * rng.random(), i, p)
            for i, p in enumerate(self._catalogue.personas)
        ]
        ranking = [p for _, _, p in sorted(scored, key=lambda s: (-s[0], s[1]))]
        return [ranking[i % len(ranking)] for i in range(count)]


def _resolve(parameters: config_pb2.ArchitectParameters) -> _Resolved:
    temperature = (
        parameters.temperature if parameters.HasField("temperature") else DEFAULT_TEMPERATURE
    )
    if not 0 <= parameters.max_turns <= MAX_TURNS:
        raise ArchitectError("INVALID_PARAMETERS", f"max_turns must be 1 to {MAX_TURNS}")
    if not 0 <= parameters.num_agents <= MAX_AGENTS:
        raise ArchitectError("INVALID_PARAMETERS", f"num_agents must be 1 to {MAX_AGENTS}")
    if not math.isfinite(temperature) or not 0 <= temperature <= 2:
        raise ArchitectError("INVALID_PARAMETERS", "temperature must be 0 to 2")
    return _Resolved(
        model=parameters.model or DEFAULT_MODEL,
        max_turns=parameters.max_turns or DEFAULT_MAX_TURNS,
        num_agents=parameters.num_agents or DEFAULT_NUM_AGENTS,
        temperature=temperature,
        seed=parameters.seed,
        instructions=parameters.instructions,
    )


def _rng_for(prompt: str, params: _Resolved) -> random.Random:
    # Hash the *resolved* parameters so that "unset" and "explicitly the default" give the same
    # config; a private Random keeps global random state out of it.
    digest = hashlib.sha256()
    digest.update(prompt.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(params.as_proto().SerializeToString(deterministic=True))
    digest.update(b"\x00")
    digest.update(str(params.seed).encode("ascii"))
    return random.Random(int.from_bytes(digest.digest(), "big"))


def _keywords(prompt: str) -> set[str]:
    return {
        w
        for w in _WORD_RE.findall(prompt.lower())
        if 3 <= len(w) <= _TOPIC_MAX and w not in _STOPWORDS and not w.isdigit()
    }


def _topics(words: set[str], personas: list[Persona]) -> list[str]:
    """Prompt words worth naming in events: catalogue tags first, as they are known nouns."""
    tags = {t for p in personas for t in p.tags}
    # Sorted: set iteration order of str depends on PYTHONHASHSEED, which would break determinism.
    return sorted(words & tags) or sorted(words) or ["the situation"]


def _title(prompt: str) -> str:
    first_line = next((line for line in prompt.strip().splitlines() if line.strip()), "")
    title = " ".join(first_line.split())
    if not title:
        return "Untitled simulation"
    if len(title) > _TITLE_MAX:
        cut = title[: _TITLE_MAX - 1].rsplit(" ", 1)[0] or title[: _TITLE_MAX - 1]
        title = cut.rstrip() + "…"
    return title


def _agents(personas: list[Persona], title: str, rng: random.Random) -> list[config_pb2.Agent]:
    agents = []
    uses: dict[str, int] = {}
    for persona in personas:
        uses[persona.id] = uses.get(persona.id, 0) + 1
        n = uses[persona.id]
        agent_id = persona.id if n == 1 else f"{persona.id}-{n}"
        stance, focus = rng.choice(_STANCES), rng.choice(_FOCUSES)
        attributes = dict(persona.traits)
        attributes.update(stance=stance, focus=focus, catalogue_id=persona.id)
        agents.append(
            config_pb2.Agent(
                id=agent_id,
                name=persona.name if n == 1 else f"{persona.name} ({n})",
                role=persona.role,
                persona=f"{persona.description} In this simulation they are {stance} and care most "
                f"about {focus}.",
                attributes=attributes,
                goals=[*persona.goals, f"Shape the outcome of: {title[:_GOAL_TITLE_MAX]}"],
            )
        )
    return agents


def _fill_environment(
    env: config_pb2.Environment,
    prompt: str,
    params: _Resolved,
    topics: list[str],
    rng: random.Random,
) -> None:
    """Describe the world; caller instructions become rules so the simulator sees them."""
    setting = rng.choice(_SETTINGS)
    summary = " ".join(prompt.split())[:_OBJECTIVE_MAX] or "an open-ended situation"
    env.description = f"The simulation takes place in {setting}. Situation: {summary}"
    rules = rng.sample(_BASE_RULES, 3)
    # Caller instructions become rules, one per line, split into chunks that fit a rule's limit.
    for line in params.instructions.replace("\x00", "").splitlines():
        line = " ".join(line.split())
        chunks = (line[i : i + _RULE_MAX].strip() for i in range(0, len(line), _RULE_MAX))
        rules.extend(chunk for chunk in chunks if chunk)
    env.rules.extend(rules[:_RULES_MAX])
    env.parameters.update(
        {
            "setting": setting,
            "topic": rng.choice(topics),
            "turns": str(params.max_turns),
            "agents": str(params.num_agents),
            "pace": rng.choice(("slow", "steady", "fast")),
        }
    )


def _events(
    max_turns: int, agent_ids: list[str], topics: list[str], rng: random.Random
) -> list[config_pb2.ScheduledEvent]:
    count = min(max_turns, rng.randint(2, 5))
    events = []
    for turn in sorted(rng.sample(range(1, max_turns + 1), count)):
        # An empty target list means every agent; otherwise a few named agents.
        targets = rng.sample(agent_ids, min(len(agent_ids), rng.randint(0, 3)))
        events.append(
            config_pb2.ScheduledEvent(
                turn=turn,
                description=rng.choice(_EVENT_TEMPLATES).format(topic=rng.choice(topics)),
                agent_ids=targets,
            )
        )
    return events


def _metrics(rng: random.Random) -> list[config_pb2.Metric]:
    chosen = sorted(rng.sample(range(len(_METRICS)), rng.randint(3, 5)))
    return [
        config_pb2.Metric(name=_METRICS[i][0], description=_METRICS[i][1], kind=_METRICS[i][2])
        for i in chosen
    ]
