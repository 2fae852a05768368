"""A stored simulation count per scenario, kept exact by triggers.

GetScenario and ListScenarios used to count a scenario's live simulations with a correlated
COUNT per row, which grows with the scenario. The count is now a column that the database
itself maintains on every insert, move, soft delete, restore and delete of a simulation, in the
same transaction as the change, so no write path can forget it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A simulation counts towards its scenario while it is in one and not soft-deleted, and only
# if it belongs to the scenario's tenant.
#
# PostgreSQL: statement-level triggers over transition tables, so a statement touching many
# simulations (a bulk load, a scenario's force delete) updates each scenario once. Row triggers
# would update one scenario row once per simulation, and in one transaction each update walks
# the chain of the row's earlier versions: quadratic in the number of simulations.
_COUNTED = "scenario_id IS NOT NULL AND delete_time IS NULL"
_POSTGRES = [
    f"""
    CREATE FUNCTION simconfig_count_inserted_simulations() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count + added.n
        FROM (SELECT tenant_id, scenario_id, count(*) AS n FROM new_rows WHERE {_COUNTED}
              GROUP BY tenant_id, scenario_id) AS added
        WHERE scenarios.id = added.scenario_id AND scenarios.tenant_id = added.tenant_id;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION simconfig_count_deleted_simulations() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count - removed.n
        FROM (SELECT tenant_id, scenario_id, count(*) AS n FROM old_rows WHERE {_COUNTED}
              GROUP BY tenant_id, scenario_id) AS removed
        WHERE scenarios.id = removed.scenario_id AND scenarios.tenant_id = removed.tenant_id;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION simconfig_count_updated_simulations() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count + moved.n
        FROM (SELECT tenant_id, scenario_id, sum(n) AS n
              FROM (SELECT tenant_id, scenario_id, 1 AS n FROM new_rows WHERE {_COUNTED}
                    UNION ALL
                    SELECT tenant_id, scenario_id, -1 AS n FROM old_rows WHERE {_COUNTED})
                   AS changes
              GROUP BY tenant_id, scenario_id HAVING sum(n) <> 0) AS moved
        WHERE scenarios.id = moved.scenario_id AND scenarios.tenant_id = moved.tenant_id;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER simulations_count_insert AFTER INSERT ON simulations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION simconfig_count_inserted_simulations()
    """,
    # PostgreSQL allows no column list with transition tables, so every update statement runs
    # it; on a one-row update that moves nothing it costs a few tens of microseconds.
    """
    CREATE TRIGGER simulations_count_update AFTER UPDATE
    ON simulations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION simconfig_count_updated_simulations()
    """,
    """
    CREATE TRIGGER simulations_count_delete AFTER DELETE ON simulations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION simconfig_count_deleted_simulations()
    """,
]

# SQLite: row triggers; it updates rows in place, so many updates of one row stay cheap.
_SQLITE = [
    """
    CREATE TRIGGER simulations_count_insert AFTER INSERT ON simulations
    WHEN NEW.scenario_id IS NOT NULL AND NEW.delete_time IS NULL
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count + 1
        WHERE id = NEW.scenario_id AND tenant_id = NEW.tenant_id;
    END
    """,
    """
    CREATE TRIGGER simulations_count_update AFTER UPDATE OF scenario_id, delete_time
    ON simulations
    WHEN OLD.scenario_id IS NOT NEW.scenario_id OR OLD.delete_time IS NOT NEW.delete_time
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count - 1
        WHERE id = OLD.scenario_id AND tenant_id = OLD.tenant_id AND OLD.delete_time IS NULL;
        UPDATE scenarios SET simulation_count = simulation_count + 1
        WHERE id = NEW.scenario_id AND tenant_id = NEW.tenant_id AND NEW.delete_time IS NULL;
    END
    """,
    """
    CREATE TRIGGER simulations_count_delete AFTER DELETE ON simulations
    WHEN OLD.scenario_id IS NOT NULL AND OLD.delete_time IS NULL
    BEGIN
        UPDATE scenarios SET simulation_count = simulation_count - 1
        WHERE id = OLD.scenario_id AND tenant_id = OLD.tenant_id;
    END
    """,
]

_BACKFILL = """
    UPDATE scenarios SET simulation_count = (
        SELECT count(*) FROM simulations
        WHERE simulations.scenario_id = scenarios.id AND simulations.tenant_id = scenarios.tenant_id
          AND simulations.delete_time IS NULL
    )
"""


def upgrade() -> None:
    op.add_column(
        "scenarios",
        sa.Column("simulation_count", sa.Integer(), nullable=False, server_default="0"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # No simulation may move while the count is backfilled and the triggers created.
        op.execute("LOCK TABLE simulations IN SHARE MODE")
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)
    op.execute(_BACKFILL)


def downgrade() -> None:
    for trigger in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS simulations_count_{trigger}" + _on_table())
    if op.get_bind().dialect.name == "postgresql":
        for change in ("inserted", "updated", "deleted"):
            op.execute(f"DROP FUNCTION IF EXISTS simconfig_count_{change}_simulations()")
    with op.batch_alter_table("scenarios") as batch:
        batch.drop_column("simulation_count")


def _on_table() -> str:
    return " ON simulations" if op.get_bind().dialect.name == "postgresql" else ""
