"""In-memory stand-ins for the storage layer, for use-case tests that are about the use case.

:class:`FakeDatabase` offers what the use cases take from :class:`storage.Database` (units of
work, read units of work, ``run``/``read`` and the retry policy); :class:`FakeUnitOfWork`
subclasses :class:`storage.UnitOfWork`, so it keeps the contract the use cases rely on: changes
are seen by later calls in the same unit of work, made visible to others by ``commit()``, and
discarded on exit without one.

The fakes cover the scenario use cases: scenarios, the scenario-wide operations on simulations
and periodic-run claims. The other repositories are not faked; using one fails loudly. What the
fakes do is checked against the real repositories, on SQLite and PostgreSQL, by
``tests/storage/test_fake_unit_of_work.py``; the storage contract suite stays the truth.
Display names sort by code point, as in the "C" collation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Self, TypeVar
from uuid import uuid4

import storage
from storage import AlreadyExists, Conflict, NotFound, Scenario, ScenarioQuery, Simulation

T = TypeVar("T")
_SCENARIO_ORDERINGS = ("create_time", "display_name")


@dataclass
class FakeState:
    """Everything a fake database holds; a unit of work works on a copy of it."""

    scenarios: dict[str, Scenario] = field(default_factory=dict)
    simulations: dict[str, Simulation] = field(default_factory=dict)
    next_runs: dict[str, datetime] = field(default_factory=dict)

    def copy(self) -> FakeState:
        """A deep copy: records are mutable dataclasses, and callers may change what they get."""
        return copy.deepcopy(self)


class FakeDatabase:
    """What the use cases use of :class:`storage.Database`, kept in memory."""

    def __init__(self, retry: storage.RetryPolicy | None = None) -> None:
        self.retry = retry or storage.RetryPolicy()
        self.state = FakeState()
        self.commits = 0

    def unit_of_work(self) -> FakeUnitOfWork:
        """A new unit of work over a copy of the committed state."""
        return FakeUnitOfWork(self)

    def read_unit_of_work(self) -> FakeUnitOfWork:
        """A unit of work for reads (the real one is autocommit; nothing here is written)."""
        return FakeUnitOfWork(self)

    def run(self, fn: Callable[[storage.UnitOfWork], T]) -> T:
        """``fn`` in a fresh unit of work, then commit (as :meth:`storage.Database.run`)."""
        with self.unit_of_work() as uow:
            result = fn(uow)
            uow.commit()
        return result

    def read(self, fn: Callable[[FakeUnitOfWork], T]) -> T:
        """``fn`` in a unit of work that is never committed (as :meth:`storage.Database.read`)."""
        with self.read_unit_of_work() as uow:
            return fn(uow)


class _NotFaked:
    """Stands in for a repository the fakes do not cover; any use of it fails loudly."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise NotImplementedError(
            f"uow.{self._name}.{attribute} is not faked: test this use case on a real database"
        )


class FakeUnitOfWork(storage.UnitOfWork):
    """A unit of work over a private copy of a :class:`FakeDatabase`'s state."""

    def __init__(self, database: FakeDatabase) -> None:
        self._database = database
        self._state = database.state.copy()
        self.committed = False
        self.scenarios = FakeScenarioRepository(self._state)
        self.simulations = FakeSimulationRepository(self._state)
        self.periodic_runs = FakePeriodicRunRepository(self._state)
        for name in ("tenants", "api_keys", "revisions", "events", "jobs"):
            setattr(self, name, _NotFaked(name))

    def __enter__(self) -> Self:
        return self

    def commit(self) -> None:
        """Publish this unit's changes; later units of work see them."""
        self._database.state = self._state.copy()
        self._database.commits += 1
        self.committed = True

    def rollback(self) -> None:
        """Forget the changes made since the last commit."""
        self._state_reset(self._database.state.copy())

    def _state_reset(self, state: FakeState) -> None:
        # The repositories hold the state object: refill it rather than replace it.
        self._state.scenarios = state.scenarios
        self._state.simulations = state.simulations
        self._state.next_runs = state.next_runs


