"""Contract tests of SimulationRepository."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from storage import (
    AllOf,
    AlreadyExists,
    Comparison,
    Conflict,
    NotFound,
    SimulationQuery,
    cursor_of,
)
from tests.storage.conftest import new_id
from tests.storage.row_locks import ROW_LOCK_MODES, SQLITE_WRITE_LOCK, refused_row_locks


def test_added_simulation_reads_back_with_json_fields_intact(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    record = make.simulation_record(
        tenant_id,
        scenario_id=scenario.id,
        labels={"team": "alpha"},
        architect_parameters={"num_agents": 5, "temperature": 0.7, "instructions": "be nice"},
        results={"turns": [{"n": 1, "ok": True}], "score": None},
        request_id="req-1",
    )

    stored = database.run(lambda uow: uow.simulations.add(record))

    assert len(stored.etag) == 32
    assert stored == replace(record, etag=stored.etag)
    assert stored.analysis is None and stored.last_error is None
    assert database.run(lambda uow: uow.simulations.get(tenant_id, record.id)) == stored


def test_adding_a_simulation_to_a_missing_scenario_raises_not_found(database, make, tenant_id):
    record = make.simulation_record(tenant_id, scenario_id="no-such-scenario")

    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.simulations.add(record))
    assert (raised.value.entity, raised.value.id) == ("scenario", "no-such-scenario")


def test_adding_a_duplicate_request_id_raises_already_exists(database, make, tenant_id):
    first = make.simulation(tenant_id, request_id="req-9")

    with pytest.raises(AlreadyExists) as raised:
        make.simulation(tenant_id, request_id="req-9")

    assert (raised.value.entity, raised.value.field) == ("simulation", "request_id")
    assert database.run(lambda uow: uow.simulations.get_by_request_id(tenant_id, "req-9")) == first
    assert database.run(lambda uow: uow.simulations.get_by_request_id(tenant_id, "x")) is None


def test_the_same_request_id_is_allowed_in_two_tenants(database, make, tenant_id, other_tenant_id):
    first = make.simulation(tenant_id, request_id="req-1")
    second = make.simulation(other_tenant_id, request_id="req-1")
    assert first.id != second.id
    found = database.run(lambda uow: uow.simulations.get_by_request_id(other_tenant_id, "req-1"))
    assert found.id == second.id


def test_another_tenant_cannot_see_update_or_delete_a_simulation(
    database, make, tenant_id, other_tenant_id
):
    sim = make.simulation(tenant_id, request_id="req-1")
    foreign = replace(sim, tenant_id=other_tenant_id, name="stolen")

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.get(other_tenant_id, sim.id))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.update(foreign, expected_etag=sim.etag))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.delete(other_tenant_id, sim.id))
    assert (
        database.run(lambda uow: uow.simulations.get_by_request_id(other_tenant_id, "req-1"))
        is None
    )
    assert _list(database, other_tenant_id, SimulationQuery(limit=10)) == []
    assert database.run(lambda uow: uow.simulations.get(tenant_id, sim.id)) == sim


def test_update_writes_every_mutable_field_and_a_new_etag(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    scenario = make.scenario(tenant_id)
    changed = replace(
        sim,
        scenario_id=scenario.id,
        name="renamed",
        prompt="new prompt",
        labels={"a": "b"},
        status="COMPLETED_CONFIG",
        current_revision=3,
        architect_parameters={"model": "m"},
        results={"r": 1},
        analysis={"a": [1, 2]},
        last_error={"violations": [{"path": "agents[0].id"}]},
        update_time=make.now + timedelta(minutes=5),
    )

    updated = database.run(lambda uow: uow.simulations.update(changed, expected_etag=sim.etag))

    assert updated.etag != sim.etag
    assert updated == replace(changed, etag=updated.etag)


def test_update_can_clear_json_fields_back_to_none(database, make, tenant_id):
    sim = make.simulation(tenant_id, results={"r": 1}, analysis={"a": 1})

    updated = database.run(
        lambda uow: uow.simulations.update(
            replace(sim, results=None, analysis=None), expected_etag=sim.etag
        )
    )

    assert (updated.results, updated.analysis) == (None, None)


def test_update_with_stale_etag_raises_conflict(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    database.run(lambda uow: uow.simulations.update(sim, expected_etag=sim.etag))

    with pytest.raises(Conflict) as raised:
        database.run(lambda uow: uow.simulations.update(sim, expected_etag=sim.etag))
    assert (raised.value.entity, raised.value.id) == ("simulation", sim.id)


def test_update_of_a_missing_simulation_raises_not_found(database, make, tenant_id):
    with pytest.raises(NotFound):
        record = make.simulation_record(tenant_id)
        database.run(lambda uow: uow.simulations.update(record, expected_etag="x"))


def test_concurrent_updates_with_the_same_etag_have_exactly_one_winner(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def write(index: int) -> None:
        def update(uow):
            barrier.wait(timeout=10)
            changed = replace(sim, status="GENERATING_CONFIG", prompt=f"writer {index}")
            return uow.simulations.update(changed, expected_etag=sim.etag)

        try:
            database.run(update)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict"] * (writers - 1) + ["won"]


def test_delete_removes_the_simulation_with_its_revisions_events_and_jobs(
    database, make, tenant_id
):
    sim = make.simulation(tenant_id)
    keep = make.simulation(tenant_id)
    for target in (sim, keep):
        make.revision(target, 1)
        make.event(target)
        make.job(target)

    database.run(lambda uow: uow.simulations.delete(tenant_id, sim.id))

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1))
    assert (
        database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=5)) == []
    )
    assert database.run(lambda uow: uow.jobs.find_active(tenant_id, sim.id)) is None
    database.run(lambda uow: uow.revisions.get(tenant_id, keep.id, 1))
    assert database.run(lambda uow: uow.jobs.find_active(tenant_id, keep.id)) is not None


def test_deleting_a_missing_simulation_raises_not_found(database, tenant_id):
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.delete(tenant_id, "missing"))


def test_soft_deleted_simulations_are_invisible_until_restored(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sims = [make.simulation(tenant_id, scenario_id=scenario.id) for _ in range(3)]
    elsewhere = make.simulation(tenant_id)
    earlier = datetime(2024, 1, 1, tzinfo=UTC)
    when = datetime(2024, 2, 1, 12, 30, 15, 123456, tzinfo=UTC)
    database.run(lambda uow: uow.simulations.delete(tenant_id, sims[0].id))

    deleted = database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, when)
    )

    assert deleted == 2
    assert database.run(lambda uow: uow.simulations.count_in_scenario(tenant_id, scenario.id)) == 0
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.get(tenant_id, sims[1].id))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.update(sims[1], expected_etag=sims[1].etag))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.delete(tenant_id, sims[1].id))
    assert [s.id for s in _list(database, tenant_id, SimulationQuery(limit=10))] == [elsewhere.id]

    assert (
        database.run(
            lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, earlier)
        )
        == 0
    )
    restored = database.run(
        lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, when)
    )

    assert restored == 2
    assert database.run(lambda uow: uow.simulations.count_in_scenario(tenant_id, scenario.id)) == 2
    assert database.run(lambda uow: uow.simulations.get(tenant_id, sims[1].id)).delete_time is None


def test_restore_leaves_simulations_deleted_at_another_time(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=scenario.id)
    first = datetime(2024, 1, 1, tzinfo=UTC)
    database.run(lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, first))
    later = make.simulation(tenant_id, scenario_id=scenario.id)
    second = first + timedelta(microseconds=1)
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, second)
    )

    restored = database.run(
        lambda uow: uow.simulations.restore_in_scenario(tenant_id, scenario.id, second)
    )

    assert restored == 1
    database.run(lambda uow: uow.simulations.get(tenant_id, later.id))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))


def test_list_filters_by_scenario_status_name_and_labels(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    make.simulation(tenant_id, name="Alpha run", scenario_id=scenario.id, labels={"k": "1"})
    make.simulation(tenant_id, name="beta RUN", status="FAILED", labels={"k": "2"})
    make.simulation(tenant_id, name="gamma", status="COMPLETED", labels={"other": "x"})
    make.simulation(tenant_id, name="50%_off", status="COMPLETED")

    def names(*conditions):
        query = SimulationQuery(limit=50, filter=AllOf(conditions))
        return sorted(s.name for s in _list(database, tenant_id, query))

    failed = Comparison("status", "=", "FAILED")
    has_k = Comparison("labels", "has", None, key="k")
    assert names(Comparison("scenario_id", "=", scenario.id)) == ["Alpha run"]
    assert names(Comparison("status", "in", ("FAILED", "COMPLETED"))) == [
        "50%_off",
        "beta RUN",
        "gamma",
    ]
    assert names(Comparison("name", "=", "gamma")) == ["gamma"]
    assert names(Comparison("name", "contains", "run")) == ["Alpha run", "beta RUN"]
    assert names(Comparison("name", "contains", "%_")) == ["50%_off"]
    assert names(Comparison("name", "contains", "0_")) == []
    assert names(Comparison("labels", "=", "2", key="k")) == ["beta RUN"]
    assert names(has_k) == ["Alpha run", "beta RUN"]
    assert names(has_k, failed) == ["beta RUN"]


def test_list_unfiled_keeps_only_the_simulations_in_no_scenario(
    database, make, tenant_id, other_tenant_id
):
    scenario = make.scenario(tenant_id)
    make.simulation(tenant_id, name="filed", scenario_id=scenario.id)
    make.simulation(tenant_id, name="loose", labels={"k": "1"})
    make.simulation(tenant_id, name="loose failed", status="FAILED")
    make.simulation(other_tenant_id, name="foreign loose")

    def names(*conditions):
        query = SimulationQuery(limit=50, filter=AllOf(conditions))
        return sorted(s.name for s in _list(database, tenant_id, query))

    # A simulation in no scenario compares as scenario_id "".
    unfiled = Comparison("scenario_id", "=", "")
    assert names(unfiled) == ["loose", "loose failed"]
    assert names(unfiled, Comparison("status", "=", "FAILED")) == ["loose failed"]
    assert names(unfiled, Comparison("labels", "=", "1", key="k")) == ["loose"]
    assert names() == ["filed", "loose", "loose failed"]


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("order_by", ["create_time", "name"])
def test_keyset_pages_cover_every_row_once_despite_ties(
    database, make, tenant_id, order_by, descending
):
    base = datetime(2024, 3, 1, tzinfo=UTC)
    # Names and create times both repeat, so the id must break the ties.
    for i in range(11):
        make.simulation(tenant_id, name=f"sim-{i % 4}", create_time=base + timedelta(seconds=i % 3))
    everything = _list(database, tenant_id, SimulationQuery(limit=100))
    expected = sorted(everything, key=lambda s: cursor_of(s, order_by), reverse=descending)

    seen, after = [], None
    for _ in range(20):  # 3 pages are enough; a cursor that repeats its row would go on forever
        query = SimulationQuery(limit=4, order_by=order_by, descending=descending, after=after)
        page = _list(database, tenant_id, query)
        if not page:
            break
        assert len(page) <= 4
        seen.extend(page)
        after = cursor_of(page[-1], order_by)

    assert [s.id for s in seen] == [s.id for s in expected]


def test_an_unknown_ordering_is_rejected(database, tenant_id):
    with pytest.raises(ValueError, match="order by"):
        _list(database, tenant_id, SimulationQuery(limit=1, order_by="prompt"))


def _list(database, tenant_id, query):
    return database.run(lambda uow: uow.simulations.list(tenant_id, query))


def test_delete_with_a_stale_etag_raises_conflict_and_keeps_the_simulation(
    database, make, tenant_id
):
    sim = make.simulation(tenant_id)
    changed = database.run(
        lambda uow: uow.simulations.update(replace(sim, status="RUNNING"), expected_etag=sim.etag)
    )

    with pytest.raises(Conflict):
        database.run(lambda uow: uow.simulations.delete(tenant_id, sim.id, expected_etag=sim.etag))

    assert database.run(lambda uow: uow.simulations.get(tenant_id, sim.id)).status == "RUNNING"
    database.run(lambda uow: uow.simulations.delete(tenant_id, sim.id, expected_etag=changed.etag))
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))


@pytest.mark.parametrize(
    ("options", "refused"),
    [({}, set()), ({"for_update": False}, set()), ({"for_update": True}, set(ROW_LOCK_MODES))],
    ids=["plain", "no-lock", "for-update"],
)
def test_get_for_update_locks_the_row_until_the_transaction_ends(
    database, make, tenant_id, options, refused
):
    sim = make.simulation(tenant_id)

    with database.unit_of_work() as uow:
        found = uow.simulations.get(tenant_id, sim.id, **options)
        held = refused_row_locks(database, "simulations", sim.id)

    assert found == sim
    assert held == ({SQLITE_WRITE_LOCK} if database.dialect == "sqlite" else refused)
    assert refused_row_locks(database, "simulations", sim.id) == set()


def test_lock_in_scenario_locks_every_live_member_and_nothing_else(
    database, make, tenant_id, other_tenant_id
):
    scenario = make.scenario(tenant_id)
    gone = make.simulation(tenant_id, scenario_id=scenario.id)
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )
    # Added in descending id order: only an ORDER BY id returns them ascending.
    high, low = sorted((new_id() for _ in range(2)), reverse=True)
    members = [make.simulation(tenant_id, id=i, scenario_id=scenario.id) for i in (high, low)]
    outsider = make.simulation(tenant_id)
    foreign = make.simulation(other_tenant_id, scenario_id=make.scenario(other_tenant_id).id)

    with database.unit_of_work() as uow:
        locked = uow.simulations.lock_in_scenario(tenant_id, scenario.id)
        held = {
            sim.id: refused_row_locks(database, "simulations", sim.id)
            for sim in [*members, gone, outsider, foreign]
        }

    assert [s.id for s in locked] == [low, high]
    if database.dialect == "sqlite":
        assert all(modes == {SQLITE_WRITE_LOCK} for modes in held.values())
    else:
        assert held == {
            **{sim.id: set(ROW_LOCK_MODES) for sim in members},
            gone.id: set(),
            outsider.id: set(),
            foreign.id: set(),
        }


def test_list_with_sources_pairs_each_simulation_with_its_current_revisions_sources(
    database, make, tenant_id, other_tenant_id
):
    revised = make.simulation(tenant_id, name="revised", current_revision=2)
    make.revision(revised, 1, sources=[{"uri": "catalogue://old"}])
    make.revision(revised, 2, sources=[{"uri": "catalogue://current"}])
    bare = make.simulation(tenant_id, name="bare")
    make.simulation(other_tenant_id, name="elsewhere")

    pairs = database.run(
        lambda uow: uow.simulations.list_with_sources(
            tenant_id, SimulationQuery(limit=10, order_by="name")
        )
    )

    assert [(s.id, sources) for s, sources in pairs] == [
        (bare.id, []),
        (revised.id, [{"uri": "catalogue://current"}]),
    ]
    assert [s for s, _ in pairs] == _list(
        database, tenant_id, SimulationQuery(limit=10, order_by="name")
    )
    fetched = database.run(lambda uow: uow.simulations.get_with_sources(tenant_id, revised.id))
    assert fetched == pairs[1]


def test_a_taken_request_id_leaves_the_transaction_usable(database, make, tenant_id):
    first = make.simulation(tenant_id, request_id="request-1")

    with database.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            uow.simulations.add(make.simulation_record(tenant_id, request_id="request-1"))
        # The caller answers with the simulation the first request made, in this transaction.
        found = uow.simulations.get_by_request_id(tenant_id, "request-1")

    assert found == first


def test_simulations_with_sources_are_read_by_id_only_while_live(
    database, make, tenant_id, other_tenant_id
):
    scenario = make.scenario(tenant_id)
    wanted, unwanted = make.simulation(tenant_id), make.simulation(tenant_id)
    gone = make.simulation(tenant_id, scenario_id=scenario.id)
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )

    found = database.run(
        lambda uow: uow.simulations.get_many_with_sources(tenant_id, [wanted.id, gone.id])
    )

    assert found == {wanted.id: (wanted, [])}
    assert unwanted.id not in found
    for tenant, simulation_id in ((tenant_id, gone.id), (other_tenant_id, wanted.id)):
        with pytest.raises(NotFound) as missing:
            database.run(lambda uow: uow.simulations.get_with_sources(tenant, simulation_id))
        assert (missing.value.entity, missing.value.id) == ("simulation", simulation_id)
