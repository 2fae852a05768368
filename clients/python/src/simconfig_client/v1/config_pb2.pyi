import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SimulationConfig(_message.Message):
    __slots__ = ("title", "objective", "max_turns", "model", "temperature", "seed", "agents", "environment", "events", "metrics")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    title: str
    objective: str
    max_turns: int
    model: str
    temperature: float
    seed: int
    agents: _containers.RepeatedCompositeFieldContainer[Agent]
    environment: Environment
    events: _containers.RepeatedCompositeFieldContainer[ScheduledEvent]
    metrics: _containers.RepeatedCompositeFieldContainer[Metric]
    def __init__(self, title: _Optional[str] = ..., objective: _Optional[str] = ..., max_turns: _Optional[int] = ..., model: _Optional[str] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., agents: _Optional[_Iterable[_Union[Agent, _Mapping]]] = ..., environment: _Optional[_Union[Environment, _Mapping]] = ..., events: _Optional[_Iterable[_Union[ScheduledEvent, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[Metric, _Mapping]]] = ...) -> None: ...

class Agent(_message.Message):
    __slots__ = ("id", "name", "role", "persona", "attributes", "goals")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    GOALS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    role: str
    persona: str
    attributes: _containers.ScalarMap[str, str]
    goals: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[str] = ..., persona: _Optional[str] = ..., attributes: _Optional[_Mapping[str, str]] = ..., goals: _Optional[_Iterable[str]] = ...) -> None: ...

class Environment(_message.Message):
    __slots__ = ("description", "rules", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    description: str
    rules: _containers.RepeatedScalarFieldContainer[str]
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, description: _Optional[str] = ..., rules: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScheduledEvent(_message.Message):
    __slots__ = ("turn", "description", "agent_ids")
    TURN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AGENT_IDS_FIELD_NUMBER: _ClassVar[int]
    turn: int
    description: str
    agent_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, turn: _Optional[int] = ..., description: _Optional[str] = ..., agent_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "description", "kind")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Metric.Kind]
        COUNTER: _ClassVar[Metric.Kind]
        GAUGE: _ClassVar[Metric.Kind]
        SCORE: _ClassVar[Metric.Kind]
        CATEGORICAL: _ClassVar[Metric.Kind]
        TEXT: _ClassVar[Metric.Kind]
    KIND_UNSPECIFIED: Metric.Kind
    COUNTER: Metric.Kind
    GAUGE: Metric.Kind
    SCORE: Metric.Kind
    CATEGORICAL: Metric.Kind
    TEXT: Metric.Kind
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    kind: Metric.Kind
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., kind: _Optional[_Union[Metric.Kind, str]] = ...) -> None: ...

class Source(_message.Message):
    __slots__ = ("uri", "title", "snippet")
    URI_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    SNIPPET_FIELD_NUMBER: _ClassVar[int]
    uri: str
    title: str
    snippet: str
    def __init__(self, uri: _Optional[str] = ..., title: _Optional[str] = ..., snippet: _Optional[str] = ...) -> None: ...

class ArchitectParameters(_message.Message):
    __slots__ = ("model", "max_turns", "num_agents", "temperature", "seed", "instructions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    NUM_AGENTS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    max_turns: int
    num_agents: int
    temperature: float
    seed: int
    instructions: str
    def __init__(self, model: _Optional[str] = ..., max_turns: _Optional[int] = ..., num_agents: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., instructions: _Optional[str] = ...) -> None: ...

class ConfigRevision(_message.Message):
    __slots__ = ("simulation_id", "revision", "config", "sources", "create_time", "actor", "origin", "description", "changed_paths")
    class Origin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ORIGIN_UNSPECIFIED: _ClassVar[ConfigRevision.Origin]
        ARCHITECT: _ClassVar[ConfigRevision.Origin]
        EDIT: _ClassVar[ConfigRevision.Origin]
        ROLLBACK: _ClassVar[ConfigRevision.Origin]
        IMPORT: _ClassVar[ConfigRevision.Origin]
        TEMPLATE: _ClassVar[ConfigRevision.Origin]
    ORIGIN_UNSPECIFIED: ConfigRevision.Origin
    ARCHITECT: ConfigRevision.Origin
    EDIT: ConfigRevision.Origin
    ROLLBACK: ConfigRevision.Origin
    IMPORT: ConfigRevision.Origin
    TEMPLATE: ConfigRevision.Origin
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PATHS_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    config: SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[Source]
    create_time: _timestamp_pb2.Timestamp
    actor: str
    origin: ConfigRevision.Origin
    description: str
    changed_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ..., config: _Optional[_Union[SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[Source, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., origin: _Optional[_Union[ConfigRevision.Origin, str]] = ..., description: _Optional[str] = ..., changed_paths: _Optional[_Iterable[str]] = ...) -> None: ...
