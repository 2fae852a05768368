"""Deletion events that outlive their simulation, and webhook workers woken by the outbox.

A hard-deleted simulation takes its audit trail with it, yet watchers and webhooks must learn
of the deletion. The events table therefore loses its foreign key to ``simulations``; a
trigger on ``simulations`` deletes the trail instead, all but the ``DELETED`` event the
deleting transaction wrote just before. That event keeps its place in the tenant's id order
(migration 0010) and, written while the simulation still existed, went to the webhook outbox
like any other (migration 0013).

SQLite cannot drop a foreign key in place: the table is rebuilt, which drops the webhook
trigger on it (re-created here) and would reset its AUTOINCREMENT counter to the highest id
still stored; the counter is carried over so that ids of deleted events are never handed out
again (a watcher's cursor may be past them).

On PostgreSQL a trigger on ``webhook_deliveries`` sends ``NOTIFY simconfig_webhook_deliveries``
when a delivery becomes due (queued, retried or redelivered): webhook workers on every replica
wake at once, and their poll interval is only a safety net. Settled deliveries are purged after
a retention; an index on (state, update_time) finds them.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

DELETED = "DELETED"

# The webhook enqueue trigger of migration 0013 on SQLite, re-created after the rebuild.
_SQLITE_ENQUEUE = """
    CREATE TRIGGER simulation_events_webhooks AFTER INSERT ON simulation_events
    BEGIN
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
            AND (json_array_length(w.kinds) = 0
                OR EXISTS (SELECT 1 FROM json_each(w.kinds) WHERE json_each.value = NEW.kind));
    END
"""

_DROP_TRAIL = (
    "DELETE FROM simulation_events "
    f"WHERE tenant_id = OLD.tenant_id AND simulation_id = OLD.id AND kind <> '{DELETED}';"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.create_index("ix_webhook_deliveries_settled", "webhook_deliveries", ["state", "update_time"])


def _upgrade_postgresql() -> None:
    op.drop_constraint(
        "fk_simulation_events_simulation_id", "simulation_events", type_="foreignkey"
    )
    op.execute(
        f"""
        CREATE FUNCTION simconfig_drop_event_trail() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {_DROP_TRAIL}
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER simulations_drop_event_trail AFTER DELETE ON simulations
        FOR EACH ROW EXECUTE FUNCTION simconfig_drop_event_trail()
        """
    )
    op.execute(
        """
        CREATE FUNCTION simconfig_notify_webhook_delivery() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- One notification per transaction: PostgreSQL folds identical ones.
            PERFORM pg_notify('simconfig_webhook_deliveries', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER webhook_deliveries_notify
        AFTER INSERT OR UPDATE OF state ON webhook_deliveries
        FOR EACH ROW WHEN (NEW.state = 'PENDING')
        EXECUTE FUNCTION simconfig_notify_webhook_delivery()
        """
    )


def _upgrade_sqlite() -> None:
    bind = op.get_bind()
    counter = bind.execute(
        text("SELECT seq FROM sqlite_sequence WHERE name = 'simulation_events'")
    ).scalar()
    with op.batch_alter_table(
        "simulation_events", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.drop_constraint("fk_simulation_events_simulation_id", type_="foreignkey")
    if counter is not None:
        bind.execute(text("DELETE FROM sqlite_sequence WHERE name = 'simulation_events'"))
        bind.execute(
            text(
                "INSERT INTO sqlite_sequence (name, seq) SELECT 'simulation_events', "
                "MAX(:counter, COALESCE((SELECT MAX(id) FROM simulation_events), 0))"
            ),
            {"counter": counter},
        )
    op.execute(_SQLITE_ENQUEUE)
    op.execute(
        f"""
        CREATE TRIGGER simulations_drop_event_trail AFTER DELETE ON simulations
        BEGIN
            {_DROP_TRAIL}
        END
        """
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_settled", table_name="webhook_deliveries")
    # Deletion events have no simulation left to reference: they cannot survive the key.
    op.execute(f"DELETE FROM simulation_events WHERE kind = '{DELETED}'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries")
        op.execute("DROP FUNCTION IF EXISTS simconfig_notify_webhook_delivery()")
        op.execute("DROP TRIGGER IF EXISTS simulations_drop_event_trail ON simulations")
        op.execute("DROP FUNCTION IF EXISTS simconfig_drop_event_trail()")
        op.create_foreign_key(
            "fk_simulation_events_simulation_id",
            "simulation_events",
            "simulations",
            ["simulation_id"],
            ["id"],
            ondelete="CASCADE",
        )
        return
    op.execute("DROP TRIGGER IF EXISTS simulations_drop_event_trail")
    with op.batch_alter_table(
        "simulation_events", recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        batch.create_foreign_key(
            "fk_simulation_events_simulation_id",
            "simulations",
            ["simulation_id"],
            ["id"],
            ondelete="CASCADE",
        )
    op.execute(_SQLITE_ENQUEUE)
