"""Storage for the Simulation Config Service: repositories and a unit of work over dataclasses.

This package never imports grpc, protobuf or generated code; services depend on it, not the
other way round.
"""

from storage.database import ConnectionLimits, Database, head_revision, sqlite_url_for
from storage.errors import (
    AlreadyExists,
    CommitOutcomeUnknown,
    Conflict,
    DeadlineExceeded,
    NotFound,
    StorageError,
    Unavailable,
)
from storage.filter_tree import AllOf, AnyOf, Comparison, Filter, Negation
from storage.notifications import (
    API_KEYS_CHANNEL,
    EVENTS_CHANNEL,
    SCENARIOS_CHANNEL,
    SIMULATIONS_CHANNEL,
    WEBHOOK_DELIVERIES_CHANNEL,
    NotificationListener,
)
from storage.records import (
    ApiKey,
    ArchitectJob,
    BatchRequest,
    ConfigRevision,
    Scenario,
    ScenarioQuery,
    Simulation,
    SimulationEvent,
    SimulationQuery,
    Template,
    TemplateQuery,
    TemplateRevision,
    Tenant,
    Webhook,
    WebhookDelivery,
    cursor_of,
)
from storage.repositories import (
    ApiKeyRepository,
    ArchitectJobRepository,
    ConfigRevisionRepository,
    ScenarioRepository,
    SimulationEventRepository,
    SimulationRepository,
    TenantRepository,
    WebhookRepository,
)
from storage.retry import RetryPolicy, is_transient
from storage.unit_of_work import ReadUnitOfWork, SqlUnitOfWork, UnitOfWork

__all__ = [
    "AllOf",
    "AnyOf",
    "Comparison",
    "Filter",
    "Negation",
    "ConnectionLimits",
    "API_KEYS_CHANNEL",
    "EVENTS_CHANNEL",
    "SCENARIOS_CHANNEL",
    "SIMULATIONS_CHANNEL",
    "WEBHOOK_DELIVERIES_CHANNEL",
    "NotificationListener",
    "AlreadyExists",
    "ApiKey",
    "ApiKeyRepository",
    "ArchitectJob",
    "ArchitectJobRepository",
    "BatchRequest",
    "ConfigRevision",
    "ConfigRevisionRepository",
    "Conflict",
    "Database",
    "NotFound",
    "ReadUnitOfWork",
    "RetryPolicy",
    "Scenario",
    "ScenarioQuery",
    "ScenarioRepository",
    "Simulation",
    "SimulationEvent",
    "SimulationEventRepository",
    "SimulationQuery",
    "SimulationRepository",
    "SqlUnitOfWork",
    "StorageError",
    "CommitOutcomeUnknown",
    "Template",
    "TemplateQuery",
    "TemplateRevision",
    "DeadlineExceeded",
    "Tenant",
    "TenantRepository",
    "Unavailable",
    "UnitOfWork",
    "Webhook",
    "WebhookDelivery",
    "WebhookRepository",
    "cursor_of",
    "is_transient",
    "sqlite_url_for",
    "head_revision",
]
