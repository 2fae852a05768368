"""Simulations: tenant-scoped, written with compare-and-swap; soft-deleted ones are invisible."""

from __future__ import annotations

import builtins
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import and_, bindparam, delete, func, select, update

from storage.driver_errors import UniqueRule
from storage.errors import Conflict, NotFound
from storage.queries import Query
from storage.records import Simulation, SimulationQuery
from storage.repositories.base import RecordTable, SqlRepository
from storage.repositories.filter_sql import (
    ColumnField,
    CurrentConfigField,
    FilterField,
    LabelsField,
    compile_filter,
)
from storage.repositories.keyset import keyset_page, sort_column
from storage.schema import config_revisions, simulations

_ORDERINGS = ("create_time", "name")
# What a ListSimulations filter can name; config fields read the current revision's document.
_FILTER_FIELDS: dict[str, FilterField] = {
    "scenario_id": ColumnField(simulations.c.scenario_id, null_as=""),
    "name": ColumnField(simulations.c.name, text=True),
    "status": ColumnField(simulations.c.status),
    "labels": LabelsField(simulations.c.labels),
    "create_time": ColumnField(simulations.c.create_time),
    "update_time": ColumnField(simulations.c.update_time),
    "current_revision": ColumnField(simulations.c.current_revision),
    "config": CurrentConfigField(simulations),
}
_LIVE = simulations.c.delete_time.is_(None)
# The record is the column list: see RecordTable. delete_time is written only by the
# scenario-wide soft delete and restore.
COLUMNS = RecordTable(
    Simulation,
    simulations,
    keys=("tenant_id", "id"),
    fixed=("create_time", "delete_time", "request_id", "request_fingerprint"),
    updatable_when=(_LIVE,),
)
_GET_STATEMENT = select(simulations).where(
    simulations.c.tenant_id == bindparam("tenant_id"),
    simulations.c.id == bindparam("simulation_id"),
    _LIVE,
)
_GET = Query(_GET_STATEMENT)
_LOCKED_GET = Query(_GET_STATEMENT.with_for_update())
_CURRENT_REVISION = and_(
    config_revisions.c.tenant_id == simulations.c.tenant_id,
    config_revisions.c.simulation_id == simulations.c.id,
    config_revisions.c.revision == simulations.c.current_revision,
)


# Compiled once: GetSimulation is a hot read. The simulation and its current revision's sources.
_WITH_SOURCES = Query(
    select(simulations, config_revisions.c.sources.label("current_sources"))
    .select_from(simulations.outerjoin(config_revisions, _CURRENT_REVISION))
    .where(
        simulations.c.tenant_id == bindparam("tenant_id"),
        simulations.c.id == bindparam("simulation_id"),
        _LIVE,
    )
)


