"""Batch requests: what a batch call with a request id returned, so its retries get the same.

Batch creates, deletes and moves are idempotent with a request id (AIP-155). Single creates
keep the request id on the row they create; a batch touches many rows (and a delete or move
creates none), so the call itself is recorded: its fingerprint and the ids it returned.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "batch_requests",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("request_fingerprint", sa.String(64), nullable=False),
        sa.Column("resource_ids", JSON, nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "method", "request_id", name="pk_batch_requests"),
    )


def downgrade() -> None:
    op.drop_table("batch_requests")
