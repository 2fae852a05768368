"""Webhooks: endpoints per tenant, and the outbox of deliveries to them.

``webhook_deliveries`` is a transactional outbox: a trigger on ``simulation_events`` inserts one
delivery per matching enabled endpoint in the same transaction as the event (and so as the
change), whoever wrote it. The delivery copies the event, so it survives the simulation's
deletion. Workers on every replica claim deliveries one at a time (like architect jobs).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ID = sa.String(64)
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("kinds", JSON, nullable=False),
        sa.Column("simulation_id", ID, nullable=False),
        sa.Column("scenario_id", ID, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("update_time", TIMESTAMP, nullable=False),
        sa.Column("etag", sa.String(64), nullable=False),
    )
    op.create_index("ix_webhooks_tenant_id", "webhooks", ["tenant_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column(
            "webhook_id",
            ID,
            sa.ForeignKey("webhooks.id", ondelete="CASCADE", name="fk_webhook_deliveries_webhook"),
            nullable=False,
        ),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("simulation_id", ID, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=True),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", JSON, nullable=True),
        sa.Column("event_time", TIMESTAMP, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_time", TIMESTAMP, nullable=False),
        sa.Column("lease_expire_time", TIMESTAMP, nullable=True),
        sa.Column("response_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("update_time", TIMESTAMP, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_time"]
    )
    op.create_index(
        "ix_webhook_deliveries_webhook",
        "webhook_deliveries",
        ["webhook_id", "simulation_id", "id"],
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    kind_matches = (
        "w.kinds ? NEW.kind"
        if postgres
        else "EXISTS (SELECT 1 FROM json_each(w.kinds) WHERE json_each.value = NEW.kind)"
    )
    no_kinds = "jsonb_array_length(w.kinds) = 0" if postgres else "json_array_length(w.kinds) = 0"
    enqueue = f"""
        INSERT INTO webhook_deliveries (
            tenant_id, webhook_id, event_id, simulation_id, kind, from_status, to_status,
            revision, actor, reason, details, event_time, state, attempts, next_attempt_time,
            last_error, create_time, update_time)
        SELECT NEW.tenant_id, w.id, NEW.id, NEW.simulation_id, NEW.kind, NEW.from_status,
            NEW.to_status, NEW.revision, NEW.actor, NEW.reason, NEW.details, NEW.create_time,
            'PENDING', 0, NEW.create_time, '', NEW.create_time, NEW.create_time
        FROM webhooks w
        WHERE w.tenant_id = NEW.tenant_id AND w.enabled
            AND (w.simulation_id = '' OR w.simulation_id = NEW.simulation_id)
            AND (w.scenario_id = '' OR EXISTS (
                SELECT 1 FROM simulations s
                WHERE s.id = NEW.simulation_id AND s.scenario_id = w.scenario_id))
            AND ({no_kinds} OR {kind_matches});
    """
    if postgres:
        op.execute(
            f"""
            CREATE FUNCTION simconfig_enqueue_webhooks() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                {enqueue}
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            """
            CREATE TRIGGER simulation_events_webhooks AFTER INSERT ON simulation_events
            FOR EACH ROW EXECUTE FUNCTION simconfig_enqueue_webhooks()
            """
        )
    else:
        op.execute(
            f"""
            CREATE TRIGGER simulation_events_webhooks AFTER INSERT ON simulation_events
            BEGIN
                {enqueue}
            END
            """
        )


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS simulation_events_webhooks ON simulation_events"
        if op.get_bind().dialect.name == "postgresql"
        else "DROP TRIGGER IF EXISTS simulation_events_webhooks"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS simconfig_enqueue_webhooks()")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_tenant_id", table_name="webhooks")
    op.drop_table("webhooks")
