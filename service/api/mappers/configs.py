"""Config revisions and the config view: stored records <-> ``simulation.v1`` messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2
from simulation.v1 import config_pb2, config_service_pb2

import storage
from service.api.proto_values import timestamp
from service.app.configs import ConfigView, RevisionDiff
from service.domain.config_codec import sources_from_documents

# A stored origin is the ``ConfigRevision.Origin`` value's name, and a message's constructor
# takes an enum field by name.


def revision_to_proto(
    record: storage.ConfigRevision,
    config: config_pb2.SimulationConfig,
    changed_paths: Sequence[str] = (),
) -> config_pb2.ConfigRevision:
    """The API form of a stored config revision (``config``: its decoded config)."""
    return config_pb2.ConfigRevision(
        simulation_id=record.simulation_id,
        revision=record.revision,
        config=config,
        sources=sources_from_documents(record.sources),
        create_time=timestamp(record.create_time),
        actor=record.actor,
        origin=record.origin,
        description=record.description,
        changed_paths=changed_paths,
    )


def diff_to_proto(diff: RevisionDiff) -> config_service_pb2.DiffConfigRevisionsResponse:
    """DiffConfigRevisions' response: the JSON Patch as a list of JSON objects."""
    patch = struct_pb2.ListValue()
    operations: list[Any] = diff.diff.patch
    patch.extend(operations)
    return config_service_pb2.DiffConfigRevisionsResponse(
        simulation_id=diff.simulation_id,
        from_revision=diff.from_revision,
        to_revision=diff.to_revision,
        patch=patch,
        changed_paths=diff.diff.changed_paths,
    )


def config_view_fields(view: ConfigView) -> dict:
    """The fields of GetConfig's, UpdateConfig's and RollbackConfig's responses."""
    revision = view.revision
    return {
        "simulation_id": view.simulation_id,
        "revision": revision.revision,
        "config": view.config,
        "sources": sources_from_documents(revision.sources),
        "etag": view.etag,
        "update_time": timestamp(revision.create_time),
        "origin": revision.origin,
    }
