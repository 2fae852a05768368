"""Contract tests of the filters every scoped write and read relies on.

On SQLite the schema links a simulation to a scenario by id alone, so a row of another tenant
can point at a tenant's scenario (a forged or corrupted row); the tenant filter is what keeps
such a row out of scenario-wide operations. On PostgreSQL the key names the tenant (migration
0018), so the forged row is written with foreign keys switched off, as corruption would leave
it, and the filters must hold all the same. Jobs are matched by id as well as by owner.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import Conflict, NotFound
from tests.storage.row_locks import SQLITE_WRITE_LOCK, refused_row_locks

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def intruder(database, make, tenant_id, other_tenant_id):
    """A tenant's scenario with one live member, and another tenant's row pointing at it."""
    scenario = make.scenario(tenant_id)
    member = make.simulation(tenant_id, scenario_id=scenario.id)
    record = make.simulation_record(other_tenant_id, scenario_id=scenario.id)

    def forge(uow):
        if database.dialect == "postgresql":
            # Foreign keys are triggers that replication mode skips (the test user is superuser).
            uow._connection.execute(text("SET LOCAL session_replication_role = replica"))
        return uow.simulations.add(record)

    foreign = database.run(forge)
    return scenario, member, foreign


def _simulation(database, tenant_id, simulation_id):
    return database.run(lambda uow: uow.simulations.get(tenant_id, simulation_id))


def test_scenario_wide_reads_see_only_the_tenants_rows(database, tenant_id, intruder):
    scenario, member, _ = intruder

    count = database.run(lambda uow: uow.simulations.count_in_scenario(tenant_id, scenario.id))
    locked = database.run(lambda uow: uow.simulations.lock_in_scenario(tenant_id, scenario.id))

    assert count == 1
    assert [s.id for s in locked] == [member.id]


def test_scenario_wide_delete_and_restore_touch_only_the_tenants_rows(
    database, make, tenant_id, other_tenant_id, intruder
):
    scenario, member, foreign = intruder
    when = make.now + timedelta(minutes=1)

    deleted = database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, when)
    )

    assert deleted == 1
    assert _simulation(database, other_tenant_id, foreign.id) == foreign
    with pytest.raises(NotFound):
        _simulation(database, tenant_id, member.id)

    # The other tenant's row deleted at the same moment must not come back with ours.
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(other_tenant_id, scenario.id, when)
    )
    restored = database.run(
        lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, when)
    )

    assert restored == 1
    assert _simulation(database, tenant_id, member.id).delete_time is None
    with pytest.raises(NotFound):
        _simulation(database, other_tenant_id, foreign.id)


def test_restore_brings_back_only_the_scenarios_simulations(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    elsewhere = make.scenario(tenant_id)
    when = make.now + timedelta(minutes=1)
    member = make.simulation(tenant_id, scenario_id=scenario.id)
    other = make.simulation(tenant_id, scenario_id=elsewhere.id)
    for folder in (scenario, elsewhere):
        database.run(
            lambda uow, folder=folder: uow.simulations.soft_delete_in_scenario(
                tenant_id, folder.id, when
            )
        )

    restored = database.run(
        lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, when)
    )

    assert restored == 1
    assert _simulation(database, tenant_id, member.id).delete_time is None
    with pytest.raises(NotFound):
        _simulation(database, tenant_id, other.id)


def test_another_tenant_cannot_update_a_scenario_even_with_its_id_and_etag(
    database, make, tenant_id, other_tenant_id
):
    scenario = make.scenario(tenant_id, display_name="Mine")
    stolen = replace(scenario, tenant_id=other_tenant_id, display_name="stolen")

    # The caller commits whatever else it did: the refused update must have written nothing.
    with database.unit_of_work() as uow:
        with pytest.raises(NotFound):
            uow.scenarios.update(stolen, expected_etag=scenario.etag)
        uow.commit()

    assert database.run(lambda uow: uow.scenarios.get(tenant_id, scenario.id)) == scenario


def test_a_stale_update_of_a_deleted_scenario_is_a_conflict(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    deleted = database.run(
        lambda uow: uow.scenarios.update(
            replace(scenario, delete_time=make.now), expected_etag=scenario.etag
        )
    )

    with pytest.raises(Conflict):
        database.run(
            lambda uow: uow.scenarios.update(
                replace(deleted, description="late"), expected_etag=scenario.etag
            )
        )


def test_request_ids_are_looked_up_in_the_callers_tenant_only(
    database, make, tenant_id, other_tenant_id
):
    make.scenario(tenant_id, request_id="shared-request")
    make.simulation(tenant_id, request_id="shared-request")

    assert (
        database.run(lambda uow: uow.scenarios.get_by_request_id(other_tenant_id, "shared-request"))
        is None
    )
    assert (
        database.run(
            lambda uow: uow.simulations.get_by_request_id(other_tenant_id, "shared-request")
        )
        is None
    )


def test_a_soft_deleted_simulations_request_id_finds_nothing(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    make.simulation(tenant_id, scenario_id=scenario.id, request_id="gone-request")
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )

    assert (
        database.run(lambda uow: uow.simulations.get_by_request_id(tenant_id, "gone-request"))
        is None
    )


def test_revisions_are_listed_per_simulation(database, make, tenant_id):
    first = make.simulation(tenant_id)
    second = make.simulation(tenant_id)
    make.revision(first, 1)
    make.revision(second, 1)
    make.revision(second, 2)

    listed = database.run(
        lambda uow: uow.revisions.list(tenant_id, first.id, before_revision=None, limit=10)
    )

    assert [(r.simulation_id, r.revision) for r in listed] == [(first.id, 1)]


def test_a_live_scenario_with_a_stale_purge_time_is_never_purged(database, make, tenant_id):
    # A purge time left on a live row (say by an undelete written before it was cleared).
    live = make.scenario(tenant_id, purge_time=make.now - timedelta(days=1))

    database.run(lambda uow: uow.scenarios.purge_expired(make.now))

    assert database.run(lambda uow: uow.scenarios.get(tenant_id, live.id)) == live


# -- jobs: matched by id and owner -----------------------------------------------------------------


@pytest.fixture
def two_running_jobs(clean_database, make):
    """Two jobs of one simulation, both leased to worker-a."""
    sim = make.simulation(make.tenant())
    first = make.job(sim, create_time=T0)
    second = make.job(sim, create_time=T0 + timedelta(seconds=1))
    now = T0 + timedelta(minutes=1)
    for _ in range(2):
        clean_database.run(lambda uow: uow.jobs.claim_next("worker-a", now, 30))
    return first, second, now


def test_renewing_a_lease_renews_only_that_job(clean_database, two_running_jobs):
    first, second, now = two_running_jobs
    before = clean_database.run(lambda uow: uow.jobs.get(second.id))

    renewed = clean_database.run(
        lambda uow: uow.jobs.renew_lease(first.id, "worker-a", now + timedelta(hours=1))
    )

    assert renewed is True
    assert clean_database.run(lambda uow: uow.jobs.get(first.id)).lease_expire_time == (
        now + timedelta(hours=1)
    )
    assert clean_database.run(lambda uow: uow.jobs.get(second.id)) == before


def test_finishing_a_job_finishes_only_that_job(clean_database, two_running_jobs):
    first, second, now = two_running_jobs
    later = now + timedelta(seconds=5)

    finished = clean_database.run(
        lambda uow: uow.jobs.finish(first.id, "worker-a", state="SUCCEEDED", error=None, now=later)
    )

    done = clean_database.run(lambda uow: uow.jobs.get(first.id))
    assert finished is True
    assert (done.state, done.finish_time, done.update_time) == ("SUCCEEDED", later, later)
    assert clean_database.run(lambda uow: uow.jobs.get(second.id)).state == "RUNNING"


def test_a_finished_job_with_an_old_lease_is_never_claimed_again(clean_database, make):
    sim = make.simulation(make.tenant())
    make.job(
        sim,
        state="SUCCEEDED",
        lease_owner="worker-a",
        lease_expire_time=T0,
        attempts=1,
        create_time=T0,
    )

    claimed = clean_database.run(
        lambda uow: uow.jobs.claim_next("worker-b", T0 + timedelta(hours=1), 30)
    )

    assert claimed is None


def test_a_claim_holds_only_the_job_it_takes(clean_database, make):
    """While one claim's transaction is open, a second claimer takes the next job at once.

    On PostgreSQL SKIP LOCKED passes the locked row and the claim locks one row only. SQLite
    has one writer at a time: there the open claim holds the database's write lock instead.
    """
    sim = make.simulation(make.tenant())
    first = make.job(sim, create_time=T0)
    second = make.job(sim, create_time=T0 + timedelta(seconds=1))
    now = T0 + timedelta(minutes=1)
    outcome = {}

    def claim_beside():
        outcome["job"] = clean_database.run(lambda uow: uow.jobs.claim_next("worker-b", now, 30))

    with clean_database.unit_of_work() as holding:
        assert holding.jobs.claim_next("worker-a", now, 30).id == first.id
        if clean_database.dialect == "sqlite":
            assert refused_row_locks(clean_database, "architect_jobs", second.id) == {
                SQLITE_WRITE_LOCK
            }
            return
        beside = threading.Thread(target=claim_beside)
        beside.start()
        # A claimer that waited for the open transaction would still be waiting here.
        beside.join(20)
        finished_while_held = not beside.is_alive()
    beside.join(20)

    assert finished_while_held, "the second claim waited for the first one's lock"
    assert outcome["job"].id == second.id


def test_another_tenant_cannot_update_a_simulation_even_with_its_id_and_etag(
    database, make, tenant_id, other_tenant_id
):
    sim = make.simulation(tenant_id, name="Mine")
    stolen = replace(sim, tenant_id=other_tenant_id, name="stolen")

    with database.unit_of_work() as uow:
        with pytest.raises(NotFound):
            uow.simulations.update(stolen, expected_etag=sim.etag)
        uow.commit()

    assert _simulation(database, tenant_id, sim.id) == sim


def test_a_soft_deleted_simulation_cannot_be_updated(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=scenario.id, name="Before")
    when = make.now + timedelta(minutes=1)
    database.run(lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, when))

    with database.unit_of_work() as uow:
        with pytest.raises(NotFound):
            uow.simulations.update(replace(sim, name="While deleted"), expected_etag=sim.etag)
        uow.commit()

    database.run(lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, when))
    assert _simulation(database, tenant_id, sim.id).name == "Before"
