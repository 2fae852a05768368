"""The one validator every simulation config write passes through.

`ConfigValidator.validate` walks a `SimulationConfig` and returns *every* violation it finds, each
with an indexed path into the config (`agents[3].id`, `events[0].agent_ids[1]`,
`agents[2].attributes["mood"]`) and a description a person can act on. The order is stable: fields
in proto field order, repeated fields by index, map entries by sorted key. A caller turns the list
into a `google.rpc.BadRequest`; an empty list means the config is valid.

Paths of violations about a collection as a whole (too many agents, duplicate map keys) use the
collection's path (`agents`, `agents[0].attributes`). The one violation about the config as a whole,
its serialized size, uses the empty path `""` (`WHOLE_CONFIG_PATH`).

Strings are measured in Unicode code points, which is what "characters" means in the proto comments.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulation.v1 import config_pb2

from service.domain.errors import InvalidArgument, Violation

__all__ = [
    "MAX_LABELS",
    "WHOLE_CONFIG_PATH",
    "ConfigLimits",
    "ConfigValidator",
    "check_json_values",
    "check_labels",
    "check_request_id",
    "check_text",
    "is_label_key",
    "require_id",
]

# Path of violations that concern the whole config rather than one field.
WHOLE_CONFIG_PATH = ""

# Longest excerpt of an offending value quoted back in a description; a 1 MB string echoed back in
# an error would bloat the response without helping anyone.
_QUOTE_MAX_CHARS = 40

# Zero-width (non-)joiners are format characters that Persian, Indic scripts and emoji
# sequences need, so a single-line name may hold them.
_ALLOWED_FORMAT_CHARACTERS = frozenset({"\u200c", "\u200d"})

MAX_LABELS = 32
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}\Z")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_REQUEST_ID = 100
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")

_MODEL_PATTERN_TEXT = "[A-Za-z0-9][A-Za-z0-9._:/-]*"
_MODEL_PATTERN = re.compile(_MODEL_PATTERN_TEXT)


@dataclass(frozen=True)
class ConfigLimits:
    """Every limit the validator enforces, with the defaults documented in `config.proto`.

    Lengths are in characters (code points), counts in entries, sizes in bytes.
    """

    title_max_chars: int = 200
    objective_max_chars: int = 4000
    max_turns_min: int = 1
    max_turns_max: int = 1000
    model_max_chars: int = 100
    temperature_min: float = 0.0
    temperature_max: float = 2.0

    agents_min: int = 1
    agents_max: int = 500
    agent_id_max_chars: int = 64
    agent_name_max_chars: int = 200
    agent_role_max_chars: int = 200
    agent_persona_max_chars: int = 4000
    agent_attributes_max: int = 64
    attribute_key_max_chars: int = 64
    attribute_value_max_chars: int = 1000
    agent_goals_max: int = 32
    goal_max_chars: int = 1000

    environment_description_max_chars: int = 8000
    environment_rules_max: int = 100
    rule_max_chars: int = 1000
    environment_parameters_max: int = 64
    parameter_key_max_chars: int = 64
    parameter_value_max_chars: int = 1000

    events_max: int = 1000
    event_description_max_chars: int = 4000

    metrics_max: int = 100
    metric_name_max_chars: int = 64
    metric_description_max_chars: int = 1000

    instructions_max_chars: int = 4000

    sources_max: int = 100
    source_uri_max_chars: int = 2000
    source_title_max_chars: int = 500
    source_snippet_max_chars: int = 2000

    max_config_bytes: int = 1_000_000

    @property
    def agent_id_pattern(self) -> str:
        """The regular expression agent ids must match in full."""
        return f"[a-z0-9][a-z0-9_-]{{0,{self.agent_id_max_chars - 1}}}"

    @property
    def metric_name_pattern(self) -> str:
        """The regular expression metric names must match in full."""
        return f"[a-z][a-z0-9_]{{0,{self.metric_name_max_chars - 1}}}"


def _quote(value: str) -> str:
    """Quote a value for a description, shortened so errors stay small."""
    if len(value) > _QUOTE_MAX_CHARS:
        value = value[:_QUOTE_MAX_CHARS] + "…"
    return repr(value)


def _key_path(path: str, key: str) -> str:
    # JSON string syntax keeps the path unambiguous for keys holding quotes or brackets.
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun[:-1]}ies" if noun.endswith("y") else f"{count} {noun}s"


def text_problem(
    value: str,
    *,
    max_chars: int,
    required: bool = False,
    single_line: bool = False,
    pattern: re.Pattern[str] | None = None,
    pattern_text: str = "",
) -> str | None:
    """What is wrong with one string, or None: the one text check of every request field.

    Lengths are in characters (code points). ``single_line`` is for names shown in lists and
    titles: no control or format characters (Unicode Cc and Cf, e.g. a newline or a bell)
    and no leading or trailing whitespace.
    """
    if "\x00" in value:
        return "must not contain NUL characters"
    if required and not value.strip():
        got = "" if not value else f"; got only whitespace {_quote(value)}"
        return f"is required and must not be blank{got}"
    if len(value) > max_chars:
        return f"must be at most {_plural(max_chars, 'character')}; got {len(value)}"
    if pattern is not None and value and not pattern.fullmatch(value):
        return f"must match {pattern_text}; got {_quote(value)}"
    if single_line:
        return _single_line_problem(value)
    return None


def _single_line_problem(value: str) -> str | None:
    for index, char in enumerate(value):
        if unicodedata.category(char) in ("Cc", "Cf") and char not in _ALLOWED_FORMAT_CHARACTERS:
            return (
                "must be a single line without control characters; "
                f"got U+{ord(char):04X} at position {index}"
            )
    if value != value.strip():
        return "must not start or end with whitespace"
    return None


class _Collector:
    """Accumulates violations and holds the checks shared by every kind of field."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def add(self, path: str, description: str) -> None:
        self.violations.append(Violation(path, description))

    def text(
        self,
        path: str,
        value: str,
        *,
        max_chars: int,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        pattern_text: str = "",
        what: str = "",
    ) -> bool:
        """Check one string; report at most one problem for it. Returns True when it is valid.

        `what` prefixes the description ("key ", "value ") when two strings share a path.
        """
        problem = text_problem(
            value,
            max_chars=max_chars,
            required=required,
            pattern=pattern,
            pattern_text=pattern_text,
        )
        if problem is not None:
            self.add(path, f"{what}{problem}")
            return False
        return True

    def identifier(
        self,
        path: str,
        value: str,
        *,
        index: int,
        seen: dict[str, int],
        collection: str,
        attribute: str,
        max_chars: int,
        pattern: re.Pattern[str],
        pattern_text: str,
    ) -> None:
        """Check a required, patterned identifier that must be unique within ``collection``.

        ``seen`` maps each valid identifier to the index that first used it; a later duplicate
        is reported naming that index.
        """
        if not value:
            self.add(path, "is required")
        elif self.text(
            path, value, max_chars=max_chars, pattern=pattern, pattern_text=pattern_text
        ):
            if value in seen:
                self.add(
                    path,
                    f"must be unique; {_quote(value)} is already the {attribute} of "
                    f"{collection}[{seen[value]}]",
                )
            else:
                seen[value] = index

    def count(
        self, path: str, items: Collection[object], *, maximum: int, noun: str, minimum: int = 0
    ) -> None:
        n = len(items)
        if n < minimum:
            self.add(path, f"must have at least {_plural(minimum, noun)}; got {n}")
        elif n > maximum:
            self.add(path, f"must have at most {_plural(maximum, noun)}; got {n}")

    def string_map(
        self,
        path: str,
        entries: Mapping[str, str],
        *,
        max_entries: int,
        key_max_chars: int,
        value_max_chars: int,
    ) -> None:
        self.count(path, entries, maximum=max_entries, noun="entry")
        # Sorted so the order of violations does not depend on map iteration order; entries
        # past the maximum are already reported by the count and are not walked.
        for key in sorted(entries)[:max_entries]:
            entry_path = _key_path(path, key)
            if not key:
                self.add(entry_path, "key must not be empty")
            else:
                self.text(entry_path, key, max_chars=key_max_chars, what="key ")
            self.text(entry_path, entries[key], max_chars=value_max_chars, what="value ")

    def temperature(self, path: str, value: float, limits: ConfigLimits) -> None:
        if not math.isfinite(value):
            self.add(path, f"must be a finite number; got {value}")
        elif not limits.temperature_min <= value <= limits.temperature_max:
            self.add(
                path,
                f"must be between {limits.temperature_min:g} and {limits.temperature_max:g}; "
                f"got {value:g}",
            )

    def model(self, path: str, value: str, limits: ConfigLimits, *, required: bool) -> None:
        if not value:
            if required:
                self.add(path, "is required, e.g. 'sim-small-1'")
            return
        self.text(
            path,
            value,
            max_chars=limits.model_max_chars,
            pattern=_MODEL_PATTERN,
            pattern_text=_MODEL_PATTERN_TEXT,
        )


