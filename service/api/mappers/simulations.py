"""Simulation: the stored record <-> ``simulation.v1.Simulation``; audit events too."""

from __future__ import annotations

from typing import Any

from simulation.v1 import simulation_pb2

import storage
from service.api.proto_values import struct, struct_to_dict, timestamp
from service.app.simulation_writes import SimulationInput
from service.domain import errors
from service.domain.config_codec import parameters_from_document, sources_from_documents

# Stored statuses and event kinds are the enums' value names, and a message's
# constructor takes an enum field by name (ValueError for an unknown one).
_Kind = simulation_pb2.SimulationEvent.Kind


def status_name(name: str | None) -> str:
    """The ``Simulation.Status`` name of a stored status (unset for None)."""
    return name or "STATUS_UNSPECIFIED"


def simulation_to_proto(
    record: storage.Simulation, sources: list[dict[str, Any]] | None = None
) -> simulation_pb2.Simulation:
    """The API form of a stored simulation; ``sources`` are its current revision's, if known."""
    message = simulation_pb2.Simulation(
        id=record.id,
        scenario_id=record.scenario_id or "",
        name=record.name,
        prompt=record.prompt,
        labels=record.labels,
        status=status_name(record.status),
        config_revision=record.current_revision,
        results=struct(record.results),
        analysis=struct(record.analysis),
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        etag=record.etag,
        sources=sources_from_documents(sources),
    )
    if record.architect_parameters is not None:
        message.architect_parameters.CopyFrom(parameters_from_document(record.architect_parameters))
    if record.last_error:
        error = record.last_error
        message.last_error.reason = error.get("reason", "")
        message.last_error.message = error.get("message", "")
        for violation in error.get("violations") or ():
            message.last_error.violations.add(
                field=violation.get("field", ""), description=violation.get("description", "")
            )
    return message


def event_to_proto(event: storage.SimulationEvent) -> simulation_pb2.SimulationEvent:
    """The API form of an audit-trail event.

    ``from_status``, ``to_status`` and ``revision`` are set only where the event stored them
    (a transition, a creation, a config write), so the others have no such fields at all.
    """
    return simulation_pb2.SimulationEvent(
        id=event.id,
        simulation_id=event.simulation_id,
        kind=event.kind,
        # None leaves an optional field unset: absent in JSON, HasField() false.
        from_status=event.from_status,
        to_status=event.to_status,
        revision=event.revision,
        actor=event.actor,
        reason=event.reason,
        details=struct(event.details),
        create_time=timestamp(event.create_time),
    )


def event_kinds(values, field: str = "kinds") -> frozenset[str]:
    """The kind names of a request's ``kinds``; INVALID_ARGUMENT for unset or unknown ones."""
    names = set()
    for index, value in enumerate(values):
        if value == _Kind.KIND_UNSPECIFIED or value not in _Kind.values():
            raise errors.InvalidArgument.field(
                f"{field}[{index}]", f"is not an event kind: {value}"
            )
        names.add(_Kind.Name(value))
    return frozenset(names)


def optional_struct(request, name: str) -> dict[str, Any] | None:
    """The JSON object in a request's Struct field, None when the field is unset."""
    return struct_to_dict(getattr(request, name)) if request.HasField(name) else None


def simulation_input(message: simulation_pb2.Simulation) -> SimulationInput:
    """The caller-writable fields a request's simulation carries."""
    return SimulationInput(
        name=message.name,
        labels=dict(message.labels),
        scenario_id=message.scenario_id,
        prompt=message.prompt,
    )
