"""A second wall between tenants on PostgreSQL: row-level security and tenant-keyed foreign keys.

Every repository query filters on its tenant; this migration makes PostgreSQL enforce the same
for the work of a tenant's calls, so a query that forgot its filter still sees nothing of
another tenant's:

- the role ``simconfig_service`` (NOLOGIN, NOBYPASSRLS), which tenant-scoped connections
  switch to with ``SET ROLE`` (see :mod:`storage.tenancy`); it may read and write the tenant
  tables and nothing else, and is granted to the migrating user so its sessions may switch.
  Roles belong to the cluster, not the database: it is created only when missing (another
  database, or a concurrent migration, may have made it) and the downgrade leaves it;
- row-level security on every table with a ``tenant_id`` (and on ``tenants``, by ``id``),
  with a policy that keeps the rows whose tenant is the session's ``simconfig.tenant_id``.
  The owner of the tables bypasses it (no FORCE): the API key lookup that finds the tenant,
  architect and webhook workers, purges, listeners and migrations work across tenants as the
  owner. ``periodic_runs`` and ``service_secrets`` hold no tenant data and are not granted;
- foreign keys that name the tenant, ``(tenant_id, x_id) -> parent (tenant_id, id)``, so no
  row can point at another tenant's parent, each keeping its name and delete rule. Parents get
  a unique ``(tenant_id, id)``. Events have no key to their simulation (migration 0015).

SQLite has neither roles nor policies: there the repositories' filters are the wall, and this
migration does nothing.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# Kept in step with storage.tenancy, which migrations do not import (they describe history).
ROLE = "simconfig_service"
SETTING = "simconfig.tenant_id"
POLICY = "tenant_isolation"

# Tables whose rows belong to a tenant, by the column naming it.
_TENANT_TABLES = {
    "tenants": "id",
    "api_keys": "tenant_id",
    "scenarios": "tenant_id",
    "simulations": "tenant_id",
    "config_revisions": "tenant_id",
    "simulation_events": "tenant_id",
    "architect_jobs": "tenant_id",
    "batch_requests": "tenant_id",
    "templates": "tenant_id",
    "template_revisions": "tenant_id",
    "webhooks": "tenant_id",
    "webhook_deliveries": "tenant_id",
}
# Tenants are made by the CLI, as the owner: calls only read their own.
_READ_ONLY = {"tenants"}

_PARENTS = ("scenarios", "simulations", "templates", "webhooks")

# name, child table, child column, parent table, delete rule
_FOREIGN_KEYS = (
    ("fk_simulations_scenario_id", "simulations", "scenario_id", "scenarios", None),
    (
        "fk_config_revisions_simulation_id",
        "config_revisions",
        "simulation_id",
        "simulations",
        "CASCADE",
    ),
    (
        "fk_architect_jobs_simulation_id",
        "architect_jobs",
        "simulation_id",
        "simulations",
        "CASCADE",
    ),
    (
        "fk_template_revisions_template_id",
        "template_revisions",
        "template_id",
        "templates",
        "CASCADE",
    ),
    ("fk_webhook_deliveries_webhook", "webhook_deliveries", "webhook_id", "webhooks", "CASCADE"),
)


def _parent_key(table: str) -> str:
    return f"uq_{table}_tenant_id_id"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _create_role()
    for table, column in _TENANT_TABLES.items():
        rights = "SELECT" if table in _READ_ONLY else "SELECT, INSERT, UPDATE, DELETE"
        op.execute(f"GRANT {rights} ON {table} TO {ROLE}")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        # missing_ok: a session with no tenant set reads NULL, which matches no row.
        op.execute(
            f"""
            CREATE POLICY {POLICY} ON {table}
            USING ({column} = current_setting('{SETTING}', true))
            WITH CHECK ({column} = current_setting('{SETTING}', true))
            """
        )
    for parent in _PARENTS:
        op.create_unique_constraint(_parent_key(parent), parent, ["tenant_id", "id"])
    for name, child, column, parent, ondelete in _FOREIGN_KEYS:
        op.drop_constraint(name, child, type_="foreignkey")
        op.create_foreign_key(
            name, child, parent, ["tenant_id", column], ["tenant_id", "id"], ondelete=ondelete
        )


def _create_role() -> None:
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
                BEGIN
                    CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;  -- made meanwhile by a migration of another database
                END;
            END IF;
            -- A superuser is a member of every role already.
            IF NOT pg_has_role(current_user, '{ROLE}', 'MEMBER') THEN
                BEGIN
                    GRANT {ROLE} TO CURRENT_USER;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ROLE}', current_schema());
            -- Event and delivery ids come from sequences the inserts advance.
            EXECUTE format(
                'GRANT USAGE ON ALL SEQUENCES IN SCHEMA %I TO {ROLE}', current_schema()
            );
        END $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, child, column, parent, ondelete in _FOREIGN_KEYS:
        op.drop_constraint(name, child, type_="foreignkey")
        op.create_foreign_key(name, child, parent, [column], ["id"], ondelete=ondelete)
    for parent in _PARENTS:
        op.drop_constraint(_parent_key(parent), parent, type_="unique")
    for table in _TENANT_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"REVOKE ALL ON {table} FROM {ROLE}")
    # The role stays: it belongs to the cluster, and other databases may use it.
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format(
                'REVOKE USAGE ON ALL SEQUENCES IN SCHEMA %I FROM {ROLE}', current_schema()
            );
            EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {ROLE}', current_schema());
        END $$
        """
    )
