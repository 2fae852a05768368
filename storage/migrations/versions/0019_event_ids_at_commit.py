"""Number a tenant's events when their transaction commits, not when they are inserted.

Migration 0010 made event ids follow commit order within a tenant (``WatchEvents`` and
``ListSimulationEvents`` resume after the last id a reader saw, so an id handed out before an
earlier one commits would be skipped) by taking a per-tenant transaction lock at the insert.
That lock was held from the insert through every later statement of the transaction, the
round trips back to the server process, and the COMMIT's WAL flush: one tenant's writes
committed one at a time, at the pace of the slowest client.

Here the insert takes a provisional id from the column default and no lock. A deferred
constraint trigger runs when the transaction commits, inside the COMMIT, on the database: it
takes the same per-tenant lock, gives the event its final id from the same sequence, moves
the event's webhook deliveries (queued by migration 0013's insert trigger) to that id, and
sends the ``simconfig_events`` notice. The lock is now held only for the COMMIT itself, and
within a tenant the final ids still follow commit order. Readers never see a provisional id:
it is visible only inside the writing transaction, and nothing there keeps it. Ids skipped by
the renumbering are gaps, which readers already ignore.

SQLite writes one transaction at a time, which gives the same order; nothing changes there.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# First key of the two-key advisory locks that order events ("SE" + tenant hash), as in 0010.
EVENT_LOCK_CLASS = 21317

_NUMBER_AT_COMMIT = f"""
    CREATE FUNCTION simconfig_number_event_at_commit() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        final_id bigint;
    BEGIN
        PERFORM pg_advisory_xact_lock({EVENT_LOCK_CLASS}, hashtext(NEW.tenant_id));
        final_id := nextval(pg_get_serial_sequence('simulation_events', 'id'));
        -- No row when the transaction removed the event again (a deleted simulation's trail).
        UPDATE simulation_events SET id = final_id WHERE id = NEW.id;
        UPDATE webhook_deliveries SET event_id = final_id
        WHERE event_id = NEW.id AND tenant_id = NEW.tenant_id;
        PERFORM pg_notify('simconfig_events', NEW.tenant_id);
        RETURN NULL;
    END $$
"""

# Migration 0010's insert-time numbering, restored by the downgrade.
_NUMBER_AT_INSERT = f"""
    CREATE FUNCTION simconfig_order_event() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock({EVENT_LOCK_CLASS}, hashtext(NEW.tenant_id));
        NEW.id := nextval(pg_get_serial_sequence('simulation_events', 'id'));
        PERFORM pg_notify('simconfig_events', NEW.tenant_id);
        RETURN NEW;
    END $$
"""


def upgrade() -> None:
    # The renumbering finds an event's deliveries by its provisional id (on both engines, so
    # the schema is one).
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS simulation_events_order ON simulation_events")
    op.execute("DROP FUNCTION IF EXISTS simconfig_order_event()")
    op.execute(_NUMBER_AT_COMMIT)
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER simulation_events_number_at_commit
        AFTER INSERT ON simulation_events
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION simconfig_number_event_at_commit()
        """
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_event_id", table_name="webhook_deliveries")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS simulation_events_number_at_commit ON simulation_events")
    op.execute("DROP FUNCTION IF EXISTS simconfig_number_event_at_commit()")
    op.execute(_NUMBER_AT_INSERT)
    op.execute(
        """
        CREATE TRIGGER simulation_events_order BEFORE INSERT ON simulation_events
        FOR EACH ROW EXECUTE FUNCTION simconfig_order_event()
        """
    )