def _matches(row: Any, node: storage.Filter | None) -> bool:
    """Whether ``row`` holds for the filter tree, as the SQL the repositories compile from it.

    A missing value (an absent label, a NULL column) matches no comparison, so a negation of
    one holds. Strings compare by code point; ``contains`` ignores case.
    """
    if node is None:
        return True
    if isinstance(node, storage.AllOf):
        return all(_matches(row, item) for item in node.items)
    if isinstance(node, storage.AnyOf):
        return any(_matches(row, item) for item in node.items)
    if isinstance(node, storage.Negation):
        return not _matches(row, node.item)
    if node.field == "labels":
        labels = row.labels
        assert isinstance(node.key, str)  # a labels comparison names one key
        if node.op == "has" and node.value is None:
            return node.key in labels
        return _compare(labels.get(node.key), "=" if node.op == "has" else node.op, node.value)
    return _compare(getattr(row, node.field), node.op, node.value)


def _compare(subject: Any, op: str, value: Any) -> bool:
    if subject is None:
        return False
    if op == "contains":
        return str(value).lower() in subject.lower()
    if op == "in":
        return subject in value
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[op](subject, value)


def _page(rows: list[Any], order_by: str, descending: bool, after: tuple | None, limit: int):
    """The keyset page of ``rows`` by ``(order_by, id)`` after the cursor, as the SQL one."""

    def key(row: Any) -> tuple:
        return (getattr(row, order_by), row.id)

    if after is not None:
        rows = [row for row in rows if (key(row) < after if descending else key(row) > after)]
    return sorted(rows, key=key, reverse=descending)[:limit]


class FakeScenarioRepository:
    """:class:`storage.ScenarioRepository` in memory (same errors, same computed count)."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def _counted(self, scenario: Scenario) -> Scenario:
        # The database keeps the live simulation count; here it is counted on read.
        count = sum(
            1
            for sim in self._state.simulations.values()
            if sim.scenario_id == scenario.id and sim.delete_time is None
        )
        return replace(copy.deepcopy(scenario), simulation_count=count)

    def _check_name_free(self, scenario: Scenario) -> None:
        if scenario.delete_time is not None:
            return
        for other in self._state.scenarios.values():
            if (
                other.id != scenario.id
                and other.tenant_id == scenario.tenant_id
                and other.delete_time is None
                and other.display_name == scenario.display_name
            ):
                raise AlreadyExists("scenario", "display_name", scenario.display_name)

    def add(self, scenario: Scenario) -> Scenario:
        """Store a new scenario with a fresh etag; AlreadyExists as the real one."""
        self._check_name_free(scenario)
        if scenario.request_id is not None and any(
            s.tenant_id == scenario.tenant_id and s.request_id == scenario.request_id
            for s in self._state.scenarios.values()
        ):
            raise AlreadyExists("scenario", "request_id", scenario.request_id)
        if scenario.id in self._state.scenarios:
            raise AlreadyExists("scenario", "id", scenario.id)
        stored = replace(copy.deepcopy(scenario), etag=uuid4().hex, simulation_count=0)
        self._state.scenarios[stored.id] = stored
        return self._counted(stored)

    def get(
        self,
        tenant_id: str,
        scenario_id: str,
        *,
        include_deleted: bool = False,
        lock: str | None = None,
    ) -> Scenario:
        """The scenario; NotFound when missing, in another tenant, or deleted (unless asked)."""
        if lock not in (None, "share", "update", "edit"):
            raise ValueError(f"unknown lock {lock!r}")
        scenario = self._state.scenarios.get(scenario_id)
        if (
            scenario is None
            or scenario.tenant_id != tenant_id
            or (scenario.delete_time is not None and not include_deleted)
        ):
            raise NotFound("scenario", scenario_id)
        return self._counted(scenario)

    def get_by_request_id(self, tenant_id: str, request_id: str) -> Scenario | None:
        """The scenario (live or deleted) created by ``request_id``, if any."""
        for scenario in self._state.scenarios.values():
            if scenario.tenant_id == tenant_id and scenario.request_id == request_id:
                return self._counted(scenario)
        return None

    def list(self, tenant_id: str, query: ScenarioQuery) -> list[Scenario]:
        """One keyset page of the tenant's scenarios matching ``query``."""
        if query.order_by not in _SCENARIO_ORDERINGS:
            raise ValueError(f"cannot order by {query.order_by!r}")
        rows = [
            s
            for s in self._state.scenarios.values()
            if s.tenant_id == tenant_id
            and (query.show_deleted or s.delete_time is None)
            and _matches(self._counted(s), query.filter)
        ]
        page = _page(rows, query.order_by, query.descending, query.after, query.limit)
        return [self._counted(s) for s in page]

    def update(self, scenario: Scenario, *, expected_etag: str) -> Scenario:
        """Compare-and-swap on the etag: Conflict when it moved, NotFound when gone."""
        current = self._state.scenarios.get(scenario.id)
        if current is None or current.tenant_id != scenario.tenant_id:
            raise NotFound("scenario", scenario.id)
        if current.etag != expected_etag:
            raise Conflict("scenario", scenario.id)
        self._check_name_free(scenario)
        # Fields written once at creation keep their stored values, as in the real UPDATE.
        stored = replace(
            copy.deepcopy(scenario),
            etag=uuid4().hex,
            create_time=current.create_time,
            request_id=current.request_id,
            request_fingerprint=current.request_fingerprint,
        )
        self._state.scenarios[stored.id] = stored
        return self._counted(stored)

    def purge_expired(self, now: datetime) -> int:
        """Remove deleted scenarios past their purge time, with their simulations."""
        expired = {
            s.id
            for s in self._state.scenarios.values()
            if s.delete_time is not None and s.purge_time is not None and s.purge_time <= now
        }
        for sim_id in [i for i, s in self._state.simulations.items() if s.scenario_id in expired]:
            del self._state.simulations[sim_id]
        for scenario_id in expired:
            del self._state.scenarios[scenario_id]
        return len(expired)


