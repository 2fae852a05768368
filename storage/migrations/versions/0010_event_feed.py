"""The event feed: tenant-wide reads of the audit trail in order, and a wake-up on commit.

``WatchEvents`` reads a tenant's events by id, so the ids must never let a watcher skip one.
A sequence hands out ids at insert time, not at commit: a transaction holding id 10 can
commit after one holding id 11, and a watcher that already read 11 would never see 10. On
PostgreSQL a trigger therefore takes a per-tenant transaction lock before numbering an event:
within a tenant, the next event is numbered only once the previous one's transaction ended,
so ids are in commit order there. (Ids taken by the column default and then replaced leave
gaps, which readers ignore.) The same trigger sends ``NOTIFY simconfig_events, '<tenant>'``,
delivered when the transaction commits, so watchers on every replica wake at once. SQLite
writes one transaction at a time, which gives the same order; watchers there poll.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# First key of the two-key advisory locks that order events ("SE" + tenant hash).
EVENT_LOCK_CLASS = 21317


def upgrade() -> None:
    op.create_index(
        "ix_simulation_events_tenant_id", "simulation_events", ["tenant_id", "id"], unique=False
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION simconfig_order_event() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock({EVENT_LOCK_CLASS}, hashtext(NEW.tenant_id));
            NEW.id := nextval(pg_get_serial_sequence('simulation_events', 'id'));
            PERFORM pg_notify('simconfig_events', NEW.tenant_id);
            RETURN NEW;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER simulation_events_order BEFORE INSERT ON simulation_events
        FOR EACH ROW EXECUTE FUNCTION simconfig_order_event()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS simulation_events_order ON simulation_events")
        op.execute("DROP FUNCTION IF EXISTS simconfig_order_event()")
    op.drop_index("ix_simulation_events_tenant_id", table_name="simulation_events")
