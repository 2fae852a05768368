"""Plain dataclass records and query objects exchanged with the storage layer.

Records carry no database behaviour; callers change them with ``dataclasses.replace`` and hand
them back to a repository. Datetimes are timezone-aware UTC on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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


@dataclass
class LabelFilter:
    """Match rows whose labels have ``key`` (value None) or ``key == value``."""

    key: str
    value: str | None


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
    display_name_equals: str | None = None
    display_name_contains: str | None = None
    labels: list[LabelFilter] = field(default_factory=list)


@dataclass
class SimulationQuery:
    """A page request over live simulations. order_by is "create_time" or "name".

    ``scenario_id`` keeps the simulations of that scenario; ``unfiled`` those in no scenario.
    """

    limit: int
    order_by: str = "create_time"
    descending: bool = False
    after: tuple | None = None
    scenario_id: str | None = None
    unfiled: bool = False
    statuses: list[str] = field(default_factory=list)
    name_equals: str | None = None
    name_contains: str | None = None
    labels: list[LabelFilter] = field(default_factory=list)


def cursor_of(record: Scenario | Simulation, order_by: str) -> tuple:
    """Return the keyset cursor ``(sort_value, id)`` of ``record`` for the given ordering."""
    return (getattr(record, order_by), record.id)
