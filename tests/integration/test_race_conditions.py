"""Interleavings that only a real multi-writer database shows, forced on PostgreSQL.

SQLite serialises these transactions with its write lock; PostgreSQL runs them at once, so each
test pauses one transaction at the dangerous point, starts a second one, and resumes the first
only once the second is seen waiting on a lock (or has finished, which is what a missing lock
looks like: the test's assertions then fail).
"""

from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest
from sqlalchemy import text

import storage
from service.api.error_status import status_for
from service.app import authentication as auth
from service.app import simulation_writes as simulation_steps
from service.app import simulations as simulation_cases
from service.app import tenants
from service.app.configs import ConfigOperations
from service.app.scenarios import ScenarioInput, ScenarioOperations
from service.app.simulation_writes import SimulationInput
from service.app.simulations import SimulationOperations
from service.domain import errors, lifecycle
from service.domain.validation import ConfigValidator
from tests.unit.simulation_api import valid_config


@pytest.fixture(scope="module")
def database(postgres_url):
    db = storage.Database(postgres_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def principal(database):
    tenant = tenants.new_tenant(database, f"races-{uuid.uuid4().hex[:8]}")
    issued = tenants.issue_key(database, tenant.id, "write")
    return auth.Principal(tenant.id, issued.record.id, "write")


class Worker:
    """Runs ``fn`` on a thread and keeps its result or exception for the test to assert on."""

    def __init__(self, fn):
        self.finished = threading.Event()
        self._box = {}
        self._thread = threading.Thread(target=self._run, args=(fn,))
        self._thread.start()

    def _run(self, fn):
        try:
            self._box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
            self._box["error"] = exc
        finally:
            self.finished.set()

    def join(self) -> dict:
        """Waits for the thread; returns {"result": ...} or {"error": ...}."""
        self._thread.join(30)
        assert not self._thread.is_alive(), "thread did not finish"
        return self._box


def in_thread(fn) -> Worker:
    """Starts ``fn`` on a thread."""
    return Worker(fn)


def blocked_backends(database) -> int:
    """How many sessions of the test database wait for a lock another session holds."""
    with database.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
            )
        ).scalar_one()


def wait_until_blocked_or_finished(database, worker: Worker, timeout: float = 30) -> None:
    """Returns once ``worker``'s transaction waits on a lock, or once it has finished.

    The paused transaction holds the lock under test; the worker must queue behind it. A
    worker that finishes instead never met the lock, and the test's assertions say so.
    """
    deadline = time.monotonic() + timeout
    while not worker.finished.wait(0.02):
        if blocked_backends(database):
            return
        assert time.monotonic() < deadline, "the second transaction neither blocked nor finished"


def test_a_run_cannot_start_between_a_deletes_check_and_its_delete(
    database, principal, monkeypatch
):
    configs = ConfigOperations(database, ConfigValidator())
    simulations = SimulationOperations(database)
    sim = configs.create_with_config(principal, SimulationInput(name="race"), valid_config())
    checked, release = threading.Event(), threading.Event()
    real_check = lifecycle.check_deletable

    def check_then_pause(status, *, simulation_id):
        real_check(status, simulation_id=simulation_id)
        checked.set()
        assert release.wait(10)

    monkeypatch.setattr(lifecycle, "check_deletable", check_then_pause)
    delete = in_thread(lambda: simulations.delete(principal, sim.id))
    assert checked.wait(10)  # the delete has read COMPLETED_CONFIG and holds the row
    start = in_thread(lambda: simulations.start_run(principal, sim.id))
    wait_until_blocked_or_finished(database, start)
    release.set()
    deleted, started = delete.join(), start.join()

    # The start waited for the delete, then found nothing: never a run on a deleted row.
    assert "error" not in deleted, deleted
    assert status_for(started["error"]).code == grpc.StatusCode.NOT_FOUND.value[0], started


def test_a_delete_with_a_stale_read_never_removes_a_running_simulation(database, principal):
    """The storage compare-and-swap behind the row lock: a delete by an old etag misses."""
    configs = ConfigOperations(database, ConfigValidator())
    simulations = SimulationOperations(database)
    sim = configs.create_with_config(principal, SimulationInput(name="stale"), valid_config())
    stale_etag = simulations.get(principal, sim.id).etag
    simulations.start_run(principal, sim.id)

    with pytest.raises(storage.Conflict):
        database.run(
            lambda uow: uow.simulations.delete(
                principal.tenant_id, sim.id, expected_etag=stale_etag
            )
        )
    assert simulations.get(principal, sim.id).status == lifecycle.RUNNING


