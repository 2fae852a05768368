"""The stored simulation count of a scenario: exact after every kind of write, on both engines."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from storage import Conflict, NotFound, Unavailable
from storage.schema import simulations


def _stored_count(database, tenant_id, scenario_id) -> int:
    return database.read(lambda uow: uow.scenarios.get(tenant_id, scenario_id)).simulation_count


def _actual_count(database, scenario_id) -> int:
    with database.engine.connect() as connection:
        return connection.execute(
            select(func.count())
            .select_from(simulations)
            .where(simulations.c.scenario_id == scenario_id, simulations.c.delete_time.is_(None))
        ).scalar_one()


def _move(database, tenant_id, simulation_id, scenario_id):
    def move(uow):
        current = uow.simulations.get(tenant_id, simulation_id, for_update=True)
        return uow.simulations.update(
            replace(current, scenario_id=scenario_id), expected_etag=current.etag
        )

    return database.run(move)


def test_adding_moving_and_deleting_simulations_keeps_the_count_exact(database, make, tenant_id):
    first, second = make.scenario(tenant_id), make.scenario(tenant_id)
    sims = [make.simulation(tenant_id, scenario_id=first.id) for _ in range(3)]
    make.simulation(tenant_id)  # in no scenario: counts nowhere
    assert _stored_count(database, tenant_id, first.id) == 3

    _move(database, tenant_id, sims[0].id, second.id)
    assert (
        _stored_count(database, tenant_id, first.id),
        _stored_count(database, tenant_id, second.id),
    ) == (2, 1)

    _move(database, tenant_id, sims[1].id, None)
    assert _stored_count(database, tenant_id, first.id) == 1

    database.run(lambda uow: uow.simulations.delete(tenant_id, sims[2].id))
    assert _stored_count(database, tenant_id, first.id) == 0
    assert _stored_count(database, tenant_id, second.id) == 1


def test_soft_deleting_and_restoring_a_scenarios_simulations_moves_the_count(
    database, make, tenant_id
):
    scenario = make.scenario(tenant_id)
    for _ in range(4):
        make.simulation(tenant_id, scenario_id=scenario.id)
    when = make.now + timedelta(seconds=1)

    deleted = database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, when)
    )
    assert deleted == 4
    assert _stored_count(database, tenant_id, scenario.id) == 0

    database.run(lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, when))
    assert _stored_count(database, tenant_id, scenario.id) == 4


def test_a_rolled_back_write_leaves_the_count_unchanged(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    record = make.simulation_record(tenant_id, scenario_id=scenario.id)
    with database.unit_of_work() as uow:
        uow.simulations.add(record)
        uow.rollback()

    assert _stored_count(database, tenant_id, scenario.id) == 0


def test_updating_a_scenario_never_overwrites_its_count(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    make.simulation(tenant_id, scenario_id=scenario.id)

    # The record still says 0: what the scenario had when it was read.
    updated = database.run(
        lambda uow: uow.scenarios.update(
            replace(scenario, description="new"), expected_etag=scenario.etag
        )
    )

    assert updated.simulation_count == 1
    assert _stored_count(database, tenant_id, scenario.id) == 1


def test_the_count_never_drifts_under_concurrent_moves(database, make, tenant_id):
    scenarios = [make.scenario(tenant_id) for _ in range(3)]
    sims = [make.simulation(tenant_id, scenario_id=scenarios[i % 3].id) for i in range(12)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def mover(seed: int) -> None:
        chooser = random.Random(seed)
        start.wait()
        for _ in range(25):
            target = chooser.choice([*scenarios, None])
            try:
                _move(
                    database,
                    tenant_id,
                    chooser.choice(sims).id,
                    target.id if target is not None else None,
                )
            except (Conflict, Unavailable):
                continue  # a lost race or a deadlock victim: the count must still be exact
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=mover, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for scenario in scenarios:
        assert _stored_count(database, tenant_id, scenario.id) == _actual_count(
            database, scenario.id
        )


def test_adding_a_simulation_to_a_missing_scenario_is_not_found(database, make, tenant_id):
    with pytest.raises(NotFound):
        make.simulation(tenant_id, scenario_id="no-such-scenario")


def test_statements_touching_many_simulations_count_them_all(database, make, tenant_id):
    from sqlalchemy import insert

    from storage.repositories.base import columns_of

    first, second = make.scenario(tenant_id), make.scenario(tenant_id)
    rows = [
        columns_of(make.simulation_record(tenant_id, scenario_id=scenario.id)) | {"etag": "e"}
        for scenario in [first] * 300 + [second] * 200
    ]
    with database.engine.begin() as connection:
        connection.execute(insert(simulations), rows)  # one statement, many rows
    assert _stored_count(database, tenant_id, first.id) == 300
    assert _stored_count(database, tenant_id, second.id) == 200

    database.run(lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, first.id, make.now))
    assert _stored_count(database, tenant_id, first.id) == 0
    assert _stored_count(database, tenant_id, second.id) == 200
