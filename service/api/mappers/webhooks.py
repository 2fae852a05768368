"""Webhook endpoints between their proto form and the use cases' values."""

from __future__ import annotations

from simulation.v1 import simulation_pb2, webhook_service_pb2

import storage
from service.api.mappers.simulations import event_kinds
from service.api.proto_values import struct, timestamp
from service.app.webhooks import WebhookInput

_State = webhook_service_pb2.Webhook.State
_Kind = simulation_pb2.SimulationEvent.Kind


def webhook_input(message: webhook_service_pb2.Webhook) -> WebhookInput:
    """The caller-set fields of a Webhook message (kinds checked: INVALID_ARGUMENT)."""
    return WebhookInput(
        url=message.url,
        kinds=event_kinds(message.kinds, field="webhook.kinds"),
        simulation_id=message.simulation_id,
        scenario_id=message.scenario_id,
        description=message.description,
        enabled=message.enabled if message.HasField("enabled") else None,
    )


def webhook_to_proto(webhook: storage.Webhook) -> webhook_service_pb2.Webhook:
    """The API form of an endpoint; the secret is never part of it."""
    return webhook_service_pb2.Webhook(
        id=webhook.id,
        url=webhook.url,
        kinds=list(webhook.kinds),
        simulation_id=webhook.simulation_id,
        scenario_id=webhook.scenario_id,
        description=webhook.description,
        enabled=webhook.enabled,
        state=webhook.state,
        create_time=timestamp(webhook.create_time),
        update_time=timestamp(webhook.update_time),
        etag=webhook.etag,
    )


def delivery_to_proto(delivery: storage.WebhookDelivery) -> webhook_service_pb2.WebhookDelivery:
    """The API form of a delivery, with the event it carries."""
    return webhook_service_pb2.WebhookDelivery(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event=simulation_pb2.SimulationEvent(
            id=delivery.event_id,
            simulation_id=delivery.simulation_id,
            kind=delivery.kind,
            # Set only where the event has them, as in event_to_proto.
            from_status=delivery.from_status,
            to_status=delivery.to_status,
            revision=delivery.revision,
            actor=delivery.actor,
            reason=delivery.reason,
            details=struct(delivery.details),
            create_time=timestamp(delivery.event_time),
        ),
        state=delivery.state,
        attempts=delivery.attempts,
        response_code=delivery.response_code or 0,
        latency_ms=delivery.latency_ms or 0,
        last_error=delivery.last_error,
        next_attempt_time=timestamp(delivery.next_attempt_time),
        update_time=timestamp(delivery.update_time),
    )
