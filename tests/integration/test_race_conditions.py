"""Interleavings that only a real multi-writer database shows, forced on PostgreSQL.

SQLite serialises these transactions with its write lock; PostgreSQL runs them at once, so each
test pauses one transaction at the dangerous point while another commits.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

import storage
from service import auth, errors, lifecycle, simulation_steps
from service.configs import ConfigOperations
from service.scenarios import ScenarioInput, ScenarioOperations
from service.simulation_steps import SimulationInput
from service.simulations import SimulationOperations
from service.validation import ConfigValidator
from tests.unit.simulation_api import valid_config


@pytest.fixture(scope="module")
def database(postgres_url):
    db = storage.Database(postgres_url)
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def principal(database):
    tenant = auth.new_tenant(database, f"races-{uuid.uuid4().hex[:8]}")
    issued = auth.issue_key(database, tenant.id, "write")
    return auth.Principal(tenant.id, issued.record.id, "write")


def in_thread(fn):
    """Runs ``fn`` on a thread; returns a join function giving its result or exception."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the test to assert on
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()

    def join():
        thread.join(30)
        assert not thread.is_alive(), "thread did not finish"
        return box

    return join


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
    join_delete = in_thread(lambda: simulations.delete(principal, sim.id))
    assert checked.wait(10)  # the delete has read COMPLETED_CONFIG and holds the row
    join_start = in_thread(lambda: simulations.start_run(principal, sim.id))
    time.sleep(0.5)
    release.set()
    deleted, started = join_delete(), join_start()

    # The start waited for the delete, then found nothing: never a run on a deleted row.
    assert "error" not in deleted, deleted
    assert isinstance(started.get("error"), errors.NotFound), started


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

    monkeypatch.setattr("service.simulation_steps.ensure_scenario", ensure_then_pause)
    join_create = in_thread(
        lambda: configs.create_with_config(
            principal, SimulationInput(name="late", scenario_id=scenario.id), valid_config()
        )
    )
    assert locked.wait(10)
    join_delete = in_thread(lambda: scenarios.delete(principal, scenario.id))
    # The delete must now be blocked on the scenario row, not counting it empty.
    release.set()
    created, deleted = join_create(), join_delete()

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

    monkeypatch.setattr("service.simulations.transition", transition_then_pause)
    join_start = in_thread(lambda: simulations.start_run(principal, sim.id))
    assert moved.wait(10)
    join_delete = in_thread(lambda: scenarios.delete(principal, scenario.id, force=True))
    time.sleep(0.5)
    release.set()
    started, deleted = join_start(), join_delete()

    assert "error" not in started, started
    assert isinstance(deleted.get("error"), errors.FailedPrecondition), deleted
    assert simulations.get(principal, sim.id).status == lifecycle.RUNNING
    assert scenarios.get(principal, scenario.id).delete_time is None
