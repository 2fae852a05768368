"""Simulation events: the append-only audit trail of status and config changes."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC

from sqlalchemy import insert, select

from storage.records import SimulationEvent
from storage.repositories.base import SqlRepository
from storage.schema import simulation_events
from storage.translate import UniqueRule

_table = simulation_events


class SimulationEventRepository(SqlRepository):
    """Appends and pages through a simulation's events."""

    def add(self, event: SimulationEvent) -> SimulationEvent:
        """Append the event and return it with the id the database assigned.

        NotFound when the simulation does not exist.
        """
        values = asdict(event)
        del values["id"]
        result = self._execute_guarded(
            insert(_table).values(**values),
            entity="simulation_event",
            uniques=(UniqueRule("simulation_events_pkey", ("id",), "id", ""),),
            parent=("simulation", event.simulation_id),
        )
        return replace(
            event,
            id=result.inserted_primary_key[0],
            create_time=event.create_time.astimezone(UTC),
        )

    def list(
        self, tenant_id: str, simulation_id: str, *, after_id: int | None, limit: int
    ) -> list[SimulationEvent]:
        """Return up to ``limit`` events oldest first, after ``after_id`` if given."""
        statement = select(_table).where(
            _table.c.tenant_id == tenant_id, _table.c.simulation_id == simulation_id
        )
        if after_id is not None:
            statement = statement.where(_table.c.id > after_id)
        rows = self._execute(statement.order_by(_table.c.id).limit(limit))
        return [SimulationEvent(**row._mapping) for row in rows]
