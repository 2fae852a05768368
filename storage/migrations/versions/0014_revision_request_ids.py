"""Request ids on config revisions: config edits and rollbacks can be retried safely (AIP-155).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: revisions written without a request id (and every earlier one) have none.
    op.add_column("config_revisions", sa.Column("request_id", sa.String(128), nullable=True))
    op.add_column(
        "config_revisions", sa.Column("request_fingerprint", sa.String(64), nullable=True)
    )
    # A unique index rather than a constraint: SQLite adds it without rebuilding the table,
    # and NULLs (no request id) never collide.
    op.create_index(
        "uq_config_revisions_request_id",
        "config_revisions",
        ["tenant_id", "simulation_id", "request_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_config_revisions_request_id", table_name="config_revisions")
    op.drop_column("config_revisions", "request_fingerprint")
    op.drop_column("config_revisions", "request_id")
