"""Contract tests of ConfigRevisionRepository and SimulationEventRepository."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event as sql_events

from storage import AlreadyExists, ConfigRevision, Conflict, NotFound, SimulationEvent
from tests.storage.row_locks import wait_until_a_session_waits_for_a_lock


def test_added_revision_reads_back_unchanged(database, make, tenant_id):
    sim = make.simulation(tenant_id)

    stored = make.revision(sim, 1, description="first", origin="ARCHITECT")

    assert database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1)) == stored
    assert stored.config == {"schema_version": 1, "title": "v1"}
    assert stored.sources == [{"uri": "catalogue://trader", "title": "Trader"}]


def test_the_sources_of_a_revision_are_read_alone_and_empty_without_one(
    database, make, tenant_id, other_tenant_id
):
    sim = make.simulation(tenant_id)
    make.revision(sim, 1)

    def sources(tenant, revision):
        return database.run(lambda uow: uow.revisions.sources_of(tenant, sim.id, revision))

    assert sources(tenant_id, 1) == [{"uri": "catalogue://trader", "title": "Trader"}]
    assert sources(tenant_id, 2) == []
    assert sources(other_tenant_id, 1) == []


def test_adding_a_taken_revision_number_raises_already_exists(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    make.revision(sim, 1)

    with pytest.raises(AlreadyExists) as raised:
        make.revision(sim, 1)

    error = raised.value
    assert (error.entity, error.field, error.value) == ("config_revision", "revision", "1")


def test_adding_a_revision_to_a_missing_simulation_raises_not_found(database, make, tenant_id):
    sim = make.simulation_record(tenant_id)

    with pytest.raises(NotFound) as raised:
        make.revision(sim, 1)
    assert raised.value.entity == "simulation"


def test_getting_a_missing_revision_raises_not_found(database, make, tenant_id):
    sim = make.simulation(tenant_id)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1))


def test_revisions_are_listed_newest_first_in_pages(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    for number in range(1, 6):
        make.revision(sim, number)

    def numbers(before, limit):
        revisions = database.run(
            lambda uow: uow.revisions.list(tenant_id, sim.id, before_revision=before, limit=limit)
        )
        return [r.revision for r in revisions]

    assert numbers(None, 2) == [5, 4]
    assert numbers(4, 2) == [3, 2]
    assert numbers(2, 2) == [1]
    assert numbers(None, 10) == [5, 4, 3, 2, 1]


def test_another_tenant_sees_no_revisions_or_events(database, make, tenant_id, other_tenant_id):
    sim = make.simulation(tenant_id)
    make.revision(sim, 1)
    make.event(sim)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(other_tenant_id, sim.id, 1))
    assert (
        database.run(
            lambda uow: uow.revisions.list(other_tenant_id, sim.id, before_revision=None, limit=5)
        )
        == []
    )
    assert (
        database.run(lambda uow: uow.events.list(other_tenant_id, sim.id, after_id=None, limit=5))
        == []
    )


def test_added_events_get_increasing_ids_and_read_back_oldest_first(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    first = make.event(sim, kind="CREATED", to_status="PENDING")
    second = make.event(
        sim,
        from_status="PENDING",
        to_status="GENERATING_CONFIG",
        reason="architect started",
        details={"job_id": "j1"},
    )
    third = make.event(sim, kind="CONFIG_CHANGED", revision=1)

    assert 0 < first.id < second.id < third.id
    listed = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert listed == [first, second, third]
    assert listed[0].details is None and listed[1].details == {"job_id": "j1"}


def test_events_page_after_an_id(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    events = [make.event(sim, reason=str(i)) for i in range(5)]

    page = database.run(
        lambda uow: uow.events.list(tenant_id, sim.id, after_id=events[1].id, limit=2)
    )

    assert page == events[2:4]


def test_adding_an_event_to_a_missing_simulation_raises_not_found(database, make, tenant_id):
    event = SimulationEvent(tenant_id, "missing", "CREATED", "key-1", make.now)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.events.add(event))


def test_a_rolled_back_unit_of_work_stores_nothing(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    revision = ConfigRevision(tenant_id, sim.id, 1, {}, [], make.now, "key-1", "EDIT")

    with database.unit_of_work() as uow:
        uow.revisions.add(revision)
        uow.events.add(SimulationEvent(tenant_id, sim.id, "CONFIG_CHANGED", "key-1", make.now))
        # No commit: leaving the block rolls back.

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1))
    assert (
        database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=5)) == []
    )


def test_an_added_event_comes_back_in_utc_as_it_is_stored(database, make, tenant_id, monkeypatch):
    sim = make.simulation(tenant_id)
    moment = datetime(2026, 1, 2, 8, 0, tzinfo=timezone(timedelta(hours=5)))
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # a local zone that is neither UTC nor +05:00
    time.tzset()
    try:
        added = make.event(sim, create_time=moment)
    finally:
        monkeypatch.undo()
        time.tzset()

    [stored] = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert stored.create_time == moment and stored.create_time.utcoffset() == timedelta(0)
    assert stored.id == added.id


def _revision(make, sim, number: int):
    from storage import ConfigRevision

    return ConfigRevision(
        tenant_id=sim.tenant_id,
        simulation_id=sim.id,
        revision=number,
        config={"title": f"r{number}"},
        sources=[],
        create_time=make.now,
        actor="key",
        origin="EDIT",
    )


def _changed_event(make, sim, number: int):
    from storage import SimulationEvent

    return SimulationEvent(
        tenant_id=sim.tenant_id,
        simulation_id=sim.id,
        kind="CONFIG_CHANGED",
        actor="key",
        create_time=make.now,
        revision=number,
    )


def test_a_current_revision_is_stored_with_its_update_and_events(database, make, tenant_id):
    from dataclasses import replace

    sim = make.simulation(tenant_id)
    changed = replace(sim, current_revision=1, status="COMPLETED_CONFIG")

    event = _changed_event(make, sim, 1)
    updated = database.run(
        lambda uow: uow.revisions.add_current(changed, sim.etag, _revision(make, sim, 1), [event])
    )

    stored = database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))
    assert stored == updated and stored.current_revision == 1 and stored.etag != sim.etag
    assert database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1)).config == {
        "title": "r1"
    }
    listed = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert [replace(stored, id=0) for stored in listed] == [event]
    assert listed[0].id > 0


def test_the_events_of_a_current_revision_are_stored_in_the_order_given(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    changed = _changed_event(make, sim, 1)
    moved = replace(changed, kind="STATUS_CHANGED", reason="moved", revision=1)
    database.run(
        lambda uow: uow.revisions.add_current(
            replace(sim, current_revision=1), sim.etag, _revision(make, sim, 1), [changed, moved]
        )
    )
    listed = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert [event.kind for event in listed] == ["CONFIG_CHANGED", "STATUS_CHANGED"]
    assert listed[0].id < listed[1].id


def test_a_current_revision_on_a_stale_etag_is_a_conflict_and_stores_nothing(
    database, make, tenant_id
):
    from dataclasses import replace

    from storage import Conflict

    sim = make.simulation(tenant_id)

    with pytest.raises(Conflict):
        database.run(
            lambda uow: uow.revisions.add_current(
                replace(sim, current_revision=1),
                "stale",
                _revision(make, sim, 1),
                [_changed_event(make, sim, 1)],
            )
        )

    assert database.run(lambda uow: uow.simulations.get(tenant_id, sim.id)) == sim
    assert (
        database.run(
            lambda uow: uow.revisions.list(tenant_id, sim.id, before_revision=None, limit=10)
        )
        == []
    )
    assert (
        database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10)) == []
    )


def test_a_revision_number_taken_by_another_writer_is_a_conflict(database, make, tenant_id):
    from dataclasses import replace

    from storage import Conflict

    sim = make.simulation(tenant_id)
    database.run(lambda uow: uow.revisions.add(_revision(make, sim, 1)))

    with pytest.raises(Conflict):
        database.run(
            lambda uow: uow.revisions.add_current(
                replace(sim, current_revision=1), sim.etag, _revision(make, sim, 1), []
            )
        )


def test_a_deleted_simulation_takes_its_events_but_leaves_its_deleted_event(
    database, make, tenant_id
):
    sim, other = make.simulation(tenant_id), make.simulation(tenant_id)
    make.event(sim, kind="CREATED")
    kept = make.event(other, kind="CREATED")
    deleted = SimulationEvent(tenant_id, sim.id, "DELETED", "key-1", make.now)
    with database.unit_of_work() as uow:
        uow.events.add(deleted)
        uow.simulations.delete(tenant_id, sim.id)
        uow.commit()

    (left,) = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=5))
    assert left.id > kept.id and replace(left, id=0) == deleted
    assert database.run(
        lambda uow: uow.events.list(tenant_id, other.id, after_id=None, limit=5)
    ) == [kept]
    # It cannot be added once the simulation is gone.
    with pytest.raises(NotFound):
        database.run(
            lambda uow: uow.events.add(
                SimulationEvent(tenant_id, sim.id, "DELETED", "key-1", make.now)
            )
        )


def test_locking_a_simulation_reads_its_current_revision_with_or_without_the_config(
    database, make, tenant_id
):
    sim = make.simulation(tenant_id)
    revision = replace(_revision(make, sim, 1), sources=[{"kind": "prompt", "text": "p"}])
    database.run(
        lambda uow: uow.revisions.add_current(
            replace(sim, current_revision=1), sim.etag, revision, []
        )
    )

    def locked(**options):
        with database.unit_of_work() as uow:
            return uow.revisions.lock_simulation_with_current(tenant_id, sim.id, **options)

    simulation, whole = locked()
    assert simulation.current_revision == 1 and whole == revision
    simulation, without = locked(with_config=False)
    assert simulation.current_revision == 1
    assert without == replace(revision, config={})
    with pytest.raises(NotFound):
        database.run(
            lambda uow: uow.revisions.lock_simulation_with_current(
                tenant_id, "missing", with_config=False
            )
        )


def test_a_revision_is_found_by_the_request_that_wrote_it_in_its_tenant_and_simulation(
    database, make, tenant_id, other_tenant_id
):
    sim, other = make.simulation(tenant_id), make.simulation(tenant_id)
    written = make.revision(sim, 1, request_id="request-1")
    make.revision(sim, 2, request_id="request-2")

    def find(tenant, simulation_id, request_id):
        return database.run(
            lambda uow: uow.revisions.find_by_request(tenant, simulation_id, request_id)
        )

    assert find(tenant_id, sim.id, "request-1") == written
    assert find(tenant_id, sim.id, "request-3") is None
    assert find(tenant_id, other.id, "request-1") is None
    assert find(other_tenant_id, sim.id, "request-1") is None


def test_a_live_simulation_answers_its_current_number_with_the_revision_asked_for(
    database, make, tenant_id, other_tenant_id
):
    from dataclasses import replace

    sim = make.simulation(tenant_id)
    assert database.run(lambda uow: uow.revisions.get_of_live_simulation(tenant_id, sim.id)) == (
        0,
        None,
    )
    first, second = make.revision(sim, 1), make.revision(sim, 2)
    database.run(
        lambda uow: uow.simulations.update(replace(sim, current_revision=2), expected_etag=sim.etag)
    )

    def of_live(tenant, revision=0):
        return database.run(
            lambda uow: uow.revisions.get_of_live_simulation(tenant, sim.id, revision)
        )

    assert of_live(tenant_id) == (2, second)
    assert of_live(tenant_id, 1) == (2, first)
    assert of_live(tenant_id, 3) == (2, None)
    with pytest.raises(NotFound) as missing:
        of_live(other_tenant_id)
    assert (missing.value.entity, missing.value.id) == ("simulation", sim.id)


def test_a_simulation_deleted_with_its_scenario_is_not_live(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=scenario.id)
    make.revision(sim, 1)
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get_of_live_simulation(tenant_id, sim.id, 1))


def test_only_a_simulation_deleted_for_good_has_a_deleted_event(
    database, make, tenant_id, other_tenant_id
):
    sim, other = make.simulation(tenant_id), make.simulation(tenant_id)
    make.event(sim, kind="CREATED")
    make.event(other, kind="CREATED")
    with database.unit_of_work() as uow:
        uow.events.add(SimulationEvent(tenant_id, sim.id, "DELETED", "key-1", make.now))
        uow.simulations.delete(tenant_id, sim.id)
        uow.commit()

    def has_deleted_event(tenant, simulation_id):
        return database.run(lambda uow: uow.events.has_deleted_event(tenant, simulation_id))

    assert has_deleted_event(tenant_id, sim.id) is True
    assert has_deleted_event(tenant_id, other.id) is False
    assert has_deleted_event(other_tenant_id, sim.id) is False


def _replace(
    database,
    make,
    sim,
    *,
    expected: int,
    keep_sources: bool,
    sources=(),
    request_id=None,
    now=None,
):
    revision = replace(
        _revision(make, sim, expected + 1), sources=list(sources), request_id=request_id
    )
    # As UpdateConfig sends them: both events carry details.
    changed = replace(_changed_event(make, sim, expected + 1), details={"origin": "EDIT"})
    moved = replace(changed, kind="STATUS_CHANGED", to_status="COMPLETED_CONFIG", reason="moved")
    return database.run(
        lambda uow: uow.revisions.replace_current(
            sim.tenant_id,
            sim.id,
            status="COMPLETED_CONFIG",
            etag="new-etag",
            now=now or make.now,
            expected_revision=expected,
            editable={"COMPLETED_CONFIG", "COMPLETED", "FAILED"},
            keep_sources=keep_sources,
            revision=revision,
            changed=changed,
            status_changed=moved,
        )
    )


def _with_revision_one(database, make, tenant_id, *, status: str, scenario_id=None):
    sim = make.simulation(tenant_id, scenario_id=scenario_id)
    first = replace(_revision(make, sim, 1), sources=[{"uri": "catalogue://trader"}])
    database.run(
        lambda uow: uow.revisions.add_current(
            replace(
                sim,
                current_revision=1,
                status=status,
                results={"score": 1},
                analysis={"summary": "calm"},
                last_error={"code": "ARCHITECT_FAILED"},
            ),
            sim.etag,
            first,
            [],
        )
    )
    return database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))


def test_replacing_the_current_revision_in_one_statement_moves_the_simulation_and_records_it(
    database, make, tenant_id
):
    sim = _with_revision_one(database, make, tenant_id, status="COMPLETED")
    later = make.now + timedelta(minutes=1)
    written = _replace(database, make, sim, expected=1, keep_sources=True, now=later)
    if database.dialect != "postgresql":
        # SQLite has no such statement: the caller reads and writes as before.
        assert written is None
        return
    stored, revision = written
    assert (stored.status, stored.current_revision, stored.etag, stored.update_time) == (
        "COMPLETED_CONFIG",
        2,
        "new-etag",
        later,
    )
    assert (stored.results, stored.analysis, stored.last_error) == (None, None, None)
    assert stored.name == sim.name and stored.labels == sim.labels
    assert database.run(lambda uow: uow.simulations.get(tenant_id, sim.id)) == stored
    # No sources sent: the previous revision's are kept.
    assert revision.sources == [{"uri": "catalogue://trader"}]
    assert database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 2)) == revision
    events = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert [(event.kind, event.from_status) for event in events] == [
        ("CONFIG_CHANGED", None),
        ("STATUS_CHANGED", "COMPLETED"),
    ]
    assert [(event.to_status, event.reason, event.details) for event in events] == [
        (None, "", {"origin": "EDIT"}),
        ("COMPLETED_CONFIG", "moved", {"origin": "EDIT"}),
    ]


def test_replacing_one_simulations_revision_leaves_the_tenants_others_alone(
    database, make, tenant_id
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes the usual path")
    # Both at revision 1, in the same status: only the simulation named may move.
    sim = _with_revision_one(database, make, tenant_id, status="COMPLETED")
    other = _with_revision_one(database, make, tenant_id, status="COMPLETED")

    stored, revision = _replace(database, make, sim, expected=1, keep_sources=True)

    assert (stored.id, stored.current_revision) == (sim.id, 2)
    assert revision.sources == [{"uri": "catalogue://trader"}]
    assert database.run(lambda uow: uow.simulations.get(tenant_id, other.id)) == other
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(tenant_id, other.id, 2))


def test_replacing_a_simulation_without_a_revision_keeps_no_sources_as_an_empty_list(
    database, make, tenant_id
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes the usual path")
    # An architect run that failed before its first config: nothing to keep the sources of.
    sim = make.simulation(tenant_id, status="FAILED")

    stored, revision = _replace(database, make, sim, expected=0, keep_sources=True)

    assert (stored.current_revision, revision.revision, revision.sources) == (1, 1, [])
    assert database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 1)).sources == []


def test_replacing_the_current_revision_with_sources_of_its_own_and_no_status_change(
    database, make, tenant_id
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes the usual path")
    sim = _with_revision_one(database, make, tenant_id, status="COMPLETED_CONFIG")
    _, revision = _replace(
        database, make, sim, expected=1, keep_sources=False, sources=[{"uri": "new://one"}]
    )
    assert revision.sources == [{"uri": "new://one"}]
    events = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert [event.kind for event in events] == ["CONFIG_CHANGED"]


@pytest.mark.parametrize("case", ["stale revision", "not editable", "deleted", "other tenant"])
def test_replacing_the_current_revision_writes_nothing_unless_every_condition_holds(
    database, make, tenant_id, other_tenant_id, case
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes the usual path")
    scenario = make.scenario(tenant_id)
    sim = _with_revision_one(
        database,
        make,
        tenant_id,
        status="RUNNING" if case == "not editable" else "COMPLETED",
        scenario_id=scenario.id,
    )
    if case == "deleted":
        database.run(
            lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
        )
    target = replace(sim, tenant_id=other_tenant_id) if case == "other tenant" else sim
    expected = 0 if case == "stale revision" else 1
    assert _replace(database, make, target, expected=expected, keep_sources=True) is None
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.revisions.get(tenant_id, sim.id, 2))
    if case != "deleted":
        stored = database.run(lambda uow: uow.simulations.get(tenant_id, sim.id))
        assert stored.current_revision == 1 and stored.etag == sim.etag


@pytest.mark.parametrize("taken", ["revision number", "request id"])
def test_replacing_onto_a_taken_revision_is_a_conflict_naming_the_simulation(
    database, make, tenant_id, taken
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite takes the usual path")
    sim = _with_revision_one(database, make, tenant_id, status="COMPLETED")
    request_id = None
    if taken == "revision number":
        # Another writer stored revision 2 and has not moved the simulation to it.
        make.revision(sim, 2)
    else:
        # The same request already wrote a revision (a retry racing itself).
        request_id = "request-1"
        make.revision(sim, 5, request_id=request_id)

    with pytest.raises(Conflict) as lost:
        _replace(database, make, sim, expected=1, keep_sources=True, request_id=request_id)

    assert (lost.value.entity, lost.value.id) == ("simulation", sim.id)
    assert database.run(lambda uow: uow.simulations.get(tenant_id, sim.id)) == sim
    assert (
        database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10)) == []
    )


def test_the_events_of_a_live_simulation_are_its_own_oldest_first_in_pages(
    database, make, tenant_id, other_tenant_id
):
    sim, other = make.simulation(tenant_id), make.simulation(tenant_id)
    first = make.event(sim, kind="CREATED")
    make.event(other, kind="CREATED")
    second = make.event(sim, kind="STATUS_CHANGED")
    third = make.event(sim, kind="CONFIG_CHANGED", revision=1)
    quiet = make.simulation(tenant_id)

    def of_live(simulation_id, after_id=None, limit=10, tenant=tenant_id):
        return database.run(
            lambda uow: uow.events.list_of_live_simulation(
                tenant, simulation_id, after_id=after_id, limit=limit
            )
        )

    assert of_live(sim.id) == [first, second, third]
    assert of_live(sim.id, after_id=first.id) == [second, third]
    assert of_live(sim.id, limit=2) == [first, second]
    assert of_live(sim.id, after_id=third.id) == []
    assert of_live(quiet.id) == []
    # Another tenant, or a simulation that is gone, has no events to read: it is not found.
    with database.unit_of_work() as uow:
        uow.simulations.delete(tenant_id, other.id)
        uow.commit()
    for tenant, simulation_id in ((other_tenant_id, sim.id), (tenant_id, other.id)):
        with pytest.raises(NotFound) as missing:
            of_live(simulation_id, tenant=tenant)
        assert (missing.value.entity, missing.value.id) == ("simulation", simulation_id)


def test_a_simulation_deleted_with_its_scenario_has_no_live_events(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=scenario.id)
    make.event(sim, kind="CREATED")
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )

    with pytest.raises(NotFound):
        database.run(
            lambda uow: uow.events.list_of_live_simulation(
                tenant_id, sim.id, after_id=None, limit=10
            )
        )


def test_a_write_that_loses_to_another_names_the_simulation_it_lost(database, make, tenant_id):
    from dataclasses import replace

    from storage import Conflict

    sim = make.simulation(tenant_id)
    taken = replace(_revision(make, sim, 1), request_id="request-1")
    database.run(lambda uow: uow.revisions.add(taken))
    attempts = {
        # Another writer changed the simulation since it was read.
        "stale etag": (sim, "stale", _revision(make, sim, 2)),
        # Another writer made revision 1 first.
        "number taken": (sim, sim.etag, _revision(make, sim, 1)),
        # The same request wrote a revision already (a retry racing itself).
        "request id taken": (
            sim,
            sim.etag,
            replace(_revision(make, sim, 2), request_id="request-1"),
        ),
    }

    for name, (simulation, etag, revision) in attempts.items():
        with pytest.raises(Conflict) as lost:
            database.run(
                lambda uow: uow.revisions.add_current(
                    replace(simulation, current_revision=revision.revision), etag, revision, []
                )
            )
        assert (lost.value.entity, lost.value.id) == ("simulation", sim.id), name


def test_a_current_revision_is_written_in_one_statement_on_postgresql(database, make, tenant_id):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: elsewhere the writes run one after another")
    sim = make.simulation(tenant_id)
    events = [_changed_event(make, sim, 1), replace(_changed_event(make, sim, 1), reason="moved")]
    sent: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        sent.append(statement)

    sql_events.listen(database.engine, "before_cursor_execute", remember)
    try:
        database.run(
            lambda uow: uow.revisions.add_current(
                replace(sim, current_revision=1), sim.etag, _revision(make, sim, 1), events
            )
        )
    finally:
        sql_events.remove(database.engine, "before_cursor_execute", remember)

    assert len(sent) == 1, sent
    stored = database.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=10))
    assert [replace(stored_event, id=0) for stored_event in stored] == events


def test_a_current_revision_of_a_simulation_that_is_gone_names_the_simulation(
    database, make, tenant_id
):
    never_stored = make.simulation_record(tenant_id)

    # SQLite's insert of the revision finds no simulation. PostgreSQL's one statement writes
    # nothing when the compare-and-swap misses, whatever the reason: a Conflict, and the
    # caller's retry, which locks the simulation first, finds it gone.
    expected = NotFound if database.dialect == "sqlite" else Conflict
    with pytest.raises(expected) as lost:
        database.run(
            lambda uow: uow.revisions.add_current(
                replace(never_stored, current_revision=1),
                never_stored.etag,
                _revision(make, never_stored, 1),
                [_changed_event(make, never_stored, 1)],
            )
        )
    assert (lost.value.entity, lost.value.id) == ("simulation", never_stored.id)


def test_a_live_simulation_answers_its_current_revision_by_default(database, make, tenant_id):
    from dataclasses import replace

    sim = make.simulation(tenant_id)
    make.revision(sim, 1)
    second = make.revision(sim, 2)
    database.run(
        lambda uow: uow.simulations.update(replace(sim, current_revision=2), expected_etag=sim.etag)
    )

    assert database.run(lambda uow: uow.revisions.get_of_live_simulation(tenant_id, sim.id)) == (
        2,
        second,
    )


def test_the_revisions_of_a_live_simulation_are_its_own_newest_first_in_pages(
    database, make, tenant_id, other_tenant_id
):
    sim, other = make.simulation(tenant_id), make.simulation(tenant_id)
    first = make.revision(sim, 1)
    make.revision(other, 1)
    second, third = make.revision(sim, 2), make.revision(sim, 3)
    quiet = make.simulation(tenant_id)

    def of_live(simulation_id, before=None, limit=10, tenant=tenant_id):
        return database.run(
            lambda uow: uow.revisions.list_of_live_simulation(
                tenant, simulation_id, before_revision=before, limit=limit
            )
        )

    assert of_live(sim.id) == [third, second, first]
    assert of_live(sim.id, before=3) == [second, first]
    assert of_live(sim.id, limit=2) == [third, second]
    assert of_live(sim.id, before=1) == []
    assert of_live(quiet.id) == []
    with database.unit_of_work() as uow:
        uow.simulations.delete(tenant_id, other.id)
        uow.commit()
    for tenant, simulation_id in ((other_tenant_id, sim.id), (tenant_id, other.id)):
        with pytest.raises(NotFound) as missing:
            of_live(simulation_id, tenant=tenant)
        assert (missing.value.entity, missing.value.id) == ("simulation", simulation_id)


def test_locking_reads_the_simulations_own_revision_and_refuses_one_not_live(
    database, make, tenant_id
):
    from dataclasses import replace

    scenario = make.scenario(tenant_id)
    # Another simulation's revision 1, written first, must not be taken for this one's.
    make.revision(make.simulation(tenant_id), 1)
    sim = make.simulation(tenant_id, scenario_id=scenario.id)
    own = make.revision(sim, 1)
    database.run(
        lambda uow: uow.simulations.update(replace(sim, current_revision=1), expected_etag=sim.etag)
    )

    def lock(simulation_id):
        return database.run(
            lambda uow: uow.revisions.lock_simulation_with_current(tenant_id, simulation_id)
        )

    assert lock(sim.id)[1] == own
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )
    with pytest.raises(NotFound) as missing:
        lock(sim.id)
    assert (missing.value.entity, missing.value.id) == ("simulation", sim.id)


@pytest.mark.parametrize("with_config", [True, False], ids=["with-config", "without-config"])
def test_locking_after_waiting_for_another_writer_reads_the_revision_it_made_current(
    database, make, tenant_id, with_config
):
    """The race of two UpdateConfig writes on one simulation, forced.

    The second lock waits for the first writer, which moves the simulation to a new revision
    and commits. PostgreSQL then hands the waiting statement the simulation as committed, but
    the revision it joined as of before (READ COMMITTED re-reads only the locked row): the
    repository must notice that the two disagree and read the new revision.
    """
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite lets one writer in at a time, before it reads")
    sim = make.simulation(tenant_id)
    database.run(
        lambda uow: uow.revisions.add_current(
            replace(sim, current_revision=1), sim.etag, _revision(make, sim, 1), []
        )
    )
    newer = replace(_revision(make, sim, 2), sources=[{"uri": "catalogue://broker"}])

    def lock(uow):
        return uow.revisions.lock_simulation_with_current(
            tenant_id, sim.id, with_config=with_config
        )

    answers: queue.Queue = queue.Queue()
    finished = threading.Event()

    def second_writer() -> None:
        try:
            answers.put(database.run(lock))
        finally:
            finished.set()

    with database.unit_of_work() as first:
        locked, _ = lock(first)
        moved = first.revisions.add_current(
            replace(locked, current_revision=2), locked.etag, newer, []
        )
        waiting = threading.Thread(target=second_writer)
        waiting.start()
        # Committed only once the second lock is queued behind this one.
        blocked = wait_until_a_session_waits_for_a_lock(database, finished)
        first.commit()
    waiting.join(30)

    assert blocked, "the second lock did not wait for the first writer"
    simulation, revision = answers.get(timeout=1)
    assert simulation == moved
    assert revision is not None and revision.revision == 2
    assert (revision.sources, revision.config) == (newer.sources, newer.config)
