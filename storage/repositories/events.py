"""Simulation events: the append-only audit trail of status and config changes."""

from __future__ import annotations

import builtins
import time
from collections.abc import Collection
from typing import Any

from sqlalchemy import Select, and_, func, insert, or_, select

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


# How long a read waits for older transactions that may still add events before the ones it
# found (see ``_settled``); after that it returns the events whose place is already final.
SETTLE_SECONDS = 2.0
# PostgreSQL: no event can still appear below this id (migration 0022).
_HORIZON = func.simconfig_event_horizon().label("horizon")


class SimulationEventRepository(SqlRepository):
    """Appends and pages through a simulation's events."""

    def add(self, event: SimulationEvent) -> int:
        """Append the event and return its id; NotFound when the simulation does not exist.

        The database gives the id (on PostgreSQL from the transaction's id, migration 0022);
        readers see the event once its place in the trail is final.
        """
        row = self._write(
            _ADD, COLUMNS.insert_values(event), entity="simulation_event", returning=True
        )
        if row is None:
            raise NotFound("simulation", event.simulation_id)
        return int(row["id"])

    def _ordered(self) -> bool:
        """Whether ids can appear out of commit order (PostgreSQL) and reads must settle."""
        return self._connection.dialect.name == "postgresql"

    def _settled(self, statement: Select[Any]) -> builtins.list[Any]:
        """The rows of ``statement`` (ordered by event id) that no later commit can precede.

        On PostgreSQL an event's id comes from its transaction's id (migration 0022), so a
        transaction that began earlier may still commit events with smaller ids than those
        already visible. The rows below the horizon are final. When rows above it were read
        too (committed, but an older transaction is still open), the read is repeated until
        the horizon passes the last of them (see :meth:`_until_settled`). Rows with no event
        (an outer join's NULL row) are kept. SQLite commits one transaction at a time: its ids
        are final at once.
        """
        if not self._ordered():
            return builtins.list(self._execute(statement))
        statement = statement.add_columns(_HORIZON)

        def read() -> tuple[builtins.list[Any], int | None, int]:
            rows = builtins.list(self._execute(statement).all())
            held = [row.id for row in rows if row.id is not None and row.id >= row.horizon]
            return rows, max(held, default=None), rows[0].horizon if rows else 0

        rows = self._until_settled(read)
        return [row for row in rows if row.id is None or row.id < row.horizon]

    @staticmethod
    def _until_settled(read: Any) -> Any:
        """``read()``'s answer once the horizon passed the newest event its first answer held.

        ``read`` returns (answer, the newest id it found above the horizon or None, the
        horizon). The read is repeated, with short pauses, for up to ``SETTLE_SECONDS``: a
        caller sees every event committed before its call, waiting only for transactions
        older than those events (events committed meanwhile are not waited for).
        """
        answer, awaited, _ = read()
        if awaited is None:
            return answer
        deadline, pause = time.monotonic() + SETTLE_SECONDS, 0.001
        while time.monotonic() < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
            answer, _, horizon = read()
            if horizon > awaited:
                break
        return answer

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
        rows = self._settled(
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
        )
        if not rows:
            raise NotFound("simulation", simulation_id)
        return [_event(row) for row in rows if row.id is not None]

    def list(
        self, tenant_id: str, simulation_id: str, *, after_id: int | None, limit: int
    ) -> list[SimulationEvent]:
        """Return up to ``limit`` events oldest first, after ``after_id`` if given."""
        statement = select(_table).where(
            _table.c.tenant_id == tenant_id, _table.c.simulation_id == simulation_id
        )
        if after_id is not None:
            statement = statement.where(_table.c.id > after_id)
        rows = self._settled(statement.order_by(_table.c.id).limit(limit))
        return [_event(row) for row in rows]

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
        """The id of the tenant's newest event; 0 when it has none.

        A reader that continues after it gets every event committed after the call and none
        committed before: on PostgreSQL, it is the newest id below the horizon once the
        horizon has passed every event committed before the call (see ``_until_settled``).
        """
        if not self._ordered():
            statement = select(func.max(_table.c.id)).where(_table.c.tenant_id == tenant_id)
            return self._execute(statement).scalar() or 0
        horizon = func.simconfig_event_horizon()
        statement = select(
            func.max(_table.c.id).label("newest"),
            func.max(_table.c.id).filter(_table.c.id < horizon).label("settled"),
            horizon.label("horizon"),
        ).where(_table.c.tenant_id == tenant_id)

        def read() -> tuple[int, int | None, int]:
            row = self._execute(statement).one()
            held = row.newest if row.newest is not None and row.newest >= row.horizon else None
            return row.settled or 0, held, row.horizon

        return int(self._until_settled(read))

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
        the DELETED events of those that were in it), or those of ``kinds``. Only events whose
        place is final are read (see ``_settled``), so a reader that continues after the last
        id it saw misses nothing.
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
        rows = self._settled(statement.order_by(_table.c.id).limit(limit))
        return [_event(row) for row in rows]


def _event(row: Any) -> SimulationEvent:
    mapping = row._mapping
    return SimulationEvent(**{name: mapping[name] for name in _FIELDS})


_FIELDS = tuple(column.name for column in _table.c)
