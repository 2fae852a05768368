"""Config revisions: append-only, numbered per simulation."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import (
    Boolean,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from storage.driver_errors import UniqueRule, driver_errors, integrity_error
from storage.errors import AlreadyExists, Conflict, NotFound
from storage.queries import Query, run_together
from storage.records import ConfigRevision, Simulation, SimulationEvent
from storage.repositories.base import RecordTable, SqlRepository
from storage.repositories.events import COLUMNS as event_columns
from storage.repositories.simulations import COLUMNS as simulation_columns
from storage.schema import config_revisions, simulations

_table = config_revisions
_REVISION_COLUMNS = [column.name for column in _table.c]
_GET = Query(
    select(_table).where(
        _table.c.tenant_id == bindparam("tenant_id"),
        _table.c.simulation_id == bindparam("simulation_id"),
        _table.c.revision == bindparam("revision"),
    )
)
# Only the sources: a write answers with its simulation's, and the config can be large.
_SOURCES = Query(
    select(_table.c.sources).where(
        _table.c.tenant_id == bindparam("tenant_id"),
        _table.c.simulation_id == bindparam("simulation_id"),
        _table.c.revision == bindparam("revision"),
    )
)
_SIMULATION_COLUMNS = [column.name for column in simulations.c]


@functools.cache
def _write_current(event_count: int) -> Query:
    """UpdateConfig's writes as one PostgreSQL statement: the simulation's compare-and-swap,
    then (only when it matched) the new revision and ``event_count`` events, in order.

    One statement instead of three pipelined ones: the driver's pipeline bookkeeping and the
    per-statement work on both sides cost more than the statements themselves. Answers the
    number of simulations written (0: the etag moved or the simulation is gone).
    """
    written = simulation_columns.update.statement.returning(simulations.c.id).cte("written")
    revision = insert(_table).from_select(
        list(COLUMNS.inserted), _values(written, _table, COLUMNS.inserted, "revision_")
    )
    inserts = [revision.cte("inserted_revision")]
    if event_count:
        # One INSERT, rows in the order given: the events' ids follow it (migration 0022).
        rows = [
            _values(written, event_columns.table, event_columns.inserted, f"event{index}_")
            for index in range(event_count)
        ]
        events = insert(event_columns.table).from_select(
            list(event_columns.inserted), rows[0] if event_count == 1 else union_all(*rows)
        )
        inserts.append(events.cte("inserted_events"))
    return Query(select(func.count().label("written")).select_from(written).add_cte(*inserts))


@functools.cache
def _replace_current() -> Query:
    """A whole-config edit in one PostgreSQL statement, with no read before it.

    The simulation is locked and checked (live, still at ``expected_revision``, in one of the
    ``editable`` statuses) in the statement itself; only then is it moved to the new
    revision, which keeps the previous revision's sources unless new ones are given, with a
    CONFIG_CHANGED event and, when the status changes, a STATUS_CHANGED one. No row: nothing
    was written, and the caller finds out why the usual way.
    """
    editable = any_(bindparam("editable", type_=postgresql.ARRAY(simulations.c.status.type)))
    old = (
        select(simulations.c.id, simulations.c.status)
        .where(
            simulations.c.tenant_id == bindparam("tenant_id"),
            simulations.c.id == bindparam("simulation_id"),
            simulations.c.delete_time.is_(None),
            simulations.c.current_revision == bindparam("expected_revision", type_=Integer),
            simulations.c.status == editable,
        )
        .with_for_update()
        .cte("old")
    )
    written = (
        update(simulations)
        .where(simulations.c.tenant_id == bindparam("tenant_id"), simulations.c.id == old.c.id)
        .values(
            status=bindparam("status", type_=simulations.c.status.type),
            current_revision=bindparam("revision_revision", type_=Integer),
            results=null(),
            analysis=null(),
            last_error=null(),
            update_time=bindparam("update_time", type_=simulations.c.update_time.type),
            etag=bindparam("etag", type_=simulations.c.etag.type),
        )
        .returning(*simulations.c, old.c.status.label("previous_status"))
        .cte("written")
    )
    previous_sources = (
        select(_table.c.sources)
        .where(
            _table.c.tenant_id == bindparam("tenant_id"),
            _table.c.simulation_id == bindparam("simulation_id"),
            _table.c.revision == bindparam("expected_revision", type_=Integer),
        )
        .scalar_subquery()
    )
    revision_values = [
        func.coalesce(
            case(
                (bindparam("keep_sources", type_=Boolean), previous_sources),
                else_=bindparam("revision_sources", type_=_table.c.sources.type),
            ),
            literal_column("'[]'::jsonb"),
        ).label(name)
        if name == "sources"
        else bindparam(f"revision_{name}", type_=_table.c[name].type).label(name)
        for name in COLUMNS.inserted
    ]
    inserted_revision = (
        insert(_table)
        .from_select(list(COLUMNS.inserted), select(*revision_values).select_from(written))
        .returning(_table.c.sources)
        .cte("inserted_revision")
    )
    events_table, names = event_columns.table, event_columns.inserted
    status_event = [
        written.c.previous_status.label(name)
        if name == "from_status"
        else bindparam(f"event1_{name}", type_=events_table.c[name].type).label(name)
        for name in names
    ]
    inserted_events = (
        insert(events_table)
        .from_select(
            list(names),
            union_all(
                _values(written, events_table, names, "event0_"),
                select(*status_event)
                .select_from(written)
                .where(written.c.previous_status != bindparam("status")),
            ),
        )
        .cte("inserted_events")
    )
    return Query(
        select(*written.c, inserted_revision.c.sources.label("kept_sources"))
        .select_from(written, inserted_revision)
        .add_cte(inserted_events)
    )


def _values(written, table, names, prefix: str) -> Select[Any]:
    # One row per written simulation (none when the compare-and-swap missed), every value a
    # bind parameter under ``prefix``.
    values = [bindparam(f"{prefix}{name}", type_=table.c[name].type).label(name) for name in names]
    return select(*values).select_from(written)


def _prefixed(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {f"{prefix}{name}": value for name, value in values.items()}


# The simulation (locked) and its current revision, as each table's columns under a prefix.
@functools.cache
def _locked_with_current(with_config: bool) -> Query:
    # Compiled once per shape: UpdateConfig is a hot write. Without the config, the document
    # column is read as NULL: a write that replaces the config whole never decodes the old one.
    revision_columns = [
        column.label(f"revision_{column.name}")
        if with_config or column.name != "config"
        else null().label("revision_config")
        for column in _table.c
    ]
    columns = (*(column.label(column.name) for column in simulations.c), *revision_columns)
    return Query(
        _live_simulation_with_revision(
            select(*columns), simulations.c.current_revision
        ).with_for_update(of=simulations)
    )


def _live_simulation_with_revision(statement: Select, revision: Any) -> Select:
    """``statement`` over the live simulation (bound ``tenant_id``, ``simulation_id``)
    LEFT JOIN its revision numbered ``revision`` (a column or a bound parameter)."""
    return statement.select_from(
        simulations.outerjoin(
            _table,
            and_(
                _table.c.tenant_id == simulations.c.tenant_id,
                _table.c.simulation_id == simulations.c.id,
                _table.c.revision == revision,
            ),
        )
    ).where(
        simulations.c.tenant_id == bindparam("tenant_id"),
        simulations.c.id == bindparam("simulation_id"),
        simulations.c.delete_time.is_(None),
    )


_BY_REQUEST = Query(
    select(_table).where(
        _table.c.tenant_id == bindparam("tenant_id"),
        _table.c.simulation_id == bindparam("simulation_id"),
        _table.c.request_id == bindparam("request_id"),
    )
)
# The record is the column list (revisions are never updated).
COLUMNS = RecordTable(ConfigRevision, _table, keys=("tenant_id", "simulation_id", "revision"))


def _revision_of(row: Mapping[Any, Any], prefix: str = "") -> ConfigRevision | None:
    """The revision in a row of ``simulations LEFT JOIN config_revisions``, if any.

    ``row`` is a dict of a precompiled read or a SQLAlchemy ``RowMapping`` (keyed by name).
    """
    values = {name: row[prefix + name] for name in _REVISION_COLUMNS}
    return None if values["revision"] is None else ConfigRevision(**values)


def _live_simulation(tenant_id: str, simulation_id: str):
    return (
        simulations.c.tenant_id == tenant_id,
        simulations.c.id == simulation_id,
        simulations.c.delete_time.is_(None),
    )


@functools.cache
def _revision_of_live_simulation(numbered: bool) -> Query:
    # Compiled once: GetConfig is a hot read. ``numbered``: a given revision, else the current.
    wanted = bindparam("revision", type_=Integer) if numbered else simulations.c.current_revision
    return Query(
        _live_simulation_with_revision(
            select(simulations.c.current_revision.label("current"), *_table.c), wanted
        )
    )


class ConfigRevisionRepository(SqlRepository):
    """Stores and reads config revisions of a tenant's simulations."""

    def add(self, rev: ConfigRevision) -> ConfigRevision:
        """Store a revision.

        AlreadyExists(field="revision") when the number is taken: the primary key is a second
        guard against two writers both computing "current + 1". NotFound when the simulation
        does not exist.
        """
        self._write(
            COLUMNS.insert,
            COLUMNS.insert_values(rev),
            entity="config_revision",
            uniques=(
                UniqueRule(
                    "pk_config_revisions",
                    ("simulation_id", "revision"),
                    "revision",
                    str(rev.revision),
                ),
            ),
            parent=("simulation", rev.simulation_id),
        )
        # Nothing in a revision is computed by the database: it is stored as given.
        return rev

    def add_current(
        self,
        simulation: Simulation,
        expected_etag: str,
        revision: ConfigRevision,
        events: Sequence[SimulationEvent],
    ) -> Simulation:
        """Store a new revision together with the simulation update that makes it current.

        ``simulation`` is written with compare-and-swap on ``expected_etag`` (Conflict when it
        changed; when it is gone, NotFound, but Conflict on PostgreSQL, whose one statement
        cannot tell the two apart: callers lock the simulation first), and the revision and
        ``events`` are appended, in one round trip: one statement on PostgreSQL, the
        statements one after another elsewhere. Returns the simulation as stored.
        """
        written = replace(simulation, etag=uuid4().hex)
        if self._connection.dialect.name == "postgresql":
            parameters = simulation_columns.update_values(written, expected_etag)
            parameters.update(_prefixed(COLUMNS.insert_values(revision), "revision_"))
            for index, event in enumerate(events):
                parameters.update(_prefixed(event_columns.insert_values(event), f"event{index}_"))
            with driver_errors():
                try:
                    row = _write_current(len(events)).first(self._connection, parameters)
                except IntegrityError as exc:
                    raise self._integrity_error(exc, revision, simulation.id) from exc
            if not row or row["written"] == 0:
                raise Conflict("simulation", simulation.id)
            return written
        writes = [
            (simulation_columns.update, simulation_columns.update_values(written, expected_etag)),
            (COLUMNS.insert, COLUMNS.insert_values(revision)),
            *((event_columns.insert, event_columns.insert_values(event)) for event in events),
        ]
        with driver_errors():
            try:
                results = run_together(self._connection, writes)
            except IntegrityError as exc:
                raise self._integrity_error(exc, revision, simulation.id) from exc
        if results[0][0] == 0:
            # Nothing was written but inserts that the rollback discards.
            raise Conflict("simulation", simulation.id)
        return written

    @staticmethod
    def _integrity_error(
        exc: IntegrityError, revision: ConfigRevision, simulation_id: str
    ) -> Exception:
        """What a constraint violation of :meth:`add_current`'s writes means."""
        rules = (
            UniqueRule(
                "pk_config_revisions",
                ("simulation_id", "revision"),
                "revision",
                str(revision.revision),
            ),
            UniqueRule(
                "uq_config_revisions_request_id",
                ("tenant_id", "simulation_id", "request_id"),
                "request_id",
                str(revision.request_id),
            ),
        )
        error = integrity_error(
            exc, "config_revision", rules, ("simulation", revision.simulation_id)
        )
        if isinstance(error, AlreadyExists):
            # The number is taken: another writer made a revision first (or the same
            # request id raced itself). The statements went out together, so this is
            # what a lost compare-and-swap looks like; the retry sees the winner.
            return Conflict("simulation", simulation_id)
        return error

    def replace_current(
        self,
        tenant_id: str,
        simulation_id: str,
        *,
        status: str,
        etag: str,
        now: datetime,
        expected_revision: int,
        editable: Collection[str],
        keep_sources: bool,
        revision: ConfigRevision,
        changed: SimulationEvent,
        status_changed: SimulationEvent,
    ) -> tuple[Simulation, ConfigRevision] | None:
        """Make ``revision`` current without reading the simulation first (PostgreSQL).

        The stored simulation is given ``status``, ``etag`` and the update time ``now``, its
        results, analysis and last error cleared, only if it is live, at
        ``expected_revision`` and in one of the ``editable`` statuses. With ``keep_sources``
        the revision gets the previous revision's sources instead of its own. ``changed`` is recorded, and
        ``status_changed`` (its ``from_status`` taken from the stored status) when the status
        changes. Returns the simulation and the revision as stored, or None when nothing was
        written (the caller reads the simulation to say why), and always None on SQLite.
        """
        if self._connection.dialect.name != "postgresql":
            return None
        parameters: dict[str, Any] = {
            "tenant_id": tenant_id,
            "simulation_id": simulation_id,
            "expected_revision": expected_revision,
            "status": status,
            "update_time": now,
            "etag": etag,
            "editable": sorted(editable),
        }
        parameters.update(_prefixed(COLUMNS.insert_values(revision), "revision_"))
        parameters["keep_sources"] = keep_sources
        parameters.update(_prefixed(event_columns.insert_values(changed), "event0_"))
        status_values = event_columns.insert_values(status_changed)
        del status_values["from_status"]
        parameters.update(_prefixed(status_values, "event1_"))
        with driver_errors():
            try:
                row = _replace_current().first(self._connection, parameters)
            except IntegrityError as exc:
                raise self._integrity_error(exc, revision, simulation_id) from exc
        if row is None:
            return None
        stored = Simulation(**{name: row[name] for name in _SIMULATION_COLUMNS})
        return stored, replace(revision, sources=row["kept_sources"])

    def find_by_request(
        self, tenant_id: str, simulation_id: str, request_id: str
    ) -> ConfigRevision | None:
        """The revision of ``simulation_id`` that the request ``request_id`` wrote, if any."""
        row = self._first(
            _BY_REQUEST,
            {"tenant_id": tenant_id, "simulation_id": simulation_id, "request_id": request_id},
        )
        return None if row is None else ConfigRevision(**row)

    def get(self, tenant_id: str, simulation_id: str, revision: int) -> ConfigRevision:
        """Return one revision; NotFound otherwise."""
        row = self._first(
            _GET, {"tenant_id": tenant_id, "simulation_id": simulation_id, "revision": revision}
        )
        if row is None:
            raise NotFound("config_revision", f"{simulation_id}@{revision}")
        return ConfigRevision(**row)

    def sources_of(self, tenant_id: str, simulation_id: str, revision: int) -> list[dict[str, Any]]:
        """The sources of one revision; [] when there is no such revision. One statement."""
        row = self._first(
            _SOURCES, {"tenant_id": tenant_id, "simulation_id": simulation_id, "revision": revision}
        )
        return (row["sources"] or []) if row is not None else []

    def lock_simulation_with_current(
        self, tenant_id: str, simulation_id: str, *, with_config: bool = True
    ) -> tuple[Simulation, ConfigRevision | None]:
        """Lock the live simulation and read its current revision (None without one).

        Usually one statement, the simulation joined with its revision. A statement that
        waited for the lock sees the simulation as the other writer left it but the joined
        revision as of before it (PostgreSQL, READ COMMITTED), so when the two disagree the
        revision is read again by a statement of its own. NotFound when missing or deleted.
        ``with_config=False`` leaves the revision's config document out (an empty dict), for
        a write that replaces it whole.
        """
        row = self._first(
            _locked_with_current(with_config),
            {"tenant_id": tenant_id, "simulation_id": simulation_id},
        )
        if row is None:
            raise NotFound("simulation", simulation_id)
        revision = _revision_of(row, prefix="revision_")
        simulation = Simulation(**{name: row[name] for name in _SIMULATION_COLUMNS})
        number = simulation.current_revision
        if number and (revision is None or revision.revision != number):
            revision = self.get(tenant_id, simulation_id, number)
        elif revision is not None and not with_config:
            revision = replace(revision, config={})
        return simulation, revision

    def get_of_live_simulation(
        self, tenant_id: str, simulation_id: str, revision: int = 0
    ) -> tuple[int, ConfigRevision | None]:
        """Return the live simulation's current revision number and revision ``revision``.

        ``revision`` 0 means the current one; the revision is None when the simulation has
        none by that number. NotFound("simulation") when the simulation is missing or deleted.
        One statement: the simulation joined with the revision.
        """
        parameters: dict[str, Any] = {"tenant_id": tenant_id, "simulation_id": simulation_id}
        if revision:
            parameters["revision"] = revision
        row = self._first(_revision_of_live_simulation(bool(revision)), parameters)
        if row is None:
            raise NotFound("simulation", simulation_id)
        return row["current"], _revision_of(row)

    def list_of_live_simulation(
        self, tenant_id: str, simulation_id: str, *, before_revision: int | None, limit: int
    ) -> list[ConfigRevision]:
        """Like :meth:`list`, but NotFound("simulation") unless the simulation is live.

        One statement: the simulation joined with its revisions.
        """
        condition = and_(
            _table.c.tenant_id == simulations.c.tenant_id,
            _table.c.simulation_id == simulations.c.id,
        )
        if before_revision is not None:
            condition = and_(condition, _table.c.revision < before_revision)
        rows = self._execute(
            select(*_table.c)
            .select_from(simulations.outerjoin(_table, condition))
            .where(*_live_simulation(tenant_id, simulation_id))
            # Only a simulation without (matching) revisions yields the all-NULL row.
            .order_by(_table.c.revision.desc())
            .limit(limit)
        ).all()
        if not rows:
            raise NotFound("simulation", simulation_id)
        revisions = (_revision_of(row._mapping) for row in rows)
        return [revision for revision in revisions if revision is not None]

    def list(
        self, tenant_id: str, simulation_id: str, *, before_revision: int | None, limit: int
    ) -> list[ConfigRevision]:
        """Return up to ``limit`` revisions newest first, below ``before_revision`` if given."""
        statement = select(_table).where(
            _table.c.tenant_id == tenant_id, _table.c.simulation_id == simulation_id
        )
        if before_revision is not None:
            statement = statement.where(_table.c.revision < before_revision)
        rows = self._execute(statement.order_by(_table.c.revision.desc()).limit(limit))
        return [ConfigRevision(**row._mapping) for row in rows]
