"""Config filters keep their GIN index behind the tenant wall (PostgreSQL only).

A list filter on a config field (``config.model = "sim-large-1"``) is JSONB containment on the
revisions, answered by the GIN index of migration 0011. Under the row-level security of
migration 0018 PostgreSQL may not use that index: a condition whose operator is not
``LEAKPROOF`` (``jsonb @> jsonb`` is not, and only a superuser may mark one so) must wait until
the policy has kept the tenant's rows, so every revision is read first. At 100,000 simulations
a selective filter went from 18 ms to over 200 ms.

``simconfig_config_matches(document)`` finds the revisions whose config contains ``document``
through the index, as the owner of the tables, and applies the wall itself: for a session that
switched to the service role (a tenant's call) it keeps only the rows of the session's tenant,
as the policy would. Other sessions (the owner's, which bypass the policy anyway) get every
match, and the query that calls it joins them to its own tenant's simulations. The list query
asks it once, for the (simulation, revision) pairs that match.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# Kept in step with storage.tenancy, which migrations do not import (they describe history).
ROLE = "simconfig_service"
SETTING = "simconfig.tenant_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # search_path pinned: a SECURITY DEFINER function must not resolve names through the
    # caller's path. current_setting('role') is the role the session switched to, which the
    # definer's own identity does not change.
    op.execute(
        f"""
        CREATE FUNCTION simconfig_config_matches(document jsonb)
        RETURNS TABLE (simulation_id varchar, revision integer)
        LANGUAGE sql STABLE SECURITY DEFINER
        -- Filters on config fields are selective as a rule: plan from the matches.
        ROWS 100
        SET search_path = pg_catalog, public
        AS $$
            SELECT r.simulation_id, r.revision
            FROM config_revisions r
            WHERE r.config @> document
              AND (current_setting('role') <> '{ROLE}'
                   OR r.tenant_id = current_setting('{SETTING}', true))
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION simconfig_config_matches(jsonb) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION simconfig_config_matches(jsonb) TO {ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS simconfig_config_matches(jsonb)")
