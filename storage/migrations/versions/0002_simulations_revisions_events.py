"""Simulations, config revisions and simulation events.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")
# SQLite auto-increments only an INTEGER PRIMARY KEY.
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _simulation_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["simulation_id"],
        ["simulations.id"],
        ondelete="CASCADE",
        name=f"fk_{table}_simulation_id",
    )


def upgrade() -> None:
    op.create_table(
        "simulations",
        sa.Column("id", ID, primary_key=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("scenario_id", ID, nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("current_revision", sa.Integer, nullable=False),
        sa.Column("architect_parameters", JSON, nullable=True),
        sa.Column("results", JSON, nullable=True),
        sa.Column("analysis", JSON, nullable=True),
        sa.Column("last_error", JSON, nullable=True),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("update_time", TIMESTAMP, nullable=False),
        sa.Column("delete_time", TIMESTAMP, nullable=True),
        sa.Column("etag", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.ForeignKeyConstraint(
            ["scenario_id"], ["scenarios.id"], name="fk_simulations_scenario_id"
        ),
        sa.UniqueConstraint("tenant_id", "request_id", name="uq_simulations_tenant_request_id"),
    )
    op.create_index(
        "ix_simulations_tenant_create_time", "simulations", ["tenant_id", "create_time", "id"]
    )
    op.create_index("ix_simulations_tenant_name", "simulations", ["tenant_id", "name", "id"])
    op.create_index(
        "ix_simulations_tenant_scenario",
        "simulations",
        ["tenant_id", "scenario_id", "delete_time"],
    )
    op.create_index("ix_simulations_scenario_id", "simulations", ["scenario_id"])

    op.create_table(
        "config_revisions",
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("simulation_id", ID, nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("sources", JSON, nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("simulation_id", "revision", name="pk_config_revisions"),
        _simulation_fk("config_revisions"),
    )
    op.create_index(
        "ix_config_revisions_tenant_simulation",
        "config_revisions",
        ["tenant_id", "simulation_id", "revision"],
    )

    op.create_table(
        "simulation_events",
        sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", ID, nullable=False),
        sa.Column("simulation_id", ID, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("create_time", TIMESTAMP, nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=True),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", JSON, nullable=True),
        _simulation_fk("simulation_events"),
        # AUTOINCREMENT: SQLite never reuses the id of a deleted row.
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_simulation_events_tenant_simulation",
        "simulation_events",
        ["tenant_id", "simulation_id", "id"],
    )


def downgrade() -> None:
    op.drop_table("simulation_events")
    op.drop_table("config_revisions")
    op.drop_table("simulations")