class ConfigValidator:
    """The one validator every config write passes through.

    Stateless apart from its limits, so one instance can be shared across threads.
    """

    def __init__(self, limits: ConfigLimits | None = None) -> None:
        self.limits = limits or ConfigLimits()
        self._agent_id_re = re.compile(self.limits.agent_id_pattern)
        self._metric_name_re = re.compile(self.limits.metric_name_pattern)

    def validate(self, config: config_pb2.SimulationConfig) -> list[Violation]:
        """Return every violation in `config`, in a stable order; `[]` when it is valid."""
        limits = self.limits
        out = _Collector()

        out.text("title", config.title, max_chars=limits.title_max_chars, required=True)
        out.text("objective", config.objective, max_chars=limits.objective_max_chars)
        max_turns_valid = self._check_max_turns(out, "max_turns", config.max_turns, optional=False)
        out.model("model", config.model, limits, required=True)
        if config.HasField("temperature"):
            out.temperature("temperature", config.temperature, limits)
        # Any int64 is a valid seed: nothing to check.

        agent_ids = self._check_agents(out, config.agents)
        if config.HasField("environment"):
            self._check_environment(out, config.environment)
        # An invalid max_turns is already reported; judging events against it would flag every
        # event a second time, so fall back to the absolute limit.
        turn_bound = config.max_turns if max_turns_valid else limits.max_turns_max
        self._check_events(out, config.events, agent_ids, turn_bound, max_turns_valid)
        self._check_metrics(out, config.metrics)

        size = config.ByteSize()
        if size > limits.max_config_bytes:
            out.add(
                WHOLE_CONFIG_PATH,
                f"serialized config must be at most {limits.max_config_bytes} bytes; got {size}",
            )
        return out.violations

    def validate_parameters(
        self,
        parameters: config_pb2.ArchitectParameters,
        *,
        field_prefix: str = "parameters",
    ) -> list[Violation]:
        """Return every violation in architect `parameters`; 0 and empty mean "engine default"."""
        limits = self.limits
        out = _Collector()
        prefix = f"{field_prefix}." if field_prefix else ""

        out.model(f"{prefix}model", parameters.model, limits, required=False)
        self._check_max_turns(out, f"{prefix}max_turns", parameters.max_turns, optional=True)
        n = parameters.num_agents
        if n < 0 or n > limits.agents_max:
            out.add(
                f"{prefix}num_agents",
                f"must be 0 (engine default) or between {limits.agents_min} and "
                f"{limits.agents_max}; got {n}",
            )
        if parameters.HasField("temperature"):
            out.temperature(f"{prefix}temperature", parameters.temperature, limits)
        out.text(
            f"{prefix}instructions",
            parameters.instructions,
            max_chars=limits.instructions_max_chars,
        )
        return out.violations

    def validate_sources(
        self, sources: Sequence[config_pb2.Source], field_prefix: str = "sources"
    ) -> list[Violation]:
        """Return every violation in the `sources` stored with a config revision.

        Paths are indexed under `field_prefix`: `sources[3].uri`.
        """
        limits = self.limits
        out = _Collector()
        out.count(field_prefix, sources, maximum=limits.sources_max, noun="source")
        for i, source in enumerate(sources[: limits.sources_max]):
            path = f"{field_prefix}[{i}]"
            out.text(
                f"{path}.uri", source.uri, max_chars=limits.source_uri_max_chars, required=True
            )
            out.text(f"{path}.title", source.title, max_chars=limits.source_title_max_chars)
            out.text(f"{path}.snippet", source.snippet, max_chars=limits.source_snippet_max_chars)
        return out.violations

    # -- sections --------------------------------------------------------------------------------

    def _check_max_turns(self, out: _Collector, path: str, value: int, *, optional: bool) -> bool:
        low, high = self.limits.max_turns_min, self.limits.max_turns_max
        if optional and value == 0:
            return True
        if low <= value <= high:
            return True
        if optional:
            out.add(path, f"must be 0 (engine default) or between {low} and {high}; got {value}")
        else:
            out.add(path, f"must be between {low} and {high}; got {value}")
        return False

    def _check_agents(self, out: _Collector, agents: Sequence[config_pb2.Agent]) -> frozenset[str]:
        """Check the agents; return every non-empty id, for events to be checked against."""
        limits = self.limits
        out.count(
            "agents", agents, minimum=limits.agents_min, maximum=limits.agents_max, noun="agent"
        )
        first_index: dict[str, int] = {}
        # Past the maximum, the count above says it all: walking 100,000 agents would only
        # produce violations no client can receive.
        for i, agent in enumerate(agents[: limits.agents_max]):
            if self._agent_is_clean(agent, first_index):
                first_index[agent.id] = i
                continue
            path = f"agents[{i}]"
            out.identifier(
                f"{path}.id",
                agent.id,
                index=i,
                seen=first_index,
                collection="agents",
                attribute="id",
                max_chars=limits.agent_id_max_chars,
                pattern=self._agent_id_re,
                pattern_text=limits.agent_id_pattern,
            )
            out.text(
                f"{path}.name", agent.name, max_chars=limits.agent_name_max_chars, required=True
            )
            out.text(f"{path}.role", agent.role, max_chars=limits.agent_role_max_chars)
            out.text(f"{path}.persona", agent.persona, max_chars=limits.agent_persona_max_chars)
            out.string_map(
                f"{path}.attributes",
                agent.attributes,
                max_entries=limits.agent_attributes_max,
                key_max_chars=limits.attribute_key_max_chars,
                value_max_chars=limits.attribute_value_max_chars,
            )
            out.count(f"{path}.goals", agent.goals, maximum=limits.agent_goals_max, noun="goal")
            for j, goal in enumerate(agent.goals[: limits.agent_goals_max]):
                out.text(f"{path}.goals[{j}]", goal, max_chars=limits.goal_max_chars, required=True)
        # Ids that fail their own checks still count as "existing" so an event naming such an
        # agent is not reported twice for the same mistake.
        return frozenset(agent.id for agent in agents if agent.id)

    def _agent_is_clean(self, agent: config_pb2.Agent, seen: Mapping[str, int]) -> bool:
        """True only when the checks below would find nothing wrong with ``agent``.

        The fast path of a valid config (nearly every write): the same limits tested inline,
        with no path strings built and no calls per field. Anything it is unsure of goes to the
        full checks, which alone word the violations.
        """
        limits = self.limits
        agent_id, name = agent.id, agent.name
        if (
            not agent_id
            or agent_id in seen
            or len(agent_id) > limits.agent_id_max_chars
            or not self._agent_id_re.fullmatch(agent_id)
            or len(name) > limits.agent_name_max_chars
            or not name.strip()
            or len(agent.role) > limits.agent_role_max_chars
            or len(agent.persona) > limits.agent_persona_max_chars
            or "\x00" in name
            or "\x00" in agent.role
            or "\x00" in agent.persona
        ):
            return False
        attributes = agent.attributes
        if len(attributes) > limits.agent_attributes_max:
            return False
        key_max, value_max = limits.attribute_key_max_chars, limits.attribute_value_max_chars
        for key, value in attributes.items():
            if (
                not key
                or len(key) > key_max
                or len(value) > value_max
                or "\x00" in key
                or "\x00" in value
            ):
                return False
        goals = agent.goals
        if len(goals) > limits.agent_goals_max:
            return False
        goal_max = limits.goal_max_chars
        return all(len(goal) <= goal_max and goal.strip() and "\x00" not in goal for goal in goals)

    def _check_environment(self, out: _Collector, environment: config_pb2.Environment) -> None:
        limits = self.limits
        out.text(
            "environment.description",
            environment.description,
            max_chars=limits.environment_description_max_chars,
        )
        out.count(
            "environment.rules",
            environment.rules,
            maximum=limits.environment_rules_max,
            noun="rule",
        )
        for j, rule in enumerate(environment.rules[: limits.environment_rules_max]):
            out.text(
                f"environment.rules[{j}]", rule, max_chars=limits.rule_max_chars, required=True
            )
        out.string_map(
            "environment.parameters",
            environment.parameters,
            max_entries=limits.environment_parameters_max,
            key_max_chars=limits.parameter_key_max_chars,
            value_max_chars=limits.parameter_value_max_chars,
        )

    def _check_events(
        self,
        out: _Collector,
        events: Sequence[config_pb2.ScheduledEvent],
        agent_ids: frozenset[str],
        turn_bound: int,
        max_turns_valid: bool,
    ) -> None:
        limits = self.limits
        out.count("events", events, maximum=limits.events_max, noun="event")
        for i, event in enumerate(events[: limits.events_max]):
            path = f"events[{i}]"
            if event.turn < 1:
                out.add(f"{path}.turn", f"must be at least 1; got {event.turn}")
            elif event.turn > turn_bound:
                if max_turns_valid:
                    out.add(f"{path}.turn", f"is after max_turns ({turn_bound}); got {event.turn}")
                else:
                    out.add(f"{path}.turn", f"must be at most {turn_bound}; got {event.turn}")
            out.text(
                f"{path}.description",
                event.description,
                max_chars=limits.event_description_max_chars,
                required=True,
            )
            # More targets than a config can have agents is reported once, not walked.
            out.count(
                f"{path}.agent_ids", event.agent_ids, maximum=limits.agents_max, noun="agent id"
            )
            seen: dict[str, int] = {}
            for j, agent_id in enumerate(event.agent_ids[: limits.agents_max]):
                id_path = f"{path}.agent_ids[{j}]"
                if agent_id in seen:
                    out.add(
                        id_path,
                        f"must not repeat an agent; {_quote(agent_id)} is already "
                        f"{path}.agent_ids[{seen[agent_id]}]",
                    )
                    continue
                seen[agent_id] = j
                if "\x00" in agent_id:
                    out.add(id_path, "must not contain NUL characters")
                elif agent_id not in agent_ids:
                    out.add(
                        id_path,
                        f"unknown agent id {_quote(agent_id)}; it must name an "
                        "agent of this config",
                    )

    def _check_metrics(self, out: _Collector, metrics: Sequence[config_pb2.Metric]) -> None:
        limits = self.limits
        kind_enum = config_pb2.Metric.Kind
        valid_kinds = [name for name in kind_enum.keys() if kind_enum.Value(name) != 0]
        out.count("metrics", metrics, maximum=limits.metrics_max, noun="metric")
        first_index: dict[str, int] = {}
        for i, metric in enumerate(metrics[: limits.metrics_max]):
            path = f"metrics[{i}]"
            out.identifier(
                f"{path}.name",
                metric.name,
                index=i,
                seen=first_index,
                collection="metrics",
                attribute="name",
                max_chars=limits.metric_name_max_chars,
                pattern=self._metric_name_re,
                pattern_text=limits.metric_name_pattern,
            )
            out.text(
                f"{path}.description",
                metric.description,
                max_chars=limits.metric_description_max_chars,
            )
            expected = ", ".join(valid_kinds)
            if metric.kind == kind_enum.KIND_UNSPECIFIED:
                out.add(f"{path}.kind", f"is required; one of {expected}")
            elif metric.kind not in kind_enum.values():
                # proto3 enums are open: unknown numbers survive parsing and must be caught here.
                out.add(f"{path}.kind", f"unknown value {metric.kind}; expected one of {expected}")


