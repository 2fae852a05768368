"""Compress stored configs with lz4 instead of PostgreSQL's default pglz.

A config of 20 agents is about 6 KB of JSON, above the 2 KB at which PostgreSQL compresses a
value, so every UpdateConfig compressed its new revision. Inserting such a revision (JSON parsed,
compressed, indexed) took about 0.23 ms of the database's time with pglz and about 0.17 ms with
lz4, which also decompresses faster when a config is read cold. Only revisions written from now
on are compressed with lz4; the older ones stay as they are, readable as before.

A PostgreSQL built without lz4 keeps pglz: the change is skipped there. SQLite: nothing.

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_COLUMNS = ("config", "sources")


def _set_compression(method: str) -> None:
    for column in _COLUMNS:
        op.execute(
            f"""
            DO $$ BEGIN
                ALTER TABLE config_revisions ALTER COLUMN {column} SET COMPRESSION {method};
            EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
                RAISE NOTICE 'compression method {method} not supported: left as it was';
            END $$
            """
        )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set_compression("lz4")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set_compression("pglz")
