"""Scenario use cases (service/app/scenarios.py) on the in-memory fake database.

These are about the use cases' own rules (masks, forced and refused deletes, undelete,
purging, request ids); the gRPC translation is tested in test_scenario_servicer.py and the
fake is held to the real repositories by tests/storage/test_fake_unit_of_work.py.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

import storage
from service.app.authentication import Principal
from service.app.scenarios import PURGE_INTERVAL, ScenarioInput, ScenarioOperations
from service.domain import errors
from tests.fakes import FakeDatabase

ALICE = Principal("tenant-a", "key-a", "write")
BOB = Principal("tenant-b", "key-b", "write")


@pytest.fixture
def database() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def ops(database) -> ScenarioOperations:
    return ScenarioOperations(database, retention=timedelta(days=30))


def add_simulation(database: FakeDatabase, scenario: storage.Scenario, status: str):
    now = datetime.now(UTC)
    record = storage.Simulation(
        id=str(uuid.uuid4()),
        tenant_id=scenario.tenant_id,
        scenario_id=scenario.id,
        name=f"sim {status}",
        prompt="p",
        labels={},
        status=status,
        current_revision=0,
        architect_parameters=None,
        results=None,
        analysis=None,
        last_error=None,
        create_time=now,
        update_time=now,
    )
    return database.run(lambda uow: uow.simulations.add(record))


def test_a_retry_after_the_scenario_was_edited_still_gets_it(ops):
    first = ops.create(ALICE, ScenarioInput(display_name="Once"), request_id="r-1")
    ops.update(ALICE, first.id, ScenarioInput(description="edited"), mask=["description"])

    again = ops.create(ALICE, ScenarioInput(display_name="Once"), request_id="r-1")

    assert again.id == first.id and again.description == "edited"
    with pytest.raises(errors.InvalidArgument) as caught:
        ops.create(ALICE, ScenarioInput(display_name="Other"), request_id="r-1")
    assert caught.value.reason == "REQUEST_ID_REUSED"


def test_validate_only_checks_the_name_and_stores_nothing(ops, database):
    ops.create(ALICE, ScenarioInput(display_name="Taken"))

    checked = ops.create(ALICE, ScenarioInput(display_name="Free"), validate_only=True)

    assert checked.id == "" and checked.display_name == "Free"
    with pytest.raises(storage.AlreadyExists):
        ops.create(ALICE, ScenarioInput(display_name="Taken"), validate_only=True)
    assert [s.display_name for s in database.state.scenarios.values()] == ["Taken"]


def test_an_empty_mask_changes_only_the_fields_the_input_sets(ops):
    scenario = ops.create(
        ALICE, ScenarioInput(display_name="Before", description="keep", labels={"env": "dev"})
    )

    updated = ops.update(ALICE, scenario.id, ScenarioInput(display_name="After"), mask=[])

    assert (updated.display_name, updated.description, updated.labels) == (
        "After",
        "keep",
        {"env": "dev"},
    )
    # An input that sets nothing, with no mask, would change nothing: refused, not a no-op.
    with pytest.raises(errors.InvalidArgument) as refused:
        ops.update(ALICE, scenario.id, ScenarioInput(), mask=[])
    assert refused.value.reason == "UPDATE_MASK_EMPTY"
    assert ops.get(ALICE, scenario.id).etag == updated.etag


def test_a_star_mask_replaces_every_field_and_clears_the_empty_ones(ops):
    scenario = ops.create(
        ALICE, ScenarioInput(display_name="Before", description="gone", labels={"env": "dev"})
    )

    updated = ops.update(ALICE, scenario.id, ScenarioInput(display_name="After"), mask=["*"])

    assert (updated.display_name, updated.description, updated.labels) == ("After", "", {})


def test_a_deleted_scenario_cannot_be_edited(ops):
    scenario = ops.create(ALICE, ScenarioInput(display_name="Gone"))
    ops.delete(ALICE, scenario.id)

    with pytest.raises(errors.FailedPrecondition) as caught:
        ops.update(ALICE, scenario.id, ScenarioInput(description="x"), mask=["description"])

    assert caught.value.reason == "SCENARIO_DELETED"


def test_another_tenants_scenario_is_not_found(ops):
    scenario = ops.create(ALICE, ScenarioInput(display_name="Mine"))

    for call in (
        lambda: ops.get(BOB, scenario.id),
        lambda: ops.update(BOB, scenario.id, ScenarioInput(description="x"), mask=["description"]),
        lambda: ops.delete(BOB, scenario.id),
    ):
        with pytest.raises(storage.NotFound):
            call()
    assert ops.get(ALICE, scenario.id).description == ""


def test_a_scenario_holding_simulations_is_deleted_only_by_force_and_restored_with_them(
    ops, database
):
    scenario = ops.create(ALICE, ScenarioInput(display_name="Holder"))
    add_simulation(database, scenario, "COMPLETED_CONFIG")

    with pytest.raises(errors.FailedPrecondition) as refused:
        ops.delete(ALICE, scenario.id)
    assert refused.value.reason == "SCENARIO_NOT_EMPTY"

    deleted = ops.delete(ALICE, scenario.id, force=True)

    assert deleted.purge_time == deleted.delete_time + timedelta(days=30)
    assert (
        database.run(lambda uow: uow.simulations.count_in_scenario(ALICE.tenant_id, scenario.id))
        == 0
    )
    assert ops.undelete(ALICE, scenario.id).simulation_count == 1


@pytest.mark.parametrize("status", ["PENDING", "GENERATING_CONFIG", "RUNNING"])
def test_a_scenario_with_a_busy_simulation_cannot_be_deleted_even_by_force(ops, database, status):
    scenario = ops.create(ALICE, ScenarioInput(display_name="Busy"))
    add_simulation(database, scenario, "COMPLETED")
    busy = add_simulation(database, scenario, status)

    for force in (True, False):
        with pytest.raises(errors.FailedPrecondition) as refused:
            ops.delete(ALICE, scenario.id, force=force)
        assert refused.value.reason == "SIMULATIONS_BUSY"
        assert [(v.type, v.subject) for v in refused.value.violations] == [
            ("STATUS", f"simulations/{busy.id}")
        ]

    still = ops.get(ALICE, scenario.id)
    assert still.delete_time is None and still.simulation_count == 2


def test_a_reused_name_blocks_the_undelete_of_the_first(ops):
    first = ops.create(ALICE, ScenarioInput(display_name="Reused"))
    ops.delete(ALICE, first.id)
    ops.create(ALICE, ScenarioInput(display_name="Reused"))

    with pytest.raises(storage.AlreadyExists):
        ops.undelete(ALICE, first.id)


def test_a_scenario_past_its_retention_cannot_be_undeleted(ops, database):
    scenario = ops.create(ALICE, ScenarioInput(display_name="Old"))
    deleted = ops.delete(ALICE, scenario.id)
    expired = replace(deleted, purge_time=datetime.now(UTC) - timedelta(seconds=1))
    database.run(lambda uow: uow.scenarios.update(expired, expected_etag=deleted.etag))

    with pytest.raises(storage.NotFound):
        ops.undelete(ALICE, scenario.id)

    with pytest.raises(errors.FailedPrecondition) as live:
        ops.undelete(ALICE, ops.create(ALICE, ScenarioInput(display_name="Live")).id)
    assert live.value.reason == "SCENARIO_NOT_DELETED"


def test_purging_runs_once_per_interval_and_removes_only_expired_scenarios(ops, database):
    kept = ops.delete(ALICE, ops.create(ALICE, ScenarioInput(display_name="Kept")).id)
    gone = ops.delete(ALICE, ops.create(ALICE, ScenarioInput(display_name="Gone")).id)
    expired = replace(gone, purge_time=datetime.now(UTC) - timedelta(seconds=1))
    database.run(lambda uow: uow.scenarios.update(expired, expected_etag=gone.etag))

    assert ops.purge_expired() == 1
    assert set(database.state.scenarios) == {kept.id}

    # The next purge is not due before PURGE_INTERVAL has passed, whatever expires meanwhile.
    again = replace(ops.get(ALICE, kept.id), purge_time=datetime.now(UTC) - timedelta(seconds=1))
    database.run(lambda uow: uow.scenarios.update(again, expected_etag=kept.etag))
    assert ops.purge_expired() == 0
    assert database.state.next_runs["scenario-purge"] > datetime.now(UTC) + PURGE_INTERVAL / 2
