"""Number events by their transaction, and let readers stop at the oldest one still running.

Readers of the event trail (``WatchEvents``, ``ListSimulationEvents``) resume after the last id
they saw, so an id must never become visible after a larger one was read. Migration 0019 kept
that promise by numbering a tenant's events inside the COMMIT, under a per-tenant lock. The
lock was held through the COMMIT's WAL flush, so a tenant's writes committed one at a time,
one disk flush each: about 660 writes a second for one tenant on the development machine,
with one server process or two, however many clients wrote.

Here an event's id is fixed at its insert and made of its transaction's id:
``(xid << 24) + n + offset``, ``n`` counting the events of the transaction (1, 2, ...). Every
transaction whose id is below a reader's snapshot ``xmin`` has ended, so no event can still
appear below ``simconfig_event_horizon() = (xmin << 24) + offset``: readers read only below it
(``storage/repositories/events.py``) and wait briefly for the rest. Nothing is locked, and
concurrent commits share their WAL flushes again. The price: an event shows up in the trail
once every write transaction older than its own has ended, in any database of the cluster
(a long write transaction elsewhere delays the trail; nothing is lost or reordered).

``offset`` keeps every new id above the ids the sequence handed out before: it is fixed here,
from the sequence's last value and this transaction's id (later transactions have larger
ones). ``n`` is counted in a transaction-local setting; 2^24 - 1 events in one transaction is
the limit. The notice to watchers (``simconfig_events``) is sent at commit, as before.

SQLite writes one transaction at a time and keeps its autoincrement ids; nothing changes there.

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

# Bits of an id below the transaction id: the count of events within the transaction.
ID_SHIFT = 24
# 0019's lock class, for the downgrade.
EVENT_LOCK_CLASS = 21317


def _id_function(offset: int) -> str:
    return f"""
    CREATE FUNCTION simconfig_event_id() RETURNS trigger
    LANGUAGE plpgsql AS $$
    DECLARE
        n bigint := coalesce(
            nullif(current_setting('simconfig.events_in_transaction', true), ''), '0'
        )::bigint + 1;
    BEGIN
        IF n >= (1::bigint << {ID_SHIFT}) THEN
            RAISE EXCEPTION 'more than % events in one transaction', (1::bigint << {ID_SHIFT}) - 1;
        END IF;
        PERFORM set_config('simconfig.events_in_transaction', n::text, true);
        NEW.id := (pg_current_xact_id()::text::bigint << {ID_SHIFT}) + n + {offset};
        PERFORM pg_notify('simconfig_events', NEW.tenant_id);
        RETURN NEW;
    END $$
    """


def _horizon_function(offset: int) -> str:
    return f"""
    CREATE FUNCTION simconfig_event_horizon() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::bigint << {ID_SHIFT}) + {offset}
    $$
    """


# Migration 0019's numbering at commit, restored by the downgrade.
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


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS simulation_events_number_at_commit ON simulation_events")
    op.execute("DROP FUNCTION IF EXISTS simconfig_number_event_at_commit()")
    # The sequence, not max(id): it is above every id handed out, and row security does not
    # hide it from a migration role that is not a superuser.
    sequence = bind.execute(
        sa.text("SELECT pg_get_serial_sequence('simulation_events', 'id')")
    ).scalar_one()
    issued = bind.execute(
        sa.text(f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}")
    ).scalar_one()
    xid = bind.execute(sa.text("SELECT pg_current_xact_id()::text::bigint")).scalar_one()
    offset = max(0, issued + 1 - (xid << ID_SHIFT))
    op.execute(_id_function(offset))
    op.execute(_horizon_function(offset))
    op.execute(
        """
        CREATE TRIGGER simulation_events_id BEFORE INSERT ON simulation_events
        FOR EACH ROW EXECUTE FUNCTION simconfig_event_id()
        """
    )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS simulation_events_id ON simulation_events")
    op.execute("DROP FUNCTION IF EXISTS simconfig_event_id()")
    op.execute("DROP FUNCTION IF EXISTS simconfig_event_horizon()")
    # The sequence numbers again: above every id given out here, so ids keep growing.
    op.execute(
        "SELECT setval(pg_get_serial_sequence('simulation_events', 'id'), "
        "(SELECT coalesce(max(id), 0) FROM simulation_events) + 1, false)"
    )
    op.execute(_NUMBER_AT_COMMIT)
    op.execute(
        """
        CREATE CONSTRAINT TRIGGER simulation_events_number_at_commit
        AFTER INSERT ON simulation_events
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION simconfig_number_event_at_commit()
        """
    )
