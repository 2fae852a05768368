"""Notify every server when a scenario row changes, so scenarios read from memory stay exact.

Servers answer warm ``GetScenario`` calls from memory (``service.app.read_cache``). On
PostgreSQL a trigger sends ``NOTIFY simconfig_scenarios, '<scenario id>'`` on every update and
delete of a scenario row, delivered when the change commits, whoever made it: another replica,
the simulation-count triggers (migration 0005) or plain SQL. An insert needs no notice: nothing
can have remembered a row that did not exist. SQLite has no notifications, and servers there
read every scenario from the database.

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION simconfig_notify_scenario() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('simconfig_scenarios', OLD.id::text);
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER scenarios_notify AFTER UPDATE OR DELETE ON scenarios
        FOR EACH ROW EXECUTE FUNCTION simconfig_notify_scenario()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS scenarios_notify ON scenarios")
    op.execute("DROP FUNCTION IF EXISTS simconfig_notify_scenario()")
