"""When each periodic task (e.g. the scenario purge) is next due, shared by every server.

Every server process runs the periodic tasks' timers, but a run is claimed in this table
first, so a task runs once per interval across all processes and replicas, not once per
process.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_runs",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_run_time", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("periodic_runs")
