"""Which RPCs only read: declared in the protos, read from their descriptors at start-up.

A read RPC carries ``option idempotency_level = NO_SIDE_EFFECTS``; a read-scoped API key may
call those and nothing else. A new RPC is a write until its proto says otherwise, so a
forgotten declaration errs on the side of refusing a read-only key.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor, descriptor_pb2

_NO_SIDE_EFFECTS = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def method_path(method: descriptor.MethodDescriptor) -> str:
    """The path gRPC calls a method by: ``/package.Service/Method``."""
    return f"/{method.containing_service.full_name}/{method.name}"


def is_read_only(method: descriptor.MethodDescriptor) -> bool:
    """True when the proto declares the method free of side effects."""
    return method.GetOptions().idempotency_level == _NO_SIDE_EFFECTS


def read_only_methods(services: Iterable[descriptor.ServiceDescriptor]) -> frozenset[str]:
    """The paths of every method of ``services`` declared free of side effects."""
    return frozenset(
        method_path(method)
        for service in services
        for method in service.methods
        if is_read_only(method)
    )
