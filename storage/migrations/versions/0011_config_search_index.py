"""A GIN index over the config documents, for filters on config fields (PostgreSQL only).

ListSimulations filters such as ``config.model = "sim-large-1"`` or ``config.agents.role =
"buyer"`` become JSONB containment (``config @> '{"model": "sim-large-1"}'``) on the current
revision, which a ``jsonb_path_ops`` GIN index answers without reading every revision: at
100,000 simulations a selective filter reads the few matching revisions and joins them to
their simulations. SQLite has no such index; there the JSON1 functions read each document.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_config_revisions_config",
        "config_revisions",
        ["config"],
        postgresql_using="gin",
        postgresql_ops={"config": "jsonb_path_ops"},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_config_revisions_config", table_name="config_revisions")
