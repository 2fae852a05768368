from google.api import field_behavior_pb2 as _field_behavior_pb2
from simconfig_client.v1 import config_pb2 as _config_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GenerateConfigRequest(_message.Message):
    __slots__ = ("prompt", "parameters", "simulation_id", "request_id")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    SIMULATION_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    parameters: _config_pb2.ArchitectParameters
    simulation_id: str
    request_id: str
    def __init__(self, prompt: _Optional[str] = ..., parameters: _Optional[_Union[_config_pb2.ArchitectParameters, _Mapping]] = ..., simulation_id: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class GenerateConfigResponse(_message.Message):
    __slots__ = ("config", "sources")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    config: _config_pb2.SimulationConfig
    sources: _containers.RepeatedCompositeFieldContainer[_config_pb2.Source]
    def __init__(self, config: _Optional[_Union[_config_pb2.SimulationConfig, _Mapping]] = ..., sources: _Optional[_Iterable[_Union[_config_pb2.Source, _Mapping]]] = ...) -> None: ...
