"""A made-up proto file with a REST route whose body has maps of messages.

The service's own protos have no map whose values are messages, so the body-field check's
handling of them (deploy/gateway.py's tables, deploy/body_fields.lua's scanner) is tested on
this descriptor instead:

    package synthetic.v1;
    service ThingService {
      rpc PutThing(Thing) returns (Thing) { option (google.api.http) = {put: "/v1/things/{id}" body: "*"}; }
    }
    message Thing {
      string id = 1;
      map<string, Part> parts = 2;        // values are messages: checked
      map<string, string> labels = 3;     // values are scalars: the transcoder's
      map<string, google.protobuf.Struct> extras = 4;  // google.* values: the transcoder's
    }
    message Part { string part_name = 1; Detail detail = 2; map<string, Detail> more = 3; }
    message Detail { int32 size = 1; }
"""

from __future__ import annotations

from pathlib import Path

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, struct_pb2

Field = descriptor_pb2.FieldDescriptorProto
PACKAGE = "synthetic.v1"


def _scalar(message, name: str, number: int, kind: int) -> None:
    message.field.add(name=name, number=number, type=kind, label=Field.LABEL_OPTIONAL)


def _message_field(message, name: str, number: int, type_name: str) -> None:
    message.field.add(
        name=name,
        number=number,
        type=Field.TYPE_MESSAGE,
        label=Field.LABEL_OPTIONAL,
        type_name=f".{type_name}",
    )


def _map(message, name: str, number: int, value_type: int, value_type_name: str = "") -> None:
    """A ``map<string, V>`` field: a repeated nested *Entry message marked map_entry."""
    entry_name = "".join(part.title() for part in name.split("_")) + "Entry"
    entry = message.nested_type.add(name=entry_name)
    entry.options.map_entry = True
    _scalar(entry, "key", 1, Field.TYPE_STRING)
    entry.field.add(
        name="value",
        number=2,
        type=value_type,
        label=Field.LABEL_OPTIONAL,
        type_name=f".{value_type_name}" if value_type_name else "",
    )
    message.field.add(
        name=name,
        number=number,
        type=Field.TYPE_MESSAGE,
        label=Field.LABEL_REPEATED,
        type_name=f".{PACKAGE}.{message.name}.{entry_name}",
    )


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The file above, with the google.protobuf file it imports (as buf would include it)."""
    file = descriptor_pb2.FileDescriptorProto(
        name="synthetic/v1/thing.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto", "google/protobuf/struct.proto"],
    )
    thing = file.message_type.add(name="Thing")
    _scalar(thing, "id", 1, Field.TYPE_STRING)
    _map(thing, "parts", 2, Field.TYPE_MESSAGE, f"{PACKAGE}.Part")
    _map(thing, "labels", 3, Field.TYPE_STRING)
    _map(thing, "extras", 4, Field.TYPE_MESSAGE, "google.protobuf.Struct")
    part = file.message_type.add(name="Part")
    _scalar(part, "part_name", 1, Field.TYPE_STRING)
    _message_field(part, "detail", 2, f"{PACKAGE}.Detail")
    _map(part, "more", 3, Field.TYPE_MESSAGE, f"{PACKAGE}.Detail")
    detail = file.message_type.add(name="Detail")
    _scalar(detail, "size", 1, Field.TYPE_INT32)

    service = file.service.add(name="ThingService")
    method = service.method.add(
        name="PutThing", input_type=f".{PACKAGE}.Thing", output_type=f".{PACKAGE}.Thing"
    )
    rule = method.options.Extensions[annotations_pb2.http]
    rule.put = "/v1/things/{id}"
    rule.body = "*"

    struct_file = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct_file)
    return descriptor_pb2.FileDescriptorSet(file=[struct_file, file])


def write_descriptor_set(path: Path) -> Path:
    """The descriptor set, serialised at ``path`` (what gateway.py reads)."""
    path.write_bytes(descriptor_set().SerializeToString())
    return path
