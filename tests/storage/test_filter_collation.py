"""Text filters order strings by code point, even where the database's own collation does not.

SQLite orders by code point; on PostgreSQL the filters say ``COLLATE "C"``. The test cluster's
default collation (``C.UTF-8``) orders by code point too, so a filter that lost its collation
would answer the same there. These tests run on a database created with a linguistic ICU
collation instead (``en-US``: a < B < b, where code point order is B < a < b), which tells the
two apart.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from storage import (
    Comparison,
    ConfigRevision,
    Database,
    Scenario,
    ScenarioQuery,
    Simulation,
    SimulationQuery,
    Template,
    TemplateQuery,
    TemplateRevision,
    Tenant,
)
from tests.conftest import throwaway_postgres_database

NOW = datetime(2026, 1, 1, tzinfo=UTC)
# Code point order: B < a < b. In en-US order: a < B < b.
WORDS = ("B", "a", "b")
# Each bound and operator answers differently in the two orders.
BOUNDS = [("<", "a"), ("<=", "B"), (">", "a"), (">=", "B")]
OPERATORS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@pytest.fixture(scope="module")
def linguistic() -> Iterator[tuple[Database, str]]:
    """A migrated PostgreSQL database whose default collation is ICU's en-US, and a tenant
    with a scenario, a template and a simulation for each word."""
    with throwaway_postgres_database(icu_locale="en-US") as url:
        database = Database(url)
        try:
            with database.engine.connect() as connection:
                # The premise of these tests: this database does not order by code point.
                assert connection.execute(text("SELECT 'a' < 'B'")).scalar_one() is True
            database.migrate()
            tenant_id = str(uuid.uuid4())
            _store(database, tenant_id)
            yield database, tenant_id
        finally:
            database.dispose()


def _store(database: Database, tenant_id: str) -> None:
    tenant = Tenant(id=tenant_id, name=f"collation-{tenant_id}", create_time=NOW)
    database.run(lambda uow: uow.tenants.add(tenant))
    for word in WORDS:
        scenario = Scenario(
            id=f"scenario-{word}",
            tenant_id=tenant_id,
            display_name=word,
            description=word,
            labels={"k": word},
            create_time=NOW,
            update_time=NOW,
        )
        template = Template(
            id=f"template-{word}",
            tenant_id=tenant_id,
            display_name=word,
            description=word,
            labels={"k": word},
            current_revision=1,
            create_time=NOW,
            update_time=NOW,
        )
        template_revision = TemplateRevision(
            tenant_id=tenant_id,
            template_id=template.id,
            revision=1,
            config={"schema_version": 2, "title": word},
            parameters={},
            create_time=NOW,
            actor="key-1",
        )
        simulation = Simulation(
            id=f"simulation-{word}",
            tenant_id=tenant_id,
            scenario_id=None,
            name=word,
            prompt="",
            labels={"k": word},
            status="COMPLETED_CONFIG",
            current_revision=1,
            architect_parameters=None,
            results=None,
            analysis=None,
            last_error=None,
            create_time=NOW,
            update_time=NOW,
        )
        revision = ConfigRevision(
            tenant_id=tenant_id,
            simulation_id=simulation.id,
            revision=1,
            config={"schema_version": 2, "title": word, "agents": [{"role": word}]},
            sources=[],
            create_time=NOW,
            actor="key-1",
            origin="EDIT",
        )

        database.run(lambda uow, scenario=scenario: uow.scenarios.add(scenario))
        database.run(lambda uow, t=template, r=template_revision: uow.templates.add(t, r))
        database.run(lambda uow, simulation=simulation: uow.simulations.add(simulation))
        database.run(lambda uow, revision=revision: uow.revisions.add(revision))


def _code_point_order(op: str, bound: str) -> list[str]:
    """The words ``word op bound`` holds for, comparing code points as Python does."""
    return sorted(word for word in WORDS if OPERATORS[op](word, bound))


def _comparison(field: str, op: str, bound: str) -> Comparison:
    if field.startswith("labels."):
        return Comparison("labels", op, bound, key=field.removeprefix("labels."))
    if field.startswith("config."):
        return Comparison("config", op, bound, key=tuple(field.removeprefix("config.").split(".")))
    return Comparison(field, op, bound)


@pytest.mark.parametrize(("op", "bound"), BOUNDS)
@pytest.mark.parametrize("field", ["display_name", "description", "labels.k"])
def test_scenario_filters_order_text_by_code_point(linguistic, field, op, bound):
    database, tenant_id = linguistic
    query = ScenarioQuery(limit=10, filter=_comparison(field, op, bound))
    found = database.run(lambda uow: uow.scenarios.list(tenant_id, query))
    assert sorted(row.display_name for row in found) == _code_point_order(op, bound)


@pytest.mark.parametrize(("op", "bound"), BOUNDS)
@pytest.mark.parametrize("field", ["display_name", "description", "labels.k"])
def test_template_filters_order_text_by_code_point(linguistic, field, op, bound):
    database, tenant_id = linguistic
    query = TemplateQuery(limit=10, filter=_comparison(field, op, bound))
    found = database.run(lambda uow: uow.templates.list(tenant_id, query))
    assert sorted(row.display_name for row in found) == _code_point_order(op, bound)


@pytest.mark.parametrize(("op", "bound"), BOUNDS)
@pytest.mark.parametrize("field", ["name", "labels.k", "config.title", "config.agents.*.role"])
def test_simulation_filters_order_text_by_code_point(linguistic, field, op, bound):
    database, tenant_id = linguistic
    query = SimulationQuery(limit=10, filter=_comparison(field, op, bound))
    found = database.run(lambda uow: uow.simulations.list(tenant_id, query))
    assert sorted(row.name for row in found) == _code_point_order(op, bound)