class SimulationRepository(SqlRepository):
    """Stores simulations; every method is scoped by tenant id."""

    def add(self, sim: Simulation) -> Simulation:
        """Store a new simulation with a fresh etag and return it as stored.

        AlreadyExists(field="request_id") when the request id was used before; NotFound for a
        scenario_id that does not exist.
        """
        stored = replace(sim, etag=uuid4().hex)
        self._write(
            COLUMNS.insert,
            COLUMNS.insert_values(stored),
            entity="simulation",
            uniques=(
                UniqueRule(
                    "uq_simulations_tenant_request_id",
                    ("tenant_id", "request_id"),
                    "request_id",
                    sim.request_id or "",
                ),
                UniqueRule("simulations_pkey", ("id",), "id", sim.id),
            ),
            parent=("scenario", sim.scenario_id or ""),
            savepoint=True,
        )
        # Nothing in a simulation row is computed by the database but the etag chosen here.
        return stored

    def get(self, tenant_id: str, simulation_id: str, *, for_update: bool = False) -> Simulation:
        """Return the live simulation; NotFound when missing or soft-deleted.

        ``for_update`` locks the row until the transaction ends, so concurrent writers of one
        simulation take turns on PostgreSQL instead of failing each other's compare-and-swap
        (SQLite's write lock already makes them take turns).
        """
        row = self._first(
            _LOCKED_GET if for_update else _GET,
            {"tenant_id": tenant_id, "simulation_id": simulation_id},
        )
        if row is None:
            raise NotFound("simulation", simulation_id)
        return Simulation(**row)

    def get_with_sources(
        self, tenant_id: str, simulation_id: str
    ) -> tuple[Simulation, list[dict[str, Any]]]:
        """Return the live simulation and the sources of its current revision ([] without one).

        One statement: the simulation joined with its current revision's sources.
        """
        values = self._first(
            _WITH_SOURCES, {"tenant_id": tenant_id, "simulation_id": simulation_id}
        )
        if values is None:
            raise NotFound("simulation", simulation_id)
        sources = values.pop("current_sources")
        return Simulation(**values), sources or []

    def get_many_with_sources(
        self, tenant_id: str, simulation_ids: list[str]
    ) -> dict[str, tuple[Simulation, list[dict[str, Any]]]]:
        """The tenant's live simulations among ``simulation_ids``, each with its current sources.

        One statement; keyed by id, so the caller sees which ids are missing.
        """
        rows = self._execute(
            select(simulations, config_revisions.c.sources.label("current_sources"))
            .select_from(simulations.outerjoin(config_revisions, _CURRENT_REVISION))
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.id.in_(set(simulation_ids)),
                _LIVE,
            )
        )
        found: dict[str, tuple[Simulation, list[dict[str, Any]]]] = {}
        for row in rows:
            values = dict(row._mapping)
            sources = values.pop("current_sources")
            found[values["id"]] = (Simulation(**values), sources or [])
        return found

    def get_by_request_id(self, tenant_id: str, request_id: str) -> Simulation | None:
        """Return the live simulation created by ``request_id``, if any.

        A soft-deleted simulation is invisible everywhere (its scenario was deleted), so it is
        not returned here either; adding again with that request id raises AlreadyExists.
        """
        row = self._execute(
            select(simulations).where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.request_id == request_id,
                _LIVE,
            )
        ).first()
        return None if row is None else Simulation(**row._mapping)

    def list(self, tenant_id: str, query: SimulationQuery) -> list[Simulation]:
        """Return one keyset page of the tenant's live simulations matching ``query``."""
        statement = self._page_statement(select(simulations), tenant_id, query)
        return [Simulation(**row._mapping) for row in self._execute(statement)]

    def list_with_sources(
        self, tenant_id: str, query: SimulationQuery
    ) -> builtins.list[tuple[Simulation, builtins.list[dict[str, Any]]]]:
        """Like :meth:`list`, each simulation with its current revision's sources ([] without).

        One statement, as :meth:`get_with_sources`: a listed simulation has the fields a
        fetched one has.
        """
        statement = self._page_statement(
            select(simulations, config_revisions.c.sources.label("current_sources")).select_from(
                simulations.outerjoin(config_revisions, _CURRENT_REVISION)
            ),
            tenant_id,
            query,
        )
        pairs = []
        for row in self._execute(statement):
            values = dict(row._mapping)
            sources = values.pop("current_sources")
            pairs.append((Simulation(**values), sources or []))
        return pairs

    def _page_statement(self, statement, tenant_id: str, query: SimulationQuery):
        statement = statement.where(simulations.c.tenant_id == tenant_id, _LIVE)
        if query.filter is not None:
            dialect = self._connection.dialect.name
            statement = statement.where(compile_filter(query.filter, _FILTER_FIELDS, dialect))
        return keyset_page(
            statement,
            simulations,
            sort_column(simulations, query.order_by, _ORDERINGS),
            descending=query.descending,
            after=query.after,
            limit=query.limit,
        )

    def update(self, sim: Simulation, *, expected_etag: str) -> Simulation:
        """Write every mutable field if the stored etag is ``expected_etag``.

        Returns the simulation as written. Conflict when the etag differs, NotFound when the
        simulation is missing or deleted, NotFound("scenario") for a scenario that does not
        exist.
        """
        written = replace(sim, etag=uuid4().hex)
        count = self._write(
            COLUMNS.update,
            COLUMNS.update_values(written, expected_etag),
            entity="simulation",
            parent=("scenario", sim.scenario_id or ""),
        )
        if count == 0:
            self.get(sim.tenant_id, sim.id)
            raise Conflict("simulation", sim.id)
        # As written: nothing in a simulation row is computed by the database.
        return written

    def delete(
        self, tenant_id: str, simulation_id: str, *, expected_etag: str | None = None
    ) -> None:
        """Hard-delete a live simulation; the database cascades to revisions, events and jobs.

        With ``expected_etag`` the delete is a compare-and-swap: a simulation changed since the
        caller read it (a run started, a config written) raises Conflict and stays.
        """
        statement = delete(simulations).where(
            simulations.c.tenant_id == tenant_id, simulations.c.id == simulation_id, _LIVE
        )
        if expected_etag is not None:
            statement = statement.where(simulations.c.etag == expected_etag)
        result = self._execute(statement)
        if result.rowcount == 0:
            self.get(tenant_id, simulation_id)  # NotFound when it is gone
            raise Conflict("simulation", simulation_id)

    def soft_delete_in_scenario(self, tenant_id: str, scenario_id: str, when: datetime) -> int:
        """Mark the scenario's live simulations deleted at ``when``; return how many."""
        result = self._execute(
            update(simulations)
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.scenario_id == scenario_id,
                _LIVE,
            )
            .values(delete_time=when)
        )
        return result.rowcount

    def restore_in_scenario(self, tenant_id: str, scenario_id: str, deleted_at: datetime) -> int:
        """Undelete the scenario's simulations deleted at exactly ``deleted_at``; return how many.

        Matching the exact time restores what the scenario delete removed and nothing else.
        """
        result = self._execute(
            update(simulations)
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.scenario_id == scenario_id,
                simulations.c.delete_time == deleted_at,
            )
            .values(delete_time=None)
        )
        return result.rowcount

    def lock_in_scenario(self, tenant_id: str, scenario_id: str) -> builtins.list[Simulation]:
        """Lock and return the scenario's live simulations (by id, so locks come in one order).

        Taken by DeleteScenario after it locked the scenario: a run or architect job that starts
        on one of them afterwards waits for the delete, and one that started before is seen.
        """
        rows = self._execute(
            select(simulations)
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.scenario_id == scenario_id,
                _LIVE,
            )
            .order_by(simulations.c.id)
            .with_for_update()
        ).all()
        return [Simulation(**row._mapping) for row in rows]

    def count_in_scenario(self, tenant_id: str, scenario_id: str) -> int:
        """Return the number of live simulations in the scenario."""
        return self._execute(
            select(func.count())
            .select_from(simulations)
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.scenario_id == scenario_id,
                _LIVE,
            )
        ).scalar_one()
