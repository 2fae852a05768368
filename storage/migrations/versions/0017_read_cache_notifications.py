"""Notify every server when a scenario or simulation row changes, so reads from memory stay exact.

Servers answer warm ``GetScenario`` and ``GetConfig`` calls from memory
(``service.app.read_cache``). On PostgreSQL triggers send ``NOTIFY simconfig_scenarios,
'<scenario id>'`` and ``NOTIFY simconfig_simulations, '<simulation id>'`` on every update and
delete of such a row, delivered when the change commits, whoever made it: another replica, the
simulation-count triggers (migration 0005), a new config revision (which moves the simulation's
current revision) or plain SQL. An insert needs no notice: nothing can have remembered a row
that did not exist. SQLite has no notifications, and servers there read from the database.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TABLES = {"scenarios": "simconfig_scenarios", "simulations": "simconfig_simulations"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, channel in _TABLES.items():
        op.execute(
            f"""
            CREATE FUNCTION simconfig_notify_{table}() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM pg_notify('{channel}', OLD.id::text);
                RETURN NULL;
            END $$
            """
        )
        op.execute(
            f"""
            CREATE TRIGGER {table}_notify AFTER UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION simconfig_notify_{table}()
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS simconfig_notify_{table}()")
