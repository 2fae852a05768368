"""The W3C trace context of the call that queued an architect job, so its run joins that trace.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
# 0015 may come from another branch; the chain is put in order when both are merged.
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: jobs queued with tracing off (and every earlier one) have no trace to join.
    # 55 characters is a version-00 traceparent; later versions may append fields.
    op.add_column("architect_jobs", sa.Column("traceparent", sa.String(128), nullable=True))


def downgrade() -> None:
    op.drop_column("architect_jobs", "traceparent")
