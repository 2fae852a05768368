"""Notify every server when an API key row changes, so cached keys are dropped at once.

Servers cache API keys in memory; a revoked key must stop working everywhere within a
moment. On PostgreSQL a trigger sends ``NOTIFY simconfig_api_keys, '<key id>'`` on every
insert, update and delete of a key, delivered when the change commits, whoever made it (the
CLI, another replica, or plain SQL). SQLite has no notifications: servers there keep keys
only briefly instead.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION simconfig_notify_api_key() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('simconfig_api_keys', COALESCE(NEW.id, OLD.id));
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE ON api_keys
        FOR EACH ROW EXECUTE FUNCTION simconfig_notify_api_key()
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS api_keys_notify ON api_keys")
    op.execute("DROP FUNCTION IF EXISTS simconfig_notify_api_key()")
