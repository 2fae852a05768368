"""Scenarios: tenant-scoped, soft-deletable, written with compare-and-swap on the etag."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime
from uuid import uuid4

from sqlalchemy import bindparam, delete, insert, select

from storage.driver_errors import UniqueRule
from storage.errors import Conflict, NotFound
from storage.queries import Query
from storage.records import Scenario, ScenarioQuery
from storage.repositories.base import RecordTable, SqlRepository
from storage.repositories.filter_sql import ColumnField, FilterField, LabelsField, compile_filter
from storage.repositories.keyset import bound_keyset_page, keyset_page, sort_column
from storage.schema import scenarios, simulation_events, simulations

_ORDERINGS = ("create_time", "display_name")
# The actor of the DELETED events the purge writes: no API key asked for it.
PURGE_ACTOR = "purge"
# What a ListScenarios filter can name.
_FILTER_FIELDS: dict[str, FilterField] = {
    "display_name": ColumnField(scenarios.c.display_name, text=True),
    "description": ColumnField(scenarios.c.description, text=True),
    "labels": LabelsField(scenarios.c.labels),
    "create_time": ColumnField(scenarios.c.create_time),
    "update_time": ColumnField(scenarios.c.update_time),
    "delete_time": ColumnField(scenarios.c.delete_time),
    "simulation_count": ColumnField(scenarios.c.simulation_count),
}
# The record is the column list: see RecordTable.
COLUMNS = RecordTable(
    Scenario,
    scenarios,
    keys=("tenant_id", "id"),
    fixed=("create_time", "request_id", "request_fingerprint"),
    computed=("simulation_count",),  # maintained by triggers (migration 0005)
)


def _display_name_rule(scenario: Scenario) -> UniqueRule:
    return UniqueRule(
        "uq_scenarios_tenant_live_display_name",
        ("tenant_id", "display_name"),
        "display_name",
        scenario.display_name,
    )


@functools.cache
def _get_query(include_deleted: bool, lock: str | None) -> Query:
    # Compiled once per variant: GetScenario is the hottest read.
    statement = select(scenarios).where(
        scenarios.c.tenant_id == bindparam("tenant_id"), scenarios.c.id == bindparam("scenario_id")
    )
    if not include_deleted:
        statement = statement.where(scenarios.c.delete_time.is_(None))
    if lock == "share":
        statement = statement.with_for_update(read=True, key_share=True, of=scenarios)
    elif lock == "update":
        statement = statement.with_for_update(of=scenarios)
    elif lock == "edit":
        statement = statement.with_for_update(key_share=True, of=scenarios)
    elif lock is not None:
        raise ValueError(f"unknown lock {lock!r}")
    return Query(statement)


@functools.cache
def _page_query(show_deleted: bool, order_by: str, descending: bool, after: bool) -> Query:
    # Compiled once per variant: an unfiltered page is what ListScenarios serves most.
    statement = select(scenarios).where(scenarios.c.tenant_id == bindparam("tenant_id"))
    if not show_deleted:
        statement = statement.where(scenarios.c.delete_time.is_(None))
    return Query(
        bound_keyset_page(
            statement,
            scenarios,
            sort_column(scenarios, order_by, _ORDERINGS),
            descending=descending,
            after=after,
        )
    )


class ScenarioRepository(SqlRepository):
    """Stores scenarios; every method is scoped by tenant id except the cross-tenant purge."""

    def add(self, scenario: Scenario) -> Scenario:
        """Store a new scenario with a fresh etag and return it as stored.

        AlreadyExists(field="display_name") when a live scenario of the tenant has the name,
        AlreadyExists(field="request_id") when the request id was used before.
        """
        result = self._write(
            COLUMNS.insert,
            COLUMNS.insert_values(replace(scenario, etag=uuid4().hex)),
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
            returning=True,
            savepoint=True,
        )
        return Scenario(**result)

    def get(
        self,
        tenant_id: str,
        scenario_id: str,
        *,
        include_deleted: bool = False,
        lock: str | None = None,
    ) -> Scenario:
        """Return the scenario (with its live simulation count); NotFound otherwise.

        ``lock="share"`` (``FOR KEY SHARE``) holds the row against deletion until the
        transaction ends (taken by writes that put a simulation into the scenario; it lets
        them update the stored count without deadlocking each other); ``lock="update"`` holds
        it exclusively (taken by delete and undelete, so they count simulations no one is
        adding);
        ``lock="edit"`` (``FOR NO KEY UPDATE``) serialises editors of its fields without
        blocking simulations being added. PostgreSQL locks the row; SQLite's write lock already
        serialises these transactions.
        """
        row = self._first(
            _get_query(include_deleted, lock), {"tenant_id": tenant_id, "scenario_id": scenario_id}
        )
        if row is None:
            raise NotFound("scenario", scenario_id)
        return Scenario(**row)

    def get_many(self, tenant_id: str, scenario_ids: list[str]) -> dict[str, Scenario]:
        """The tenant's scenarios (live or soft-deleted) among ``scenario_ids``, keyed by id."""
        rows = self._execute(
            select(scenarios).where(
                scenarios.c.tenant_id == tenant_id, scenarios.c.id.in_(set(scenario_ids))
            )
        )
        return {row.id: Scenario(**row._mapping) for row in rows}

    def get_by_request_id(self, tenant_id: str, request_id: str) -> Scenario | None:
        """Return the scenario created by ``request_id``, if any (for idempotent creates).

        Soft-deleted scenarios are returned too: they are still readable, and a retried create
        must get the first result rather than a clash with its own request id.
        """
        row = self._execute(
            select(scenarios).where(
                scenarios.c.tenant_id == tenant_id, scenarios.c.request_id == request_id
            )
        ).first()
        return None if row is None else Scenario(**row._mapping)

    def list(self, tenant_id: str, query: ScenarioQuery) -> list[Scenario]:
        """Return one keyset page of the tenant's scenarios matching ``query``."""
        if query.filter is None:
            parameters = {"tenant_id": tenant_id, "limit": query.limit}
            if query.after is not None:
                parameters["after_value"], parameters["after_id"] = query.after
            page = _page_query(
                query.show_deleted, query.order_by, query.descending, query.after is not None
            )
            return [Scenario(**row) for row in self._all(page, parameters)]
        statement = select(scenarios).where(scenarios.c.tenant_id == tenant_id)
        if not query.show_deleted:
            statement = statement.where(scenarios.c.delete_time.is_(None))
        if query.filter is not None:
            dialect = self._connection.dialect.name
            statement = statement.where(compile_filter(query.filter, _FILTER_FIELDS, dialect))
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
        fresh = replace(scenario, etag=uuid4().hex)
        row = self._write(
            COLUMNS.update,
            COLUMNS.update_values(fresh, expected_etag),
            entity="scenario",
            uniques=(_display_name_rule(scenario),),
            returning=True,
            savepoint=True,
        )
        if row is None:
            self.get(scenario.tenant_id, scenario.id, include_deleted=True)
            raise Conflict("scenario", scenario.id)
        return Scenario(**row)

    def purge_expired(self, now: datetime) -> int:
        """Hard-delete soft-deleted scenarios whose purge_time has passed, in every tenant.

        Their simulations go too, and the database cascades to revisions, events and jobs;
        each simulation leaves one DELETED event, by ``PURGE_ACTOR``, a tenant's numbered in
        the order of its simulations' ids.
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
        # Each simulation leaves a DELETED event, written while it still exists (webhooks
        # filtered by scenario match it); the rest of its trail goes with it (migration 0015).
        doomed = self._execute(
            select(
                simulations.c.tenant_id,
                simulations.c.id,
                simulations.c.scenario_id,
                simulations.c.name,
            )
            .where(simulations.c.scenario_id.in_(expired_ids))
            .order_by(simulations.c.tenant_id, simulations.c.id)
        ).all()
        if doomed:
            self._execute(
                insert(simulation_events),
                [
                    {
                        "tenant_id": row.tenant_id,
                        "simulation_id": row.id,
                        "kind": "DELETED",
                        "actor": PURGE_ACTOR,
                        "create_time": now,
                        "reason": "its scenario was purged after the retention period",
                        "details": {"scenario_id": row.scenario_id, "name": row.name},
                    }
                    for row in doomed
                ],
            )
        self._execute(delete(simulations).where(simulations.c.scenario_id.in_(expired_ids)))
        self._execute(delete(scenarios).where(scenarios.c.id.in_(expired_ids)))
        return len(expired_ids)
