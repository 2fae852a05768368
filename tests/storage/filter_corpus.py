"""A small, fixed set of simulations with configs, stored the same way on any engine.

The filter tests run the same filters over it on SQLite and PostgreSQL and compare the ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage import ConfigRevision, Database, Scenario, Simulation, Tenant

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
MODELS = ("sim-small-1", "sim-large-1", "Sim-Large-1", "sim-ünï")
ROLES = ("buyer", "seller", "broker", "")
STATUSES = ("PENDING", "COMPLETED_CONFIG", "RUNNING", "COMPLETED", "FAILED")
LABEL_KEYS = ("env", "team")
LABEL_VALUES = ("dev", "prod", "risk")
GOALS = ("sell high", "buy low")


def config_document(index: int) -> dict[str, Any]:
    """A version-2 config document that varies with ``index``."""
    document: dict[str, Any] = {
        "schema_version": 2,
        "title": f"market {index % 5}",
        "objective": "see who sells first" if index % 2 else "",
        "max_turns": 5 + (index * 7) % 40,
        "model": MODELS[index % len(MODELS)],
        "agents": [
            {
                "id": f"agent-{n}",
                "name": f"Agent {n}",
                "role": ROLES[(index + n) % len(ROLES)],
                "persona": "haggles" if (index + n) % 3 == 0 else "",
                "attributes": {},
                "goals": GOALS[: (index + n) % 3],
            }
            for n in range(1 + index % 3)
        ],
        "events": [],
        "metrics": [{"name": f"metric-{index % 4}", "description": "", "kind": "GAUGE"}],
    }
    if index % 3:
        document["temperature"] = round((index % 7) * 0.3, 1)
    if index % 4:
        document["seed"] = index * 1_000_003 - 2_000_000
    if index % 2:
        document["environment"] = {
            "description": f"weather {index % 3}",
            "rules": ["no lying"] if index % 4 == 1 else ["no lying", "be quick"],
            "parameters": {},
        }
    return document


@dataclass
class Corpus:
    """The ids of what :func:`store_corpus` stored, and the tenant whose rows are listed."""

    tenant_id: str
    other_tenant_id: str
    scenario_id: str
    simulation_ids: list[str]


def store_corpus(database: Database, corpus: Corpus, count: int = 24) -> None:
    """Stores ``count`` simulations of ``corpus.tenant_id`` and a copy of each in the other one.

    Every third simulation has two revisions, the older with another model, and every fifth
    has no config at all.
    """
    for tenant_id in (corpus.tenant_id, corpus.other_tenant_id):
        tenant = Tenant(id=tenant_id, name=f"filters-{tenant_id}", create_time=BASE_TIME)
        database.run(lambda uow, tenant=tenant: uow.tenants.add(tenant))
    scenario = Scenario(
        id=corpus.scenario_id,
        tenant_id=corpus.tenant_id,
        display_name="filtered",
        description="",
        labels={},
        create_time=BASE_TIME,
        update_time=BASE_TIME,
    )
    database.run(lambda uow: uow.scenarios.add(scenario))
    for index in range(count):
        for tenant_id, prefix in ((corpus.tenant_id, ""), (corpus.other_tenant_id, "other-")):
            _store_simulation(
                database,
                tenant_id,
                prefix + corpus.simulation_ids[index],
                index,
                corpus.scenario_id if tenant_id == corpus.tenant_id else None,
            )


def _store_simulation(
    database: Database, tenant_id: str, simulation_id: str, index: int, scenario_id: str | None
) -> None:
    revisions = 0 if index % 5 == 4 else (2 if index % 3 == 0 else 1)
    labels = {}
    if index % 2:
        labels["env"] = LABEL_VALUES[index % 3]
    if index % 3 == 1:
        labels["team"] = LABEL_VALUES[(index + 1) % 3]
    when = BASE_TIME + timedelta(hours=index)
    simulation = Simulation(
        id=simulation_id,
        tenant_id=tenant_id,
        scenario_id=scenario_id if index % 4 == 0 else None,
        name=f"simulation {index} {'alpha' if index % 2 else 'Beta'}",
        prompt="",
        labels=labels,
        status=STATUSES[index % len(STATUSES)],
        current_revision=revisions,
        architect_parameters=None,
        results=None,
        analysis=None,
        last_error=None,
        create_time=when,
        update_time=when + timedelta(minutes=index),
    )
    database.run(lambda uow: uow.simulations.add(simulation))
    for number in range(1, revisions + 1):
        document = config_document(index)
        if number < revisions:
            document = dict(document, model="sim-retired-0", max_turns=999)
        revision = ConfigRevision(
            tenant_id=tenant_id,
            simulation_id=simulation_id,
            revision=number,
            config=document,
            sources=[],
            create_time=when,
            actor="key-1",
            origin="EDIT",
        )
        database.run(lambda uow, revision=revision: uow.revisions.add(revision))