# -- request fields --------------------------------------------------------------------------------
# Each check returns the violations it found rather than raising, so a request with several
# problems reports all of them in one BadRequest.


def check_text(
    value: str, field: str, *, max_length: int, required: bool = False, single_line: bool = False
) -> list[Violation]:
    """Length (in characters) and content checks for a string field (see :func:`text_problem`)."""
    problem = text_problem(value, max_chars=max_length, required=required, single_line=single_line)
    return [] if problem is None else [Violation(field, problem)]


def is_label_key(key: str) -> bool:
    """AIP label keys: 1 to 63 of a-z, 0-9, _ and -, starting with a letter."""
    return _LABEL_KEY.match(key) is not None


def check_labels(labels: Mapping[str, str], field: str = "labels") -> list[Violation]:
    """AIP-style label rules: at most 32; lower-case keys and values."""
    violations = []
    if len(labels) > MAX_LABELS:
        violations.append(
            Violation(field, f"must have at most {MAX_LABELS} entries; got {len(labels)}")
        )
    # Keys past the maximum are covered by the count and not walked one by one.
    for key in sorted(labels)[:MAX_LABELS]:
        if not is_label_key(key):
            violations.append(
                Violation(
                    f"{field}[{key!r}]",
                    "key must be 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter",
                )
            )
        if not _LABEL_VALUE.match(labels[key]):
            violations.append(
                Violation(
                    f"{field}[{key!r}]",
                    "value must be at most 63 characters of a-z, 0-9, _ and -",
                )
            )
    return violations


