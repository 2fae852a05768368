"""The event feed's storage side: a tenant's events in order, filtered, and their wake-ups.

A reader that continues after the last id it saw never skips a later commit: on PostgreSQL an
event's id comes from its transaction's id and readers only read ids below the oldest open
transaction's (migration 0022); SQLite commits one transaction at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import replace

import pytest
from sqlalchemy import create_engine, make_url, text

from storage import EVENTS_CHANNEL, Database, SimulationEvent
from storage.repositories import events as events_repository
from tests.conftest import postgres_admin_url, throwaway_postgres_database
from tests.storage.conftest import Factory


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


def test_a_reader_never_sees_an_event_before_an_older_open_transaction_ends(
    database, make, tenant_id, monkeypatch
):
    """The race a plain sequence loses: the first inserter commits after the second commits.

    Neither insert waits for the other's transaction (migration 0022: no lock), and a reader
    that continues after the last id it saw still misses nothing: while the older
    transaction is open, the newer commit is held back, then both come, oldest first.
    """
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writes one transaction at a time")
    monkeypatch.setattr(events_repository, "SETTLE_SECONDS", 0.05)
    sim = make.simulation(tenant_id)
    record = SimulationEvent(tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now)

    def read(after_id: int = 0):
        return database.run(
            lambda uow: uow.events.list_of_tenant(tenant_id, after_id=after_id, limit=10)
        )

    with database.unit_of_work() as early:
        early.events.add(replace(record, reason="inserted first"))
        database.run(lambda uow: uow.events.add(replace(record, reason="committed first")))
        # Committed, but not yet in its final place: a reader gets nothing yet.
        assert read() == []
        assert database.run(lambda uow: uow.events.latest_id(tenant_id)) == 0
        early.commit()
    # Both final now; a read waits for any other transaction older than them to end.
    monkeypatch.setattr(events_repository, "SETTLE_SECONDS", 30.0)
    listed = read()
    assert [event.reason for event in listed] == ["inserted first", "committed first"]
    assert listed[0].id < listed[1].id
    assert read(listed[0].id) == listed[1:]
    assert database.run(lambda uow: uow.events.latest_id(tenant_id)) == listed[1].id


@pytest.mark.parametrize("reader", ["list", "latest id"])
def test_a_read_waits_for_an_older_transaction_to_show_what_committed_before_it(
    database, make, tenant_id, monkeypatch, reader
):
    """Read-your-writes: an event committed before the call is in its answer.

    The older transaction is still open when the read finds the event; the read waits for it
    (up to ``SETTLE_SECONDS``) instead of answering without the event. A watch that starts
    from now (``latest_id``) likewise starts after it, not before.
    """
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writes one transaction at a time")
    monkeypatch.setattr(events_repository, "SETTLE_SECONDS", 30.0)
    held = threading.Event()
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        held.set()
        real_sleep(seconds)

    monkeypatch.setattr(events_repository.time, "sleep", sleep)
    sim = make.simulation(tenant_id)
    record = SimulationEvent(tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now)

    def read(uow):
        if reader == "latest id":
            return uow.events.latest_id(tenant_id)
        listed = uow.events.list_of_live_simulation(tenant_id, sim.id, after_id=None, limit=10)
        return [event.reason for event in listed]

    answers: queue.Queue = queue.Queue()
    with database.unit_of_work() as early:
        early.events.add(replace(record, reason="older, still open"))
        mine = database.run(lambda uow: uow.events.add(replace(record, reason="mine, committed")))
        reader_thread = threading.Thread(target=lambda: answers.put(database.run(read)))
        reader_thread.start()
        # The reader found the committed event held back and is waiting.
        assert held.wait(10)
        early.commit()
    reader_thread.join(10)
    expected = mine if reader == "latest id" else ["older, still open", "mine, committed"]
    assert answers.get(timeout=1) == expected


def test_event_ids_of_one_transaction_follow_insert_order(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    record = SimulationEvent(tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now)

    def add_three(uow) -> None:
        for reason in ("1", "2", "3"):
            uow.events.add(replace(record, reason=reason))

    database.run(add_three)
    listed = database.run(lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=10))
    assert [event.reason for event in listed] == ["1", "2", "3"]
    assert listed[0].id < listed[1].id < listed[2].id


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


@pytest.fixture
def table_scanning_database(database, _migrated_postgres_template):
    """A fresh migrated PostgreSQL database whose planner may read tables only, not indexes.

    A plan that reads the table (as PostgreSQL picks when a query wants a large share of it)
    gives the rows in the order they are stored, which is not id order when an older
    transaction inserts last. Fresh, so the rows are stored in the order they are inserted.
    """
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite numbers events in commit order")
    with throwaway_postgres_database(template=_migrated_postgres_template) as url:
        admin = create_engine(postgres_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                connection.execute(
                    text(f'ALTER DATABASE "{make_url(url).database}" SET {setting} = off')
                )
        admin.dispose()
        scanning = Database(url)
        yield scanning
        scanning.dispose()


@pytest.mark.parametrize("reader", ["simulation", "tenant"])
def test_events_stored_out_of_id_order_are_read_in_id_order(table_scanning_database, reader):
    db = table_scanning_database
    make = Factory(db)
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    record = SimulationEvent(tenant_id, sim.id, "STATUS_CHANGED", "key-1", make.now)

    with db.unit_of_work() as early:
        # The older transaction takes its id (a write) before the other one inserts...
        early.simulations.add(make.simulation_record(tenant_id))
        db.run(lambda uow: uow.events.add(replace(record, reason="committed first")))
        # ...and stores its event after it: a smaller id in a later place of the table.
        early.events.add(replace(record, reason="stored last"))
        early.commit()

    def read(uow):
        if reader == "simulation":
            return uow.events.list(tenant_id, sim.id, after_id=None, limit=10)
        return uow.events.list_of_tenant(tenant_id, after_id=0, limit=10)

    listed = db.run(read)
    assert [event.reason for event in listed] == ["stored last", "committed first"]
    assert listed[0].id < listed[1].id
