import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from simconfig_client.v1 import config_pb2 as _config_pb2
from simconfig_client.v1 import simulation_pb2 as _simulation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetConfigRequest(_message.Message):
    __slots__ = ("simulation_id", "revision")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("simulation_id", "revision", "config", "sources", "etag", "update_time", "origin")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    etag: str
    update_time: _timestamp_pb2.Timestamp
    origin: _config_pb2.ConfigRevision.Origin
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ..., config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., etag: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[_Union[_config_pb2.ConfigRevision.Origin, str]] = ...) -> None: ...

class UpdateConfigRequest(_message.Message):
    __slots__ = ("simulation_id", "config", "sources", "etag", "update_mask", "validate_only", "description", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    etag: str
    update_mask: _field_mask_pb2.FieldMask
    validate_only: bool
    description: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., etag: _Optional[str] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ..., validate_only: _Optional[bool] = ..., description: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class UpdateConfigResponse(_message.Message):
    __slots__ = ("simulation_id", "revision", "config", "sources", "etag", "update_time", "origin")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    etag: str
    update_time: _timestamp_pb2.Timestamp
    origin: _config_pb2.ConfigRevision.Origin
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ..., config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., etag: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[_Union[_config_pb2.ConfigRevision.Origin, str]] = ...) -> None: ...

class ValidateConfigRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _config_pb2.SimulationConfig
    def __init__(self, config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ...) -> None: ...

class ValidateConfigResponse(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    def __init__(self, valid: _Optional[bool] = ...) -> None: ...

class RunArchitectRequest(_message.Message):
    __slots__ = ("simulation_id", "parameters", "etag", "wait", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    parameters: _config_pb2.ArchitectParameters
    etag: str
    wait: bool
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., parameters: _Optional[_Union[_config_pb2.ArchitectParameters, _Mapping]] = ..., etag: _Optional[str] = ..., wait: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class RunArchitectResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class CreateSimulationWithConfigRequest(_message.Message):
    __slots__ = ("simulation", "config", "sources", "request_id", "validate_only")
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    request_id: str
    validate_only: bool
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ..., config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., request_id: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class CreateSimulationWithConfigResponse(_message.Message):
    __slots__ = ("simulation",)
    SIMULATION_FIELD_NUMBER: _ClassVar[int]
    simulation: _simulation_pb2.Simulation
    def __init__(self, simulation: _Optional[_Union[_simulation_pb2.Simulation, _Mapping]] = ...) -> None: ...

class ListConfigRevisionsRequest(_message.Message):
    __slots__ = ("simulation_id", "page_size", "page_token")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    page_size: int
    page_token: str
    def __init__(self, simulation_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListConfigRevisionsResponse(_message.Message):
    __slots__ = ("revisions", "next_page_token")
    REVISIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    revisions: _containers.RepeatedCompositeFieldContainer[_config_pb2.ConfigRevision]
    next_page_token: str
    def __init__(self, revisions: _Optional[_Iterable[_Union[_config_pb2.ConfigRevision, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RollbackConfigRequest(_message.Message):
    __slots__ = ("simulation_id", "revision", "etag", "description", "request_id")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    etag: str
    description: str
    request_id: str
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ..., etag: _Optional[str] = ..., description: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class RollbackConfigResponse(_message.Message):
    __slots__ = ("simulation_id", "revision", "config", "sources", "etag", "update_time", "origin")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    revision: int
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    etag: str
    update_time: _timestamp_pb2.Timestamp
    origin: _config_pb2.ConfigRevision.Origin
    def __init__(self, simulation_id: _Optional[str] = ..., revision: _Optional[int] = ..., config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ..., etag: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., origin: _Optional[_Union[_config_pb2.ConfigRevision.Origin, str]] = ...) -> None: ...

class DiffConfigRevisionsRequest(_message.Message):
    __slots__ = ("simulation_id", "from_revision", "to_revision")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    from_revision: int
    to_revision: int
    def __init__(self, simulation_id: _Optional[str] = ..., from_revision: _Optional[int] = ..., to_revision: _Optional[int] = ...) -> None: ...

class DiffConfigRevisionsResponse(_message.Message):
    __slots__ = ("simulation_id", "from_revision", "to_revision", "patch", "changed_paths")
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_REVISION_FIELD_NUMBER: _ClassVar[int]
    TO_REVISION_FIELD_NUMBER: _ClassVar[int]
    PATCH_FIELD_NUMBER: _ClassVar[int]
    CHANGED_PATHS_FIELD_NUMBER: _ClassVar[int]
    simulation_id: str
    from_revision: int
    to_revision: int
    patch: _struct_pb2.ListValue
    changed_paths: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, simulation_id: _Optional[str] = ..., from_revision: _Optional[int] = ..., to_revision: _Optional[int] = ..., patch: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ..., changed_paths: _Optional[_Iterable[str]] = ...) -> None: ...
