"""SQLAlchemy Core tables: the schema the migrations build, used by the repositories.

Every tenant-scoped query path has an index that starts with tenant_id. Constraint and index
names are explicit because the repositories map PostgreSQL constraint names to storage errors.

On PostgreSQL a child's foreign key names its tenant too, ``(tenant_id, x_id) -> parent
(tenant_id, id)``, so no row can point at another tenant's parent (migration 0018, which also
adds row-level security); SQLite keeps the single-column keys.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from storage.column_types import UtcDateTime, autoincrement_id, json_type

metadata = MetaData()

ID = String(64)
LIVE = text("delete_time IS NULL")


def tenant_keyed_parent(table: str) -> UniqueConstraint:
    """The unique ``(tenant_id, id)`` that tenant-keyed foreign keys reference (PostgreSQL)."""
    return UniqueConstraint("tenant_id", "id", name=f"uq_{table}_tenant_id_id").ddl_if(
        dialect="postgresql"
    )


def tenant_keyed_reference(
    column: str, parent: str, name: str, ondelete: str | None = None
) -> tuple[ForeignKeyConstraint, ForeignKeyConstraint]:
    """``column -> parent.id`` on SQLite and ``(tenant_id, column) -> parent (tenant_id, id)``
    on PostgreSQL, under one name so errors map alike on both engines."""
    return (
        ForeignKeyConstraint([column], [f"{parent}.id"], name=name, ondelete=ondelete).ddl_if(
            dialect="sqlite"
        ),
        ForeignKeyConstraint(
            ["tenant_id", column],
            [f"{parent}.tenant_id", f"{parent}.id"],
            name=name,
            ondelete=ondelete,
        ).ddl_if(dialect="postgresql"),
    )


tenants = Table(
    "tenants",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", Text, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    UniqueConstraint("name", name="uq_tenants_name"),
    Index("ix_tenants_create_time", "create_time", "id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("key_hash", String(256), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("revoke_time", UtcDateTime, nullable=True),
    Column("description", Text, nullable=False),
    Index("ix_api_keys_tenant_create_time", "tenant_id", "create_time", "id"),
)

scenarios = Table(
    "scenarios",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("labels", json_type(), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("delete_time", UtcDateTime, nullable=True),
    Column("purge_time", UtcDateTime, nullable=True),
    Column("etag", String(64), nullable=False),
    Column("request_id", String(128), nullable=True),
    # A hash of the create request that used request_id: a retry must match it.
    Column("request_fingerprint", String(64), nullable=True),
    # Live simulations in the scenario; maintained by triggers on simulations (migration 0005).
    Column("simulation_count", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("tenant_id", "request_id", name="uq_scenarios_tenant_request_id"),
    tenant_keyed_parent("scenarios"),
    # Display names are unique among LIVE scenarios only, so a deleted name can be reused.
    Index(
        "uq_scenarios_tenant_live_display_name",
        "tenant_id",
        "display_name",
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    ),
    Index("ix_scenarios_tenant_create_time", "tenant_id", "create_time", "id"),
    # Live rows in creation order: the first page's plan at any row estimate (migration 0021).
    Index(
        "ix_scenarios_tenant_live_create_time",
        "tenant_id",
        "create_time",
        "id",
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    ),
    Index("ix_scenarios_tenant_display_name", "tenant_id", "display_name", "id"),
    # purge_expired runs across tenants.
    Index("ix_scenarios_purge_time", "purge_time"),
)

simulations = Table(
    "simulations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("scenario_id", ID),
    Column("name", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("labels", json_type(), nullable=False),
    Column("status", String(32), nullable=False),
    Column("current_revision", Integer, nullable=False),
    Column("architect_parameters", json_type(), nullable=True),
    Column("results", json_type(), nullable=True),
    Column("analysis", json_type(), nullable=True),
    Column("last_error", json_type(), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("delete_time", UtcDateTime, nullable=True),
    Column("etag", String(64), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("request_fingerprint", String(64), nullable=True),
    UniqueConstraint("tenant_id", "request_id", name="uq_simulations_tenant_request_id"),
    tenant_keyed_parent("simulations"),
    *tenant_keyed_reference("scenario_id", "scenarios", "fk_simulations_scenario_id"),
    Index("ix_simulations_tenant_create_time", "tenant_id", "create_time", "id"),
    Index("ix_simulations_tenant_name", "tenant_id", "name", "id"),
    Index("ix_simulations_tenant_scenario", "tenant_id", "scenario_id", "delete_time"),
    # The foreign key's own index: purges and the FK check on scenario deletes use it.
    Index("ix_simulations_scenario_id", "scenario_id"),
)

config_revisions = Table(
    "config_revisions",
    metadata,
    Column("tenant_id", ID, nullable=False),
    Column("simulation_id", ID, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("config", json_type(), nullable=False),
    Column("sources", json_type(), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("origin", String(32), nullable=False),
    Column("description", Text, nullable=False),
    # AIP-155: the request id of the edit or rollback that wrote this revision, and a hash of
    # that request, so a retry returns this revision instead of writing another.
    Column("request_id", String(128), nullable=True),
    Column("request_fingerprint", String(64), nullable=True),
    PrimaryKeyConstraint("simulation_id", "revision", name="pk_config_revisions"),
    *tenant_keyed_reference(
        "simulation_id", "simulations", "fk_config_revisions_simulation_id", "CASCADE"
    ),
    Index("ix_config_revisions_tenant_simulation", "tenant_id", "simulation_id", "revision"),
    # Filters on config fields (JSONB containment) on PostgreSQL only; migration 0011.
    Index(
        "ix_config_revisions_config",
        "config",
        postgresql_using="gin",
        postgresql_ops={"config": "jsonb_path_ops"},
    ).ddl_if(dialect="postgresql"),
    Index(
        "uq_config_revisions_request_id",
        "tenant_id",
        "simulation_id",
        "request_id",
        unique=True,
    ),
)

simulation_events = Table(
    "simulation_events",
    metadata,
    Column("id", autoincrement_id(), primary_key=True, autoincrement=True),
    Column("tenant_id", ID, nullable=False),
    # No foreign key: a simulation's DELETED event outlives it; a trigger on simulations
    # deletes the rest of its trail with it (migration 0015).
    Column("simulation_id", ID, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=True),
    Column("revision", Integer, nullable=True),
    Column("reason", Text, nullable=False),
    Column("details", json_type(), nullable=True),
    Index("ix_simulation_events_tenant_simulation", "tenant_id", "simulation_id", "id"),
    # WatchEvents reads a tenant's events in id order (migration 0010).
    Index("ix_simulation_events_tenant_id", "tenant_id", "id"),
    # AUTOINCREMENT keeps SQLite from reusing the ids of deleted rows: ids stay monotonic.
    sqlite_autoincrement=True,
)

architect_jobs = Table(
    "architect_jobs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("simulation_id", ID, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("parameters", json_type(), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expire_time", UtcDateTime, nullable=True),
    Column("finish_time", UtcDateTime, nullable=True),
    Column("error", Text, nullable=True),
    # The W3C traceparent of the call that queued the job: its run's span continues that trace.
    Column("traceparent", String(128), nullable=True),
    *tenant_keyed_reference(
        "simulation_id", "simulations", "fk_architect_jobs_simulation_id", "CASCADE"
    ),
    Index("ix_architect_jobs_tenant_simulation_state", "tenant_id", "simulation_id", "state"),
    # Workers claim across tenants, oldest first.
    Index("ix_architect_jobs_state_create_time", "state", "create_time"),
)

periodic_runs = Table(
    "periodic_runs",
    metadata,
    # Not tenant data: when each server-wide periodic task is next due.
    Column("name", String(64), primary_key=True),
    Column("next_run_time", UtcDateTime, nullable=False),
)

batch_requests = Table(
    "batch_requests",
    metadata,
    # What a batch call with a request id did, so a retry returns the same resources (AIP-155).
    Column("tenant_id", ID, nullable=False),
    Column("method", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("request_fingerprint", String(64), nullable=False),
    Column("resource_ids", json_type(), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("tenant_id", "method", "request_id", name="pk_batch_requests"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("display_name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("labels", json_type(), nullable=False),
    # The newest revision in template_revisions: its config and parameters are the template's.
    Column("current_revision", Integer, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("delete_time", UtcDateTime, nullable=True),
    Column("purge_time", UtcDateTime, nullable=True),
    Column("etag", String(64), nullable=False),
    Column("request_id", String(128), nullable=True),
    Column("request_fingerprint", String(64), nullable=True),
    UniqueConstraint("tenant_id", "request_id", name="uq_templates_tenant_request_id"),
    tenant_keyed_parent("templates"),
    Index(
        "uq_templates_tenant_live_display_name",
        "tenant_id",
        "display_name",
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    ),
    Index("ix_templates_tenant_create_time", "tenant_id", "create_time", "id"),
    # Live rows in creation order: the first page's plan at any row estimate (migration 0021).
    Index(
        "ix_templates_tenant_live_create_time",
        "tenant_id",
        "create_time",
        "id",
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    ),
    Index("ix_templates_tenant_display_name", "tenant_id", "display_name", "id"),
)

template_revisions = Table(
    "template_revisions",
    metadata,
    Column("tenant_id", ID, nullable=False),
    Column("template_id", ID, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("config", json_type(), nullable=False),
    Column("parameters", json_type(), nullable=True),
    Column("create_time", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    PrimaryKeyConstraint("template_id", "revision", name="pk_template_revisions"),
    *tenant_keyed_reference(
        "template_id", "templates", "fk_template_revisions_template_id", "CASCADE"
    ),
)

service_secrets = Table(
    "service_secrets",
    metadata,
    # Not tenant data: secrets every server shares, such as the page token signing key.
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", ID, primary_key=True),
    Column("tenant_id", ID, nullable=False),
    Column("url", Text, nullable=False),
    Column("kinds", json_type(), nullable=False),
    Column("simulation_id", ID, nullable=False),
    Column("scenario_id", ID, nullable=False),
    Column("description", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("secret", String(128), nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    Column("etag", String(64), nullable=False),
    tenant_keyed_parent("webhooks"),
    Index("ix_webhooks_tenant_id", "tenant_id", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", autoincrement_id(), primary_key=True, autoincrement=True),
    Column("tenant_id", ID, nullable=False),
    Column("webhook_id", ID, nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("simulation_id", ID, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("from_status", String(32), nullable=True),
    Column("to_status", String(32), nullable=True),
    Column("revision", Integer, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("details", json_type(), nullable=True),
    Column("event_time", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_time", UtcDateTime, nullable=False),
    Column("lease_expire_time", UtcDateTime, nullable=True),
    Column("response_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("last_error", Text, nullable=False),
    Column("create_time", UtcDateTime, nullable=False),
    Column("update_time", UtcDateTime, nullable=False),
    *tenant_keyed_reference("webhook_id", "webhooks", "fk_webhook_deliveries_webhook", "CASCADE"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_time"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "simulation_id", "id"),
    # The retention purge finds settled deliveries by state and age (migration 0015).
    Index("ix_webhook_deliveries_settled", "state", "update_time"),
    # Finds an event's deliveries (migration 0019, when events were renumbered at commit).
    Index("ix_webhook_deliveries_event_id", "event_id"),
    sqlite_autoincrement=True,
)
