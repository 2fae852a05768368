"""Contract tests of the storage errors: each names the entity and the id or value involved.

The service layer turns them into NOT_FOUND, ABORTED and ALREADY_EXISTS with these names, so
they are part of the storage contract, on both engines.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from storage import AlreadyExists, ApiKey, Conflict, NotFound


def _key(tenant_id: str, key_id: str) -> ApiKey:
    return ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        scope="read",
        key_hash="0" * 64,
        create_time=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("lookup", "entity", "missing_id"),
    [
        (lambda uow: uow.api_keys.get("feedfacefeedface"), "api_key", "feedfacefeedface"),
        (lambda uow: uow.jobs.get("no-such-job"), "architect_job", "no-such-job"),
        (lambda uow: uow.tenants.get("no-such-tenant"), "tenant", "no-such-tenant"),
    ],
    ids=["api_key", "architect_job", "tenant"],
)
def test_not_found_names_the_entity_and_the_id(database, lookup, entity, missing_id):
    with pytest.raises(NotFound) as raised:
        database.run(lookup)

    assert (raised.value.entity, raised.value.id) == (entity, missing_id)


def test_revoking_a_key_nobody_issued_is_not_found_naming_it(database, make):
    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.api_keys.revoke("feedfacefeedface", make.now))

    assert (raised.value.entity, raised.value.id) == ("api_key", "feedfacefeedface")


def test_a_missing_revision_is_not_found_naming_simulation_and_number(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    make.revision(sim, 1)
    second = make.revision(sim, 2)

    assert database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 2)) == second
    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 3))
    assert (raised.value.entity, raised.value.id) == ("config_revision", f"{sim.id}@3")


def test_a_stale_delete_is_a_conflict_naming_the_simulation(database, make, tenant_id):
    sim = make.simulation(tenant_id)

    with pytest.raises(Conflict) as raised:
        database.run(lambda uow: uow.simulations.delete(tenant_id, sim.id, expected_etag="stale"))

    assert (raised.value.entity, raised.value.id) == ("simulation", sim.id)


def test_a_duplicate_key_id_already_exists_naming_it(database, tenant_id):
    key_id = uuid.uuid4().hex[:16]
    database.run(lambda uow: uow.api_keys.add(_key(tenant_id, key_id)))

    with pytest.raises(AlreadyExists) as raised:
        database.run(lambda uow: uow.api_keys.add(_key(tenant_id, key_id)))

    error = raised.value
    assert (error.entity, error.field, error.value) == ("api_key", "id", key_id)


def test_a_duplicate_job_id_already_exists_naming_it(clean_database, make):
    sim = make.simulation(make.tenant())
    job = make.job(sim)

    with pytest.raises(AlreadyExists) as raised:
        make.job(sim, id=job.id)

    error = raised.value
    assert (error.entity, error.field, error.value) == ("architect_job", "id", job.id)


def test_a_job_for_a_missing_simulation_is_not_found_naming_the_simulation(clean_database, make):
    sim = make.simulation(make.tenant())
    orphan = make.simulation_record(sim.tenant_id)

    with pytest.raises(NotFound) as raised:
        make.job(orphan)

    assert (raised.value.entity, raised.value.id) == ("simulation", orphan.id)


def test_moving_a_simulation_into_a_missing_scenario_is_not_found_naming_it(
    database, make, tenant_id
):
    sim = make.simulation(tenant_id)

    with pytest.raises(NotFound) as raised:
        database.run(
            lambda uow: uow.simulations.update(
                replace(sim, scenario_id="no-such-scenario"), expected_etag=sim.etag
            )
        )

    assert (raised.value.entity, raised.value.id) == ("scenario", "no-such-scenario")


def test_an_event_of_a_missing_simulation_is_not_found_naming_it(database, make, tenant_id):
    sim = make.simulation_record(tenant_id)  # never stored

    with pytest.raises(NotFound) as raised:
        make.event(sim)

    assert (raised.value.entity, raised.value.id) == ("simulation", sim.id)


def test_a_taken_simulation_id_or_request_id_already_exists_naming_it(database, make, tenant_id):
    first = make.simulation(tenant_id, request_id="sim-request")

    with pytest.raises(AlreadyExists) as by_id:
        make.simulation(tenant_id, id=first.id)
    with pytest.raises(AlreadyExists) as by_request:
        make.simulation(tenant_id, request_id="sim-request")

    assert (by_id.value.entity, by_id.value.field, by_id.value.value) == (
        "simulation",
        "id",
        first.id,
    )
    assert (by_request.value.field, by_request.value.value) == ("request_id", "sim-request")


def test_a_missing_simulation_is_not_found_naming_it(database, tenant_id):
    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.simulations.get(tenant_id, "no-such-simulation"))

    assert (raised.value.entity, raised.value.id) == ("simulation", "no-such-simulation")