def test_a_simulation_added_while_its_scenario_is_deleted_is_never_orphaned(
    database, principal, monkeypatch
):
    scenarios = ScenarioOperations(database)
    configs = ConfigOperations(database, ConfigValidator())
    scenario = scenarios.create(principal, ScenarioInput(display_name="racing"))
    locked, release = threading.Event(), threading.Event()
    real_ensure = simulation_steps.ensure_scenario

    def ensure_then_pause(uow, tenant_id, scenario_id):
        real_ensure(uow, tenant_id, scenario_id)
        locked.set()
        assert release.wait(10)

    monkeypatch.setattr("service.app.simulation_writes.ensure_scenario", ensure_then_pause)
    create = in_thread(
        lambda: configs.create_with_config(
            principal, SimulationInput(name="late", scenario_id=scenario.id), valid_config()
        )
    )
    assert locked.wait(10)  # the create holds the scenario row and has not added its simulation
    delete = in_thread(lambda: scenarios.delete(principal, scenario.id))
    # The delete must queue behind the create's lock, not count the scenario empty now.
    wait_until_blocked_or_finished(database, delete)
    release.set()
    created, deleted = create.join(), delete.join()

    assert "error" not in created, created
    assert isinstance(deleted.get("error"), errors.FailedPrecondition), deleted
    live = scenarios.get(principal, scenario.id)
    assert live.delete_time is None and live.simulation_count == 1


def test_writers_without_an_etag_take_turns_and_all_succeed(database, principal):
    from concurrent.futures import ThreadPoolExecutor

    configs = ConfigOperations(database, ConfigValidator())
    scenarios = ScenarioOperations(database)
    sim = configs.create_with_config(principal, SimulationInput(name="busy"), valid_config())
    scenario = scenarios.create(principal, ScenarioInput(display_name="busy scenario"))

    def edit_config(i: int):
        config = valid_config(title=f"edit {i}")
        return configs.update_config(principal, sim.id, config, mask=["title"])

    def edit_scenario(i: int):
        return scenarios.update(
            principal, scenario.id, ScenarioInput(description=f"edit {i}"), mask=["description"]
        )

    with ThreadPoolExecutor(6) as pool:
        config_results = list(pool.map(edit_config, range(30)))
        scenario_results = list(pool.map(edit_scenario, range(30)))

    assert len(config_results) == 30 and len(scenario_results) == 30
    revisions = database.run(
        lambda uow: uow.revisions.list(principal.tenant_id, sim.id, before_revision=None, limit=100)
    )
    assert len(revisions) == 31  # the import plus one revision per edit, none lost


def test_a_run_starting_while_its_scenario_is_force_deleted_blocks_the_delete(
    database, principal, monkeypatch
):
    scenarios = ScenarioOperations(database)
    configs = ConfigOperations(database, ConfigValidator())
    simulations = SimulationOperations(database)
    scenario = scenarios.create(principal, ScenarioInput(display_name="force race"))
    sim = configs.create_with_config(
        principal, SimulationInput(name="member", scenario_id=scenario.id), valid_config()
    )
    moved, release = threading.Event(), threading.Event()
    real_transition = simulation_steps.transition

    def transition_then_pause(*args, **kwargs):
        result = real_transition(*args, **kwargs)
        moved.set()  # RUNNING is written, not yet committed; the row stays locked
        assert release.wait(10)
        return result

    monkeypatch.setattr("service.app.simulations.transition", transition_then_pause)
    start = in_thread(lambda: simulations.start_run(principal, sim.id))
    assert moved.wait(10)
    delete = in_thread(lambda: scenarios.delete(principal, scenario.id, force=True))
    wait_until_blocked_or_finished(database, delete)
    release.set()
    started, deleted = start.join(), delete.join()

    assert "error" not in started, started
    assert isinstance(deleted.get("error"), errors.FailedPrecondition), deleted
    assert simulations.get(principal, sim.id).status == lifecycle.RUNNING
    assert scenarios.get(principal, scenario.id).delete_time is None


def test_a_retry_racing_the_first_call_with_its_request_id_waits_and_answers_alike(
    database, principal, monkeypatch
):
    configs = ConfigOperations(database, ConfigValidator())
    simulations = SimulationOperations(database)
    sim = configs.create_with_config(principal, SimulationInput(name="retried"), valid_config())
    moved, release = threading.Event(), threading.Event()
    real_transition = simulation_cases.transition

    def transition_then_pause(*args, **kwargs):
        result = real_transition(*args, **kwargs)
        moved.set()
        assert release.wait(10)
        return result

    monkeypatch.setattr(simulation_cases, "transition", transition_then_pause)
    first = in_thread(lambda: simulations.start_run(principal, sim.id, request_id="start-race"))
    assert moved.wait(10)  # the first call has recorded its request id and moved the run
    retry = in_thread(lambda: simulations.start_run(principal, sim.id, request_id="start-race"))
    wait_until_blocked_or_finished(database, retry)
    release.set()
    started, retried = first.join(), retry.join()

    # The retry waited on the first call's record, then answered with its result: no
    # FAILED_PRECONDITION for a second start, and one transition.
    assert "error" not in started and "error" not in retried, (started, retried)
    assert retried["result"].etag == started["result"].etag
    assert retried["result"].status == lifecycle.RUNNING
    events = database.run(
        lambda uow: uow.events.list_of_live_simulation(
            principal.tenant_id, sim.id, after_id=None, limit=100
        )
    )
    assert [e.to_status for e in events].count(lifecycle.RUNNING) == 1
