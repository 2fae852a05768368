"""Plain dataclass records and query objects exchanged with the storage layer.

Records carry no database behaviour; callers change them with ``dataclasses.replace`` and hand
them back to a repository. Datetimes are timezone-aware UTC on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.filter_tree import Filter


@dataclass
class Tenant:
    """A customer of the service; every other record is scoped by its id."""

    id: str
    name: str
    create_time: datetime


@dataclass
class ApiKey:
    """An API key of a tenant; only the hash of the secret is stored. scope: "read" or "write"."""

    id: str
    tenant_id: str
    scope: str
    key_hash: str
    create_time: datetime
    revoke_time: datetime | None = None
    description: str = ""


@dataclass
class Scenario:
    """A named group of simulations. ``simulation_count`` is computed on read, ignored on write."""

    id: str
    tenant_id: str
    display_name: str
    description: str
    labels: dict[str, str]
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None = None
    purge_time: datetime | None = None
    etag: str = ""
    request_id: str | None = None
    simulation_count: int = 0
    request_fingerprint: str | None = None


@dataclass
class Simulation:
    """A simulation; ``current_revision`` 0 means it has no config yet."""

    id: str
    tenant_id: str
    scenario_id: str | None
    name: str
    prompt: str
    labels: dict[str, str]
    status: str
    current_revision: int
    architect_parameters: dict[str, Any] | None
    results: dict[str, Any] | None
    analysis: dict[str, Any] | None
    last_error: dict[str, Any] | None
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None = None
    etag: str = ""
    request_id: str | None = None
    request_fingerprint: str | None = None


@dataclass
class ConfigRevision:
    """One immutable version of a simulation's config, numbered 1, 2, … per simulation."""

    tenant_id: str
    simulation_id: str
    revision: int
    config: dict[str, Any]
    sources: list[dict[str, Any]]
    create_time: datetime
    actor: str
    origin: str
    description: str = ""
    request_id: str | None = None
    request_fingerprint: str | None = None


@dataclass
class SimulationEvent:
    """An audit-trail entry of a simulation; ``id`` is assigned by the database on add."""

    tenant_id: str
    simulation_id: str
    kind: str
    actor: str
    create_time: datetime
    from_status: str | None = None
    to_status: str | None = None
    revision: int | None = None
    reason: str = ""
    details: dict[str, Any] | None = None
    id: int = 0


@dataclass
class ArchitectJob:
    """A durable architect run. state: "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED"."""

    id: str
    tenant_id: str
    simulation_id: str
    prompt: str
    parameters: dict[str, Any]
    actor: str
    state: str
    create_time: datetime
    update_time: datetime
    attempts: int = 0
    max_attempts: int = 3
    lease_owner: str | None = None
    lease_expire_time: datetime | None = None
    finish_time: datetime | None = None
    error: str | None = None
    # The W3C traceparent of the queuing call when it was traced (None otherwise).
    traceparent: str | None = None


@dataclass
class Template:
    """A tenant's saved config to start simulations from; its config is in its revisions."""

    id: str
    tenant_id: str
    display_name: str
    description: str
    labels: dict[str, str]
    current_revision: int
    create_time: datetime
    update_time: datetime
    delete_time: datetime | None = None
    purge_time: datetime | None = None
    etag: str = ""
    request_id: str | None = None
    request_fingerprint: str | None = None


@dataclass
class TemplateRevision:
    """One immutable version of a template's config and default architect parameters."""

    tenant_id: str
    template_id: str
    revision: int
    config: dict[str, Any]
    parameters: dict[str, Any] | None
    create_time: datetime
    actor: str


@dataclass
class TemplateQuery:
    """A page request over templates; like :class:`ScenarioQuery`."""

    limit: int
    order_by: str = "create_time"
    descending: bool = False
    after: tuple | None = None
    show_deleted: bool = False
    # A ListTemplates filter (display_name, description, labels, create/update/delete time).
    filter: Filter | None = None


@dataclass
class BatchRequest:
    """A batch call made with a request id: the ids it returned, in order, for its retries.

    ``method`` names the RPC (``BatchCreateScenarios``); a request id is unique per tenant and
    method. ``request_fingerprint`` is the hash of the call's arguments a retry must match.
    """

    tenant_id: str
    method: str
    request_id: str
    request_fingerprint: str
    resource_ids: list[str]
    create_time: datetime


@dataclass
class ScenarioQuery:
    """A page request over scenarios.

    ``after`` is the keyset cursor ``(sort_value, id)`` of the last row of the previous page, as
    returned by :func:`cursor_of`. order_by is "create_time" or "display_name".
    """

    limit: int
    order_by: str = "create_time"
    descending: bool = False
    after: tuple | None = None
    show_deleted: bool = False
    # A ListScenarios filter (display_name, labels, create_time, update_time, simulation_count).
    filter: Filter | None = None


@dataclass
class SimulationQuery:
    """A page request over live simulations. order_by is "create_time" or "name".

    ``filter`` selects the rows (``scenario_id = ""`` keeps those in no scenario).
    """

    limit: int
    order_by: str = "create_time"
    descending: bool = False
    after: tuple | None = None
    # A ListSimulations filter, config fields of the current revision included.
    filter: Filter | None = None


def cursor_of(record: Scenario | Simulation | Template, order_by: str) -> tuple:
    """Return the keyset cursor ``(sort_value, id)`` of ``record`` for the given ordering."""
    return (getattr(record, order_by), record.id)


@dataclass
class Webhook:
    """An endpoint a tenant's events are delivered to. state: "ACTIVE" | "FAILING".

    ``secret`` signs deliveries (Standard Webhooks ``whsec_...``); it is shown to the tenant
    only when created or rotated. ``kinds`` empty means every kind.
    """

    id: str
    tenant_id: str
    url: str
    kinds: list[str]
    simulation_id: str
    scenario_id: str
    description: str
    enabled: bool
    state: str
    secret: str
    create_time: datetime
    update_time: datetime
    etag: str


@dataclass
class WebhookDelivery:
    """One event to deliver to one endpoint: a copy of the event and the delivery's progress.

    state: "PENDING" (due at ``next_attempt_time``; leased while ``lease_expire_time`` is in
    the future), "DELIVERED" or "FAILED" (retries ran out). ``id`` is assigned by the database.
    """

    tenant_id: str
    webhook_id: str
    event_id: int
    simulation_id: str
    kind: str
    actor: str
    reason: str
    event_time: datetime
    state: str
    attempts: int
    next_attempt_time: datetime
    last_error: str
    create_time: datetime
    update_time: datetime
    from_status: str | None = None
    to_status: str | None = None
    revision: int | None = None
    details: dict[str, Any] | None = None
    lease_expire_time: datetime | None = None
    response_code: int | None = None
    latency_ms: int | None = None
    id: int = 0
