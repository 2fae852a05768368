import datetime

from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from simulation.v1 import config_pb2 as _config_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Simulation(_message.Message):
    __slots__ = ("id", "scenario_id", "name", "prompt", "labels", "status", "config_revision", "architect_parameters", "sources", "results", "analysis", "last_error", "create_time", "update_time", "etag")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[Simulation.Status]
        PENDING: _ClassVar[Simulation.Status]
        GENERATING_CONFIG: _ClassVar[Simulation.Status]
        COMPLETED_CONFIG: _ClassVar[Simulation.Status]
        RUNNING: _ClassVar[Simulation.Status]
        COMPLETED: _ClassVar[Simulation.Status]
        FAILED: _ClassVar[Simulation.Status]
    STATUS_UNSPECIFIED: Simulation.Status
    PENDING: Simulation.Status
    GENERATING_CONFIG: Simulation.Status
    COMPLETED_CONFIG: Simulation.Status
    RUNNING: Simulation.Status
    COMPLETED: Simulation.Status
    FAILED: Simulation.Status
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONFIG_REVISION_FIELD_NUMBER: _ClassVar[int]
    ARCHITECT_PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    id: str
    scenario_id: str
    name: str
    prompt: str
    labels: _containers.ScalarMap[str, str]
    status: Simulation.Status
    config_revision: int
    architect_parameters: _config_pb2.ArchitectParameters
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    results: _struct_pb2.Struct
    analysis: _struct_pb2.Struct
    last_error: SimulationError
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., name: _Optional[str] = ..., prompt: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., status: _Optional[_Union[Simulation.Status, str]] = ..., config_revision: _Optional[int] = ..., architect_parameters: _Optional[_Union[_config_pb2.ArchitectParameters, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., analysis: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., last_error: _Optional[_Union[SimulationError, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class SimulationError(_message.Message):
    __slots__ = ("reason", "message", "violations")
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    message: str
    violations: _containers.RepeatedCompositeFieldContainer[ConfigViolation]
    def __init__(self, reason: _Optional[str] = ..., message: _Optional[str] = ..., violations: _Optional[_Iterable[_Union[ConfigViolation, _Mapping]]] = ...) -> None: ...

class ConfigViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SimulationEvent(_message.Message):
    __slots__ = ("id", "simulation_id", "kind", "from_status", "to_status", "revision", "actor", "reason", "details", "create_time")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[SimulationEvent.Kind]
        CREATED: _ClassVar[SimulationEvent.Kind]
        STATUS_CHANGED: _ClassVar[SimulationEvent.Kind]
        CONFIG_CHANGED: _ClassVar[SimulationEvent.Kind]
        ANALYSIS_ATTACHED: _ClassVar[SimulationEvent.Kind]
        METADATA_CHANGED: _ClassVar[SimulationEvent.Kind]
        ARCHITECT_QUEUED: _ClassVar[SimulationEvent.Kind]
        DELETED: _ClassVar[SimulationEvent.Kind]
    KIND_UNSPECIFIED: SimulationEvent.Kind
    CREATED: SimulationEvent.Kind
    STATUS_CHANGED: SimulationEvent.Kind
    CONFIG_CHANGED: SimulationEvent.Kind
    ANALYSIS_ATTACHED: SimulationEvent.Kind
    METADATA_CHANGED: SimulationEvent.Kind
    ARCHITECT_QUEUED: SimulationEvent.Kind
    DELETED: SimulationEvent.Kind
    ID_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    id: int
    simulation_id: str
    kind: SimulationEvent.Kind
    from_status: Simulation.Status
    to_status: Simulation.Status
    revision: int
    actor: str
    reason: str
    details: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[int] = ..., simulation_id: _Optional[str] = ..., kind: _Optional[_Union[SimulationEvent.Kind, str]] = ..., from_status: _Optional[_Union[Simulation.Status, str]] = ..., to_status: _Optional[_Union[Simulation.Status, str]] = ..., revision: _Optional[int] = ..., actor: _Optional[str] = ..., reason: _Optional[str] = ..., details: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