class FakeSimulationRepository:
    """The part of :class:`storage.SimulationRepository` the scenario use cases call."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def add(self, sim: Simulation) -> Simulation:
        """Store a new simulation with a fresh etag; NotFound("scenario") for a missing one."""
        if sim.scenario_id is not None and sim.scenario_id not in self._state.scenarios:
            raise NotFound("scenario", sim.scenario_id)
        if sim.id in self._state.simulations:
            raise AlreadyExists("simulation", "id", sim.id)
        stored = replace(copy.deepcopy(sim), etag=uuid4().hex)
        self._state.simulations[stored.id] = stored
        return copy.deepcopy(stored)

    def get(self, tenant_id: str, simulation_id: str, *, for_update: bool = False) -> Simulation:
        """The live simulation; NotFound when missing, in another tenant or soft-deleted."""
        sim = self._state.simulations.get(simulation_id)
        if sim is None or sim.tenant_id != tenant_id or sim.delete_time is not None:
            raise NotFound("simulation", simulation_id)
        return copy.deepcopy(sim)

    def _live_in(self, tenant_id: str, scenario_id: str) -> list[Simulation]:
        return sorted(
            (
                s
                for s in self._state.simulations.values()
                if s.tenant_id == tenant_id
                and s.scenario_id == scenario_id
                and s.delete_time is None
            ),
            key=lambda s: s.id,
        )

    def lock_in_scenario(self, tenant_id: str, scenario_id: str) -> list[Simulation]:
        """The scenario's live simulations by id (nothing to lock in memory)."""
        return [copy.deepcopy(s) for s in self._live_in(tenant_id, scenario_id)]

    def count_in_scenario(self, tenant_id: str, scenario_id: str) -> int:
        """The number of live simulations in the scenario."""
        return len(self._live_in(tenant_id, scenario_id))

    def soft_delete_in_scenario(self, tenant_id: str, scenario_id: str, when: datetime) -> int:
        """Mark the scenario's live simulations deleted at ``when``; return how many."""
        live = self._live_in(tenant_id, scenario_id)
        for sim in live:
            sim.delete_time = when
        return len(live)

    def restore_in_scenario(self, tenant_id: str, scenario_id: str, deleted_at: datetime) -> int:
        """Undelete the scenario's simulations deleted at exactly ``deleted_at``."""
        restored = [
            s
            for s in self._state.simulations.values()
            if s.tenant_id == tenant_id
            and s.scenario_id == scenario_id
            and s.delete_time == deleted_at
        ]
        for sim in restored:
            sim.delete_time = None
        return len(restored)


class FakePeriodicRunRepository:
    """:class:`storage.repositories.PeriodicRunRepository` in memory."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def claim(self, name: str, now: datetime, interval: timedelta) -> bool:
        """True when ``name`` is due (or never ran); it is then due ``interval`` after ``now``."""
        due = self._state.next_runs.get(name)
        if due is not None and due > now:
            return False
        self._state.next_runs[name] = now + interval
        return True
