"""Request fingerprints: what an idempotent create was asked, to recognise a retry.

Revision ID: 0004
Revises: 0003
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows created without a request id have none.
    op.add_column("scenarios", sa.Column("request_fingerprint", sa.String(64), nullable=True))
    op.add_column("simulations", sa.Column("request_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("simulations", "request_fingerprint")
    op.drop_column("scenarios", "request_fingerprint")
