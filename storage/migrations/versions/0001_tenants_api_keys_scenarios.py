"""Tenants, API keys and scenarios.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Types are spelled out here rather than imported, so this migration stays frozen when the
# application's types change.
ID = sa.String(64)
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
LIVE = sa.text("delete_time IS NULL")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_index("ix_tenants_create_time", "tenants", ["create_time", "id"])

    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(256), nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("revoke_time", TIMESTAMP, nullable=True),
        sa.Column("description", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_api_keys_tenant_create_time", "api_keys", ["tenant_id", "create_time", "id"]
    )

    op.create_table(
        "scenarios",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("update_time", TIMESTAMP, nullable=False),
        sa.Column("delete_time", TIMESTAMP, nullable=True),
        sa.Column("purge_time", TIMESTAMP, nullable=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.UniqueConstraint("tenant_id", "request_id", name="uq_scenarios_tenant_request_id"),
    )
    op.create_index(
        "uq_scenarios_tenant_live_display_name",
        "scenarios",
        ["tenant_id", "display_name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_scenarios_tenant_create_time", "scenarios", ["tenant_id", "create_time", "id"]
    )
    op.create_index(
        "ix_scenarios_tenant_display_name", "scenarios", ["tenant_id", "display_name", "id"]
    )
    op.create_index("ix_scenarios_purge_time", "scenarios", ["purge_time"])


def downgrade() -> None:
    op.drop_table("scenarios")
    op.drop_table("api_keys")
    op.drop_table("tenants")
