"""The first page of a list reads its rows in order from an index, whatever the statistics say.

Right after a burst of creates, before autovacuum analyzes the table again, PostgreSQL's row
estimate for a tenant is stale. These tests make it so (analyze a small table, then add many
rows) and check that the first page of live scenarios and templates is still read from an index
in creation order, with no sort of every live row (migration 0021).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from storage import Database
from storage.records import ScenarioQuery, TemplateQuery

_INSERT = """
    INSERT INTO {table} (id, tenant_id, display_name, description, labels, create_time,
                         update_time, etag{extra_columns})
    SELECT gen_random_uuid()::text, :tenant_id, :prefix || g, '', '{{}}'::jsonb,
           now() - (g || ' ms')::interval, now(), 'etag'{extra_values}
    FROM generate_series(1, :count) g
"""


def _table_insert(table: str) -> str:
    if table == "scenarios":
        return _INSERT.format(table=table, extra_columns=", simulation_count", extra_values=", 0")
    return _INSERT.format(table=table, extra_columns=", current_revision", extra_values=", 1")


@pytest.mark.parametrize(
    ("table", "index", "list_page"),
    [
        (
            "scenarios",
            "ix_scenarios_tenant_live_create_time",
            lambda uow, tenant: uow.scenarios.list(tenant, ScenarioQuery(limit=51)),
        ),
        (
            "templates",
            "ix_templates_tenant_live_create_time",
            lambda uow, tenant: uow.templates.list(tenant, TemplateQuery(limit=51)),
        ),
    ],
)
def test_the_first_page_of_live_rows_needs_no_sort_with_stale_statistics(
    empty_postgres_url, table, index, list_page
):
    database = Database(empty_postgres_url)
    database.migrate()
    tenant_id = str(uuid.uuid4())
    try:
        with database.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO tenants (id, name, create_time) VALUES (:id, 'plans', now())"),
                {"id": tenant_id},
            )
            connection.execute(
                text(_table_insert(table)), {"tenant_id": tenant_id, "prefix": "a", "count": 5}
            )
        with database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        ) as connection:
            connection.execute(text(f"ANALYZE {table}"))
        # A burst of creates the statistics have not seen.
        with database.engine.begin() as connection:
            connection.execute(
                text(_table_insert(table)), {"tenant_id": tenant_id, "prefix": "b", "count": 5000}
            )
        sent: list[tuple[str, dict]] = []

        def remember(conn, cursor, statement, parameters, context, executemany):
            if f"FROM {table}" in statement:
                sent.append((statement, parameters))

        event.listen(Engine, "before_cursor_execute", remember)
        try:
            rows = database.read(lambda uow: list_page(uow, tenant_id))
        finally:
            event.remove(Engine, "before_cursor_execute", remember)
        assert len(rows) == 51
        statement, parameters = sent[-1]
        with database.engine.connect() as connection:
            cursor = connection.connection.dbapi_connection.cursor()
            cursor.execute("EXPLAIN " + statement, parameters)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert index in plan, plan
        assert "Sort" not in plan, plan
    finally:
        database.dispose()
