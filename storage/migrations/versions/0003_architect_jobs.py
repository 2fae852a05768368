"""Architect jobs: the durable queue of architect runs.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.String(64)
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "architect_jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("simulation_id", ID, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("parameters", JSON, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("update_time", TIMESTAMP, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("max_attempts", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_expire_time", TIMESTAMP, nullable=True),
        sa.Column("finish_time", TIMESTAMP, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.ForeignKeyConstraint(
            ["simulation_id"],
            ["simulations.id"],
            ondelete="CASCADE",
            name="fk_architect_jobs_simulation_id",
        ),
    )
    op.create_index(
        "ix_architect_jobs_tenant_simulation_state",
        "architect_jobs",
        ["tenant_id", "simulation_id", "state"],
    )
    op.create_index(
        "ix_architect_jobs_state_create_time", "architect_jobs", ["state", "create_time"]
    )


def downgrade() -> None:
    op.drop_table("architect_jobs")
