"""Simulation events: the append-only audit trail of status and config changes."""

from __future__ import annotations

import builtins
from collections.abc import Collection

from sqlalchemy import and_, func, insert, or_, select

from storage.errors import NotFound
from storage.queries import Write
from storage.records import SimulationEvent
from storage.repositories.base import RecordTable, SqlRepository, binds_for
from storage.schema import simulation_events, simulations

_table = simulation_events
# The record is the column list; the database numbers the events (monotonic ids).
COLUMNS = RecordTable(SimulationEvent, _table, keys=("id",), computed=("id",))
# The kind of the one event that outlives its simulation (migration 0015).
DELETED = "DELETED"
# The event is inserted only while its simulation exists: the table has no foreign key (a
# DELETED event outlives its simulation), so the insert checks, and on PostgreSQL locks the
# row against a concurrent delete (FOR KEY SHARE), as the foreign key's check used to.
_BINDS = binds_for(_table, COLUMNS.inserted)
_ADD = Write(
    insert(_table)
    .from_select(
        list(COLUMNS.inserted),
        select(*(bind.label(name) for name, bind in _BINDS.items()))
        .where(
            simulations.c.id == _BINDS["simulation_id"],
            simulations.c.tenant_id == _BINDS["tenant_id"],
        )
        .with_for_update(read=True, key_share=True),
    )
    .returning(_table.c.id)
)


class SimulationEventRepository(SqlRepository):
    """Appends and pages through a simulation's events."""

    def add(self, event: SimulationEvent) -> None:
        """Append the event; NotFound when the simulation does not exist.

        The event's id is given when the transaction commits (on PostgreSQL, migration 0019:
        within a tenant, ids follow commit order), so it is read back, not returned.
        """
        row = self._write(
            _ADD, COLUMNS.insert_values(event), entity="simulation_event", returning=True
        )
        if row is None:
            raise NotFound("simulation", event.simulation_id)

    def list_of_live_simulation(
        self, tenant_id: str, simulation_id: str, *, after_id: int | None, limit: int
    ) -> list[SimulationEvent]:
        """Like :meth:`list`, but NotFound("simulation") unless the simulation is live.

        One statement: the simulation joined with its events.
        """
        condition = and_(
            _table.c.tenant_id == simulations.c.tenant_id,
            _table.c.simulation_id == simulations.c.id,
        )
        if after_id is not None:
            condition = and_(condition, _table.c.id > after_id)
        rows = self._execute(
            select(*_table.c)
            .select_from(simulations.outerjoin(_table, condition))
            .where(
                simulations.c.tenant_id == tenant_id,
                simulations.c.id == simulation_id,
                simulations.c.delete_time.is_(None),
            )
            # Only a simulation without (matching) events yields the all-NULL row.
            .order_by(_table.c.id)
            .limit(limit)
        ).all()
        if not rows:
            raise NotFound("simulation", simulation_id)
        return [SimulationEvent(**row._mapping) for row in rows if row.id is not None]

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

    def has_deleted_event(self, tenant_id: str, simulation_id: str) -> bool:
        """Whether the tenant's simulation was deleted for good (its DELETED event is kept)."""
        statement = (
            select(_table.c.id)
            .where(
                _table.c.tenant_id == tenant_id,
                _table.c.simulation_id == simulation_id,
                _table.c.kind == DELETED,
            )
            .limit(1)
        )
        return self._execute(statement).first() is not None

    def latest_id(self, tenant_id: str) -> int:
        """The id of the tenant's newest event; 0 when it has none."""
        statement = select(func.max(_table.c.id)).where(_table.c.tenant_id == tenant_id)
        return self._execute(statement).scalar() or 0

    def list_of_tenant(
        self,
        tenant_id: str,
        *,
        after_id: int,
        limit: int,
        simulation_id: str = "",
        scenario_id: str = "",
        kinds: Collection[str] = (),
    ) -> builtins.list[SimulationEvent]:
        """Up to ``limit`` of the tenant's events after ``after_id``, oldest first.

        Optionally only one simulation's, those of simulations now in ``scenario_id`` (and
        the DELETED events of those that were in it), or those of ``kinds``. Within a tenant, ids follow commit order (migrations 0010 and 0019), so a
        reader that continues after the last id it saw misses nothing.
        """
        statement = select(_table).where(_table.c.tenant_id == tenant_id, _table.c.id > after_id)
        if simulation_id:
            statement = statement.where(_table.c.simulation_id == simulation_id)
        if scenario_id:
            in_scenario = select(simulations.c.id).where(
                simulations.c.tenant_id == tenant_id, simulations.c.scenario_id == scenario_id
            )
            # A deleted simulation is in no scenario any more: its DELETED event names the
            # scenario it was in.
            statement = statement.where(
                or_(
                    _table.c.simulation_id.in_(in_scenario),
                    and_(
                        _table.c.kind == DELETED,
                        _table.c.details["scenario_id"].as_string() == scenario_id,
                    ),
                )
            )
        if kinds:
            statement = statement.where(_table.c.kind.in_(sorted(kinds)))
        rows = self._execute(statement.order_by(_table.c.id).limit(limit))
        return [SimulationEvent(**row._mapping) for row in rows]
