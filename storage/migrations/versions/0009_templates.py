"""Templates: tenant-owned, versioned configs to start simulations from.

A template row holds what is not versioned (name, description, labels, soft-delete times) and
points at its newest revision; each change of config or default architect parameters adds a
revision, so a simulation created from an earlier revision keeps pointing at what it used.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
LIVE = sa.text("delete_time IS NULL")


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("current_revision", sa.Integer, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delete_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("purge_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("request_fingerprint", sa.String(64), nullable=True),
        sa.UniqueConstraint("tenant_id", "request_id", name="uq_templates_tenant_request_id"),
    )
    op.create_index(
        "uq_templates_tenant_live_display_name",
        "templates",
        ["tenant_id", "display_name"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )
    op.create_index(
        "ix_templates_tenant_create_time", "templates", ["tenant_id", "create_time", "id"]
    )
    op.create_index(
        "ix_templates_tenant_display_name", "templates", ["tenant_id", "display_name", "id"]
    )
    op.create_table(
        "template_revisions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column(
            "template_id",
            sa.String(64),
            sa.ForeignKey(
                "templates.id", ondelete="CASCADE", name="fk_template_revisions_template_id"
            ),
            nullable=False,
        ),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("parameters", JSON, nullable=True),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("template_id", "revision", name="pk_template_revisions"),
    )


def downgrade() -> None:
    op.drop_table("template_revisions")
    op.drop_table("templates")
