"""The event feed's storage side: a tenant's events in order, filtered, and their wake-ups.

Within a tenant, event ids follow commit order (PostgreSQL: events are numbered at commit
under a per-tenant lock, migrations 0010 and 0019), so a reader that continues after the last
id it saw never skips a later commit.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import replace

import pytest

from storage import EVENTS_CHANNEL, SimulationEvent


def test_a_tenants_events_are_read_oldest_first_after_a_cursor(
    database, make, tenant_id, other_tenant_id
):
    first, second = make.simulation(tenant_id), make.simulation(tenant_id)
    events = [make.event(first), make.event(second), make.event(first)]
    make.event(make.simulation(other_tenant_id))

    def read(after_id: int, limit: int = 10, **filters):
        return database.run(
            lambda uow: uow.events.list_of_tenant(
                tenant_id, after_id=after_id, limit=limit, **filters
            )
        )

    assert read(0) == events
    assert read(events[0].id) == events[1:]
    assert read(0, limit=2) == events[:2]
    assert read(events[-1].id) == []
    assert database.run(lambda uow: uow.events.latest_id(tenant_id)) == events[-1].id


def test_a_tenant_without_events_has_latest_id_zero(database, tenant_id):
    assert database.run(lambda uow: uow.events.latest_id(tenant_id)) == 0


def test_events_filter_by_simulation_scenario_and_kind(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    inside = make.simulation(tenant_id, scenario_id=scenario.id)
    outside = make.simulation(tenant_id)
    created = make.event(inside, kind="CREATED")
    changed = make.event(outside, kind="CONFIG_CHANGED", revision=1)
    moved = make.event(inside, kind="STATUS_CHANGED")

    def read(**filters):
        return database.run(
            lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=10, **filters)
        )

    assert read(simulation_id=outside.id) == [changed]
    assert read(scenario_id=scenario.id) == [created, moved]
    assert read(kinds={"CREATED", "CONFIG_CHANGED"}) == [created, changed]
    assert read(scenario_id=scenario.id, kinds={"CONFIG_CHANGED"}) == []


def test_an_event_committed_later_gets_a_later_id_even_when_it_was_inserted_first(
    database, make, tenant_id
):
    """The race a plain sequence loses: the first inserter commits after the second commits.

    Neither insert waits for the other's transaction (migration 0019 numbers events at
    commit), and the ids still follow commit order.
    """
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writes one transaction at a time")
    sim = make.simulation(tenant_id)
    first_record = SimulationEvent(
        tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now, reason="1"
    )
    second_record = replace(first_record, reason="2")
    second_committed = threading.Event()
    with database.unit_of_work() as first:
        first.events.add(first_record)

        def add_second() -> None:
            database.run(lambda uow: uow.events.add(second_record))
            second_committed.set()

        thread = threading.Thread(target=add_second)
        thread.start()
        # The second writer commits while the first transaction is still open.
        assert second_committed.wait(10)
        first.commit()
    thread.join(10)
    listed = database.run(lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=10))
    assert [event.reason for event in listed] == ["2", "1"]
    assert listed[0].id < listed[1].id


def test_a_reader_between_two_commits_never_skips_the_later_one(database, make, tenant_id):
    """A reader that saw the first commit and continues after its id gets the second."""
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writes one transaction at a time")
    sim = make.simulation(tenant_id)
    record = SimulationEvent(tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now)
    with database.unit_of_work() as early:
        early.events.add(replace(record, reason="inserted first"))
        database.run(lambda uow: uow.events.add(replace(record, reason="committed first")))
        (seen,) = database.run(
            lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=10)
        )
        early.commit()
    later = database.run(
        lambda uow: uow.events.list_of_tenant(tenant_id, after_id=seen.id, limit=10)
    )
    assert seen.reason == "committed first"
    assert [event.reason for event in later] == ["inserted first"]


def test_a_committed_event_notifies_its_tenant_and_a_rolled_back_one_does_not(
    database, make, tenant_id
):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no notifications")
    sim = make.simulation(tenant_id)
    payloads: queue.Queue[str] = queue.Queue()
    listener = database.listener({EVENTS_CHANNEL: payloads.put})
    assert listener.start(wait=10)
    try:
        with database.unit_of_work() as uow:
            uow.events.add(SimulationEvent(tenant_id, sim.id, "CREATED", "key-1", make.now))
            uow.rollback()
        make.event(sim)
        assert payloads.get(timeout=5) == tenant_id
        with pytest.raises(queue.Empty):
            payloads.get(timeout=0.3)
    finally:
        listener.stop()


def test_a_scenario_keeps_the_deleted_events_of_its_simulations_and_no_others(
    database, make, tenant_id
):
    scenario, elsewhere = make.scenario(tenant_id), make.scenario(tenant_id)
    live = make.simulation(tenant_id, scenario_id=scenario.id)
    created = make.event(live, kind="CREATED")
    # Deleting a simulation takes its events and leaves its DELETED event, naming its scenario.
    gone = make.simulation(tenant_id, scenario_id=scenario.id)
    gone_elsewhere = make.simulation(tenant_id, scenario_id=elsewhere.id)
    for sim, was_in in ((gone, scenario), (gone_elsewhere, elsewhere)):
        with database.unit_of_work() as uow:
            uow.events.add(
                SimulationEvent(
                    tenant_id,
                    sim.id,
                    "DELETED",
                    "key-1",
                    make.now,
                    details={"scenario_id": was_in.id},
                )
            )
            uow.simulations.delete(tenant_id, sim.id)
            uow.commit()
    # An event of another kind naming the scenario in its details is not one of its events.
    make.event(
        make.simulation(tenant_id), kind="STATUS_CHANGED", details={"scenario_id": scenario.id}
    )

    events = database.run(
        lambda uow: uow.events.list_of_tenant(
            tenant_id, after_id=0, limit=10, scenario_id=scenario.id
        )
    )

    assert [(event.simulation_id, event.kind) for event in events] == [
        (live.id, "CREATED"),
        (gone.id, "DELETED"),
    ]
    assert events[0] == created
