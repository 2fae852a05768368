"""Scenarios: tenant-scoped, soft-deletable, written with compare-and-swap on the etag."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import Select, delete, func, insert, select, update

from storage.errors import Conflict, NotFound
from storage.records import Scenario, ScenarioQuery
from storage.repositories.base import SqlRepository
from storage.repositories.paging import contains, keyset_page, label_conditions, sort_column
from storage.schema import scenarios, simulations
from storage.translate import UniqueRule

_ORDERINGS = ("create_time", "display_name")


def _display_name_rule(scenario: Scenario) -> UniqueRule:
    return UniqueRule(
        "uq_scenarios_tenant_live_display_name",
        ("tenant_id", "display_name"),
        "display_name",
        scenario.display_name,
    )


def _select_with_count() -> Select[Any]:
    live_simulations = (
        select(func.count())
        .select_from(simulations)
        .where(
            simulations.c.tenant_id == scenarios.c.tenant_id,
            simulations.c.scenario_id == scenarios.c.id,
            simulations.c.delete_time.is_(None),
        )
        .correlate(scenarios)
        .scalar_subquery()
    )
    return select(scenarios, live_simulations.label("simulation_count"))


class ScenarioRepository(SqlRepository):
    """Stores scenarios; every method is scoped by tenant id except the cross-tenant purge."""

    def add(self, scenario: Scenario) -> Scenario:
        """Store a new scenario with a fresh etag and return it as stored.

        AlreadyExists(field="display_name") when a live scenario of the tenant has the name,
        AlreadyExists(field="request_id") when the request id was used before.
        """
        values = asdict(scenario)
        del values["simulation_count"]
        values["etag"] = uuid4().hex
        self._execute_guarded(
            insert(scenarios).values(**values),
            entity="scenario",
            uniques=(
                _display_name_rule(scenario),
                UniqueRule(
                    "uq_scenarios_tenant_request_id",
                    ("tenant_id", "request_id"),
                    "request_id",
                    scenario.request_id or "",
                ),
                UniqueRule("scenarios_pkey", ("id",), "id", scenario.id),
            ),
        )
        return self.get(scenario.tenant_id, scenario.id, include_deleted=True)

    def get(
        self,
        tenant_id: str,
        scenario_id: str,
        *,
        include_deleted: bool = False,
        lock: str | None = None,
    ) -> Scenario:
        """Return the scenario with its live simulation count; NotFound otherwise.

        ``lock="share"`` holds the row against deletion until the transaction ends (taken by
        writes that put a simulation into the scenario); ``lock="update"`` holds it exclusively
        (taken by delete and undelete, so they count simulations no one is adding);
        ``lock="edit"`` (``FOR NO KEY UPDATE``) serialises editors of its fields without
        blocking simulations being added. PostgreSQL locks the row; SQLite's write lock already
        serialises these transactions.
        """
        statement = _select_with_count().where(
            scenarios.c.tenant_id == tenant_id, scenarios.c.id == scenario_id
        )
        if not include_deleted:
            statement = statement.where(scenarios.c.delete_time.is_(None))
        if lock == "share":
            statement = statement.with_for_update(read=True, of=scenarios)
        elif lock == "update":
            statement = statement.with_for_update(of=scenarios)
        elif lock == "edit":
            statement = statement.with_for_update(key_share=True, of=scenarios)
        elif lock is not None:
            raise ValueError(f"unknown lock {lock!r}")
        row = self._execute(statement).first()
        if row is None:
            raise NotFound("scenario", scenario_id)
        return Scenario(**row._mapping)

    def get_by_request_id(self, tenant_id: str, request_id: str) -> Scenario | None:
        """Return the scenario created by ``request_id``, if any (for idempotent creates).

        Soft-deleted scenarios are returned too: they are still readable, and a retried create
        must get the first result rather than a clash with its own request id.
        """
        row = self._execute(
            _select_with_count().where(
                scenarios.c.tenant_id == tenant_id, scenarios.c.request_id == request_id
            )
        ).first()
        return None if row is None else Scenario(**row._mapping)

    def list(self, tenant_id: str, query: ScenarioQuery) -> list[Scenario]:
        """Return one keyset page of the tenant's scenarios matching ``query``."""
        statement = _select_with_count().where(scenarios.c.tenant_id == tenant_id)
        if not query.show_deleted:
            statement = statement.where(scenarios.c.delete_time.is_(None))
        if query.display_name_equals is not None:
            statement = statement.where(scenarios.c.display_name == query.display_name_equals)
        if query.display_name_contains is not None:
            statement = statement.where(
                contains(scenarios.c.display_name, query.display_name_contains)
            )
        statement = statement.where(*label_conditions(scenarios.c.labels, query.labels))
        statement = keyset_page(
            statement,
            scenarios,
            sort_column(scenarios, query.order_by, _ORDERINGS),
            descending=query.descending,
            after=query.after,
            limit=query.limit,
        )
        return [Scenario(**row._mapping) for row in self._execute(statement)]

    def update(self, scenario: Scenario, *, expected_etag: str) -> Scenario:
        """Write the mutable fields if the stored etag is ``expected_etag``; return the new row.

        Conflict when the etag differs, NotFound when the row is missing, AlreadyExists when
        the new display name clashes with another live scenario.
        """
        result = self._execute_guarded(
            update(scenarios)
            .where(
                scenarios.c.tenant_id == scenario.tenant_id,
                scenarios.c.id == scenario.id,
                scenarios.c.etag == expected_etag,
            )
            .values(
                display_name=scenario.display_name,
                description=scenario.description,
                labels=scenario.labels,
                update_time=scenario.update_time,
                delete_time=scenario.delete_time,
                purge_time=scenario.purge_time,
                etag=uuid4().hex,
            ),
            entity="scenario",
            uniques=(_display_name_rule(scenario),),
        )
        if result.rowcount == 0:
            self.get(scenario.tenant_id, scenario.id, include_deleted=True)
            raise Conflict("scenario", scenario.id)
        return self.get(scenario.tenant_id, scenario.id, include_deleted=True)

    def purge_expired(self, now: datetime) -> int:
        """Hard-delete soft-deleted scenarios whose purge_time has passed, in every tenant.

        Their simulations go too, and the database cascades to revisions, events and jobs.
        Returns the number of scenarios purged.
        """
        # Lock the rows first so a concurrent undelete cannot slip in between the two deletes.
        expired_ids = list(
            self._execute(
                select(scenarios.c.id)
                .where(scenarios.c.delete_time.is_not(None), scenarios.c.purge_time <= now)
                .with_for_update()
            ).scalars()
        )
        if not expired_ids:
            return 0
        self._execute(delete(simulations).where(simulations.c.scenario_id.in_(expired_ids)))
        self._execute(delete(scenarios).where(scenarios.c.id.in_(expired_ids)))
        return len(expired_ids)
