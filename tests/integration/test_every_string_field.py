"""A NUL in any string field of any RPC is INVALID_ARGUMENT naming the field, never INTERNAL.

The requests are generated from the request descriptors: every string field, repeated string,
map key and value, Struct key and value and field mask path reachable from each request
(nested messages included) gets a NUL, one field per call, against a real server on
PostgreSQL, which is the engine that refuses NUL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf import symbol_database
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import storage
from service.app import tenants
from service.server import SERVICES, create_server
from service.settings import Settings

NUL_TEXT = "a\x00b"
# Deep enough for every field of a config (config.agents[0].attributes["k"]); cycles stop here.
MAX_DEPTH = 5

Fill = Callable[[object], None]


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _key_path(path: str, key: str) -> str:
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def nul_fillers(
    descriptor: Descriptor, prefix: str = "", depth: int = 0
) -> Iterator[tuple[str, Fill]]:
    """Yields (path the server must name, function putting a NUL there) for each string."""
    if depth > MAX_DEPTH:
        return
    for field in descriptor.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        yield from _field_fillers(field, path, depth)


def _field_fillers(field: FieldDescriptor, path: str, depth: int):
    name = field.name
    repeated = field.is_repeated
    if _is_map(field):
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        if key_field.type == FieldDescriptor.TYPE_STRING:
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                yield _key_path(path, NUL_TEXT), lambda m: getattr(m, name)[NUL_TEXT].SetInParent()
            elif value_field.type == FieldDescriptor.TYPE_STRING:
                yield _key_path(path, NUL_TEXT), lambda m: getattr(m, name).update({NUL_TEXT: "v"})
        if value_field.type == FieldDescriptor.TYPE_STRING:
            yield _key_path(path, "k"), lambda m: getattr(m, name).update({"k": NUL_TEXT})
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            for inner_path, fill in nul_fillers(
                value_field.message_type, _key_path(path, "k"), depth + 1
            ):
                yield inner_path, lambda m, fill=fill: fill(getattr(m, name)["k"])
        return
    if field.type == FieldDescriptor.TYPE_STRING:
        if repeated:
            yield f"{path}[0]", lambda m: getattr(m, name).append(NUL_TEXT)
        else:
            yield path, lambda m: setattr(m, name, NUL_TEXT)
        return
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return
    element_path = f"{path}[0]" if repeated else path

    def element(m):
        return getattr(m, name).add() if repeated else getattr(m, name)

    kind = field.message_type.full_name
    if kind == "google.protobuf.Struct":
        yield _key_path(element_path, NUL_TEXT), lambda m: element(m).update({NUL_TEXT: 1})
        yield _key_path(element_path, "k"), lambda m: element(m).update({"k": NUL_TEXT})
        return
    if kind in ("google.protobuf.Value", "google.protobuf.ListValue"):
        return
    for inner_path, fill in nul_fillers(field.message_type, element_path, depth + 1):
        yield inner_path, lambda m, fill=fill: fill(element(m))


def methods():
    return [method for service in SERVICES for method in service.methods]


@pytest.fixture(scope="module")
def server_channel(tmp_path_factory, postgres_url):
    database = storage.Database(postgres_url)
    database.migrate()
    tenant = tenants.new_tenant(database, "every-string-field")
    key = tenants.issue_key(database, tenant.id).secret
    server, port = create_server(
        Settings(port=0, data_dir=tmp_path_factory.mktemp("nul"), architect_workers=0),
        database=database,
    )
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel, (("x-api-key", key),)
    channel.close()
    server.stop(0)
    database.dispose()


def field_paths(error: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(error)
    if status is None:
        return []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            return [v.field for v in bad_request.field_violations]
    return []


def test_the_generator_reaches_nested_fields():
    paths = {path for method in methods() for path, _ in nul_fillers(method.input_type)}
    assert 'config.agents[0].attributes["k"]' in paths
    assert 'simulation.labels["a\\u0000b"]' in paths
    assert "update_mask.paths[0]" in paths
    assert len(paths) > 50


@pytest.mark.parametrize("method", methods(), ids=lambda m: m.name)
def test_nul_in_every_string_field_is_invalid_argument_naming_it(server_channel, method):
    channel, metadata = server_channel
    request_class = symbol_database.Default().GetSymbol(method.input_type.full_name)
    response_class = symbol_database.Default().GetSymbol(method.output_type.full_name)
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.server_streaming:
        call = channel.unary_stream(
            path,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
    else:
        call = channel.unary_unary(
            path,
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
    wrong = []
    cases = list(nul_fillers(method.input_type))
    assert cases, f"{method.name} has no string field to test"
    for field_path, fill in cases:
        request = request_class()
        fill(request)
        try:
            answer = call(request, metadata=metadata, timeout=30)
            if method.server_streaming:
                list(answer)
        except grpc.RpcError as error:
            named = field_paths(error)
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT or field_path not in named:
                wrong.append((field_path, error.code().name, error.details(), named[:3]))
        else:
            wrong.append((field_path, "OK", "", []))
    assert not wrong, f"{len(wrong)} of {len(cases)} fields: {wrong[:10]}"