def check_request_id(request_id: str, field: str = "request_id") -> list[Violation]:
    """An idempotency key (AIP-155): at most 100 printable ASCII characters."""
    if len(request_id) > MAX_REQUEST_ID:
        return [Violation(field, f"must be at most {MAX_REQUEST_ID} characters")]
    if request_id and not all(33 <= ord(ch) <= 126 for ch in request_id):
        return [Violation(field, "must be printable ASCII without spaces")]
    return []


def require_id(value: str, field: str) -> None:
    """An id field must be present and of sane length (``INVALID_ARGUMENT`` otherwise)."""
    if not value:
        raise InvalidArgument([Violation(field, "is required")])
    if len(value) > 100:
        raise InvalidArgument([Violation(field, "must be at most 100 characters")])
    if _CONTROL_CHARACTER.search(value):
        raise InvalidArgument([Violation(field, "must not contain control characters")])


def check_json_values(value: Any, field: str, *, limit: int = 20) -> list[Violation]:
    """Values both databases can store as JSON: finite numbers, no NUL in keys or strings.

    Paths name the offending place (``results.scores[2]``, ``analysis["a\\u0000b"]``); at most
    ``limit`` are reported.
    """
    found: list[Violation] = []

    def walk(item: Any, path: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if _PLAIN_KEY.match(key) else f"{path}[{key!r}]"
                if "\x00" in key:
                    found.append(Violation(child_path, "keys must not contain NUL characters"))
                walk(child, child_path)
        elif isinstance(item, list):
            for index, child in enumerate(item):
                walk(child, f"{path}[{index}]")
        elif isinstance(item, str) and "\x00" in item:
            found.append(Violation(path, "must not contain NUL characters"))
        elif isinstance(item, float) and not math.isfinite(item):
            found.append(Violation(path, f"must be a finite number; got {item}"))

    walk(value, field)
    return found
