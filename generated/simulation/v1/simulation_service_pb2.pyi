from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from simulation.v1 import config_pb2 as _config_pb2
from simulation.v1 import simulation_pb2 as _simulation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateSimulationRequest(_message.Message):
    __slots__ = ("simulation", "parameters", "request_id", "wait", "validate_only")
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    parameters: _config_pb2.ArchitectParameters
    request_id: str
    wait: bool
    validate_only: bool
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ..., parameters: _Optional[_Union[_config_pb2.ArchitectParameters, _Mapping]] = ..., request_id: _Optional[str] = ..., wait: _Optional[bool] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateSimulationResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class GetSimulationRequest(_message.Message):
    __slots__ = ("simulation_id",)
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    def __init__(self, simulation_id: _Optional[str] = ...) -> None: ...

class GetSimulationResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class ListSimulationsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter", "order_by")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: str
    order_by: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[str] = ..., order_by: _Optional[str] = ...) -> None: ...

class ListSimulationsResponse(_message.Message):
    __slots__ = ("simulations", "next_page_token")
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    simulations: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.Simulation]
    next_page_token: str
    def __init__(self, simulations: _Optional[_Iterable[_Union[_simulation_pb2.Simulation, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateSimulationRequest(_message.Message):
    __slots__ = ("simulation", "update_mask", "request_id")
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    update_mask: _field_mask_pb2.FieldMask
    request_id: str
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateSimulationResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class DeleteSimulationRequest(_message.Message):
    __slots__ = ("simulation_id", "etag", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    etag: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteSimulationResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartRunRequest(_message.Message):
    __slots__ = ("simulation_id", "etag", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    etag: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartRunResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class CompleteRunRequest(_message.Message):
    __slots__ = ("simulation_id", "results", "etag", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    results: _struct_pb2.Struct
    etag: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., results: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class CompleteRunResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class FailRunRequest(_message.Message):
    __slots__ = ("simulation_id", "error", "etag", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    error: str
    etag: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., error: _Optional[str] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class FailRunResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class AttachAnalysisRequest(_message.Message):
    __slots__ = ("simulation_id", "analysis", "etag", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    analysis: _struct_pb2.Struct
    etag: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., analysis: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., etag: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class AttachAnalysisResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class ListSimulationEventsRequest(_message.Message):
    __slots__ = ("simulation_id", "page_size", "page_token")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    page_size: int
    page_token: str
    def __init__(self, simulation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSimulationEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.SimulationEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_simulation_pb2.SimulationEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class BatchGetSimulationsRequest(_message.Message):
    __slots__ = ("simulation_ids",)
    SIMULATION_IDS_FIELD_NUMBER: _ClassVar[int]
    simulation_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, simulation_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BatchGetSimulationsResponse(_message.Message):
    __slots__ = ("simulations",)
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    simulations: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.Simulation]
    def __init__(self, simulations: _Optional[_Iterable[_Union[_simulation_pb2.Simulation, _Mapping]]] = ...) -> None: ...

class BatchMoveSimulationsRequest(_message.Message):
    __slots__ = ("simulation_ids", "scenario_id", "request_id")
    SIMULATION_IDS_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_ids: _containers.RepeatedScalarFieldContainer[str]
    scenario_id: str
    request_id: str
    def __init__(self, simulation_ids: _Optional[_Iterable[str]] = ..., scenario_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class BatchMoveSimulationsResponse(_message.Message):
    __slots__ = ("simulations",)
    SIMULATIONS_FIELD_NUMBER: _ClassVar[int]
    simulations: _containers.RepeatedCompositeFieldContainer[_simulation_pb2.Simulation]
    def __init__(self, simulations: _Optional[_Iterable[_Union[_simulation_pb2.Simulation, _Mapping]]] = ...) -> None: ...

class WatchEventsRequest(_message.Message):
    __slots__ = ("simulation_id", "scenario_id", "kinds", "after_event_id", "resume_token")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    scenario_id: str
    kinds: _containers.RepeatedScalarFieldContainer[_simulation_pb2.SimulationEvent.Kind]
    after_event_id: int
    resume_token: str
    def __init__(self, simulation_id: _Optional[str] = ..., scenario_id: _Optional[str] = ..., kinds: _Optional[_Iterable[_Union[_simulation_pb2.SimulationEvent.Kind, str]]] = ..., after_event_id: _Optional[int] = ..., resume_token: _Optional[str] = ...) -> None: ...

class WatchEventsResponse(_message.Message):
    __slots__ = ("event", "resume_token")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKEN_FIELD_NUMBER: _ClassVar[int]
    event: _simulation_pb2.SimulationEvent
    resume_token: str
    def __init__(self, event: _Optional[_Union[_simulation_pb2.SimulationEvent, _Mapping]] = ..., resume_token: _Optional[str] = ...) -> None: ...
