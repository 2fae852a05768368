"""Interleavings that only a real multi-writer database shows, forced on PostgreSQL.

SQLite serialises these transactions with its write lock; PostgreSQL runs them at once, so each
test pauses one transaction at the dangerous point while another commits.
"""

from __future__ import annotations

import threading
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


def test_a_delete_that_read_before_a_run_started_does_not_delete_the_running_simulation(
    database, principal, monkeypatch
):
    configs = ConfigOperations(database, ConfigValidator())
    simulations = SimulationOperations(database)
    sim = configs.create_with_config(principal, SimulationInput(name="race"), valid_config())
    read, started = threading.Event(), threading.Event()
    real_check = lifecycle.check_deletable

    def check_then_pause(status, *, simulation_id):
        real_check(status, simulation_id=simulation_id)
        if not read.is_set():  # only the first attempt pauses
            read.set()
            assert started.wait(10)

    monkeypatch.setattr(lifecycle, "check_deletable", check_then_pause)
    join = in_thread(lambda: simulations.delete(principal, sim.id))
    assert read.wait(10)
    simulations.start_run(principal, sim.id)  # commits while the delete is paused
    started.set()
    outcome = join()

    # The delete's compare-and-swap missed; its retry saw RUNNING and refused.
    assert isinstance(outcome.get("error"), errors.FailedPrecondition), outcome
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
