"""Scenario: the stored record <-> ``simulation.v1.Scenario``."""

from __future__ import annotations

from simulation.v1 import scenario_pb2

import storage
from service.api.proto_values import timestamp
from service.app.scenarios import ScenarioInput


def scenario_to_proto(record: storage.Scenario) -> scenario_pb2.Scenario:
    """The API form of a stored scenario."""
    return scenario_pb2.Scenario(
        id=record.id,
        display_name=record.display_name,
        description=record.description,
        labels=record.labels,
        simulation_count=record.simulation_count,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
        delete_time=timestamp(record.delete_time),
        purge_time=timestamp(record.purge_time),
        etag=record.etag,
    )


def scenario_input(message: scenario_pb2.Scenario) -> ScenarioInput:
    """The caller-writable fields a request's scenario carries."""
    return ScenarioInput(
        display_name=message.display_name,
        description=message.description,
        labels=dict(message.labels),
    )
