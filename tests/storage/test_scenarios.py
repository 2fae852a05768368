"""Contract tests of ScenarioRepository."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage import (
    AllOf,
    AlreadyExists,
    Comparison,
    Conflict,
    NotFound,
    ScenarioQuery,
    SimulationQuery,
    cursor_of,
)
from tests.storage.conftest import new_id
from tests.storage.row_locks import SQLITE_WRITE_LOCK, refused_row_locks


def test_added_scenario_gets_an_etag_and_reads_back_unchanged(database, make, tenant_id):
    record = make.scenario_record(
        tenant_id, description="d", labels={"team": "alpha", "tier": "1"}, request_id="req-1"
    )

    stored = database.run(lambda uow: uow.scenarios.add(record))

    assert len(stored.etag) == 32
    assert stored == replace(record, etag=stored.etag)
    assert database.run(lambda uow: uow.scenarios.get(tenant_id, record.id)) == stored


def test_simulation_count_counts_only_live_simulations(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    make.simulation(tenant_id, scenario_id=scenario.id)
    make.simulation(tenant_id, scenario_id=scenario.id)
    gone = make.simulation(tenant_id, scenario_id=scenario.id)
    database.run(lambda uow: uow.simulations.delete(tenant_id, gone.id))

    fetched = database.run(lambda uow: uow.scenarios.get(tenant_id, scenario.id))
    listed = database.run(lambda uow: uow.scenarios.list(tenant_id, ScenarioQuery(limit=10)))

    assert fetched.simulation_count == 2
    assert listed[0].simulation_count == 2


def test_adding_a_duplicate_live_display_name_raises_already_exists(database, make, tenant_id):
    make.scenario(tenant_id, display_name="Market")

    with pytest.raises(AlreadyExists) as raised:
        make.scenario(tenant_id, display_name="Market")

    error = raised.value
    assert (error.entity, error.field, error.value) == ("scenario", "display_name", "Market")


def test_the_same_display_name_is_allowed_in_two_tenants(make, tenant_id, other_tenant_id):
    first = make.scenario(tenant_id, display_name="Market")
    second = make.scenario(other_tenant_id, display_name="Market")
    assert first.id != second.id
    assert (first.tenant_id, second.tenant_id) == (tenant_id, other_tenant_id)


def test_a_deleted_scenarios_display_name_can_be_reused(database, make, tenant_id):
    old = make.scenario(tenant_id, display_name="Market")
    deleted = replace(old, delete_time=make.now, purge_time=make.now + timedelta(days=30))
    database.run(lambda uow: uow.scenarios.update(deleted, expected_etag=old.etag))

    reused = make.scenario(tenant_id, display_name="Market")

    assert reused.display_name == "Market"


def test_adding_a_duplicate_request_id_raises_already_exists(database, make, tenant_id):
    first = make.scenario(tenant_id, request_id="req-7")

    with pytest.raises(AlreadyExists) as raised:
        make.scenario(tenant_id, request_id="req-7")

    assert (raised.value.field, raised.value.value) == ("request_id", "req-7")
    found = database.run(lambda uow: uow.scenarios.get_by_request_id(tenant_id, "req-7"))
    assert found == first
    assert database.run(lambda uow: uow.scenarios.get_by_request_id(tenant_id, "other")) is None


def test_get_by_request_id_also_returns_a_soft_deleted_scenario(database, make, tenant_id):
    scenario = make.scenario(tenant_id, request_id="req-8")
    deleted = database.run(
        lambda uow: uow.scenarios.update(
            replace(scenario, delete_time=make.now), expected_etag=scenario.etag
        )
    )

    assert database.run(lambda uow: uow.scenarios.get_by_request_id(tenant_id, "req-8")) == deleted


def test_already_exists_leaves_the_unit_of_work_usable(database, make, tenant_id):
    existing = make.scenario(tenant_id, display_name="Market")

    with database.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            uow.scenarios.add(make.scenario_record(tenant_id, display_name="Market"))
        assert uow.scenarios.get(tenant_id, existing.id) == existing
        uow.scenarios.add(make.scenario_record(tenant_id, display_name="Other"))
        uow.commit()

    names = {s.display_name for s in _list(database, tenant_id, ScenarioQuery(limit=10))}
    assert names == {"Market", "Other"}


def test_another_tenants_scenario_is_not_found(database, make, tenant_id, other_tenant_id):
    scenario = make.scenario(tenant_id)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.scenarios.get(other_tenant_id, scenario.id))
    with pytest.raises(NotFound):
        moved = replace(scenario, tenant_id=other_tenant_id, display_name="stolen")
        database.run(lambda uow: uow.scenarios.update(moved, expected_etag=scenario.etag))
    assert database.run(lambda uow: uow.scenarios.get_by_request_id(other_tenant_id, "x")) is None
    assert _list(database, other_tenant_id, ScenarioQuery(limit=10)) == []


def test_a_soft_deleted_scenario_is_found_only_when_asked_for(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    deleted = database.run(
        lambda uow: uow.scenarios.update(
            replace(scenario, delete_time=make.now), expected_etag=scenario.etag
        )
    )

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.scenarios.get(tenant_id, scenario.id))
    found = database.run(
        lambda uow: uow.scenarios.get(tenant_id, scenario.id, include_deleted=True)
    )
    assert found == deleted
    assert _list(database, tenant_id, ScenarioQuery(limit=10)) == []
    assert _list(database, tenant_id, ScenarioQuery(limit=10, show_deleted=True)) == [deleted]


def test_update_writes_the_fields_and_a_new_etag(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    changed = replace(
        scenario,
        display_name="Renamed",
        description="new",
        labels={"k": "v"},
        update_time=make.now + timedelta(minutes=1),
    )

    updated = database.run(lambda uow: uow.scenarios.update(changed, expected_etag=scenario.etag))

    assert updated.etag != scenario.etag
    assert updated == replace(changed, etag=updated.etag)


def test_update_with_stale_etag_raises_conflict(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    database.run(lambda uow: uow.scenarios.update(scenario, expected_etag=scenario.etag))

    with pytest.raises(Conflict) as raised:
        database.run(lambda uow: uow.scenarios.update(scenario, expected_etag=scenario.etag))
    assert (raised.value.entity, raised.value.id) == ("scenario", scenario.id)


def test_update_of_a_missing_scenario_raises_not_found(database, make, tenant_id):
    record = make.scenario_record(tenant_id)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.scenarios.update(record, expected_etag="x"))


def test_renaming_to_a_taken_display_name_raises_already_exists(database, make, tenant_id):
    make.scenario(tenant_id, display_name="Taken")
    scenario = make.scenario(tenant_id)

    with pytest.raises(AlreadyExists) as raised:
        database.run(
            lambda uow: uow.scenarios.update(
                replace(scenario, display_name="Taken"), expected_etag=scenario.etag
            )
        )
    error = raised.value
    assert (error.entity, error.field, error.value) == ("scenario", "display_name", "Taken")


def test_concurrent_updates_with_the_same_etag_have_exactly_one_winner(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    writers = 6
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []

    def write(index: int) -> None:
        def update(uow):
            barrier.wait(timeout=10)
            changed = replace(scenario, description=f"writer {index}")
            return uow.scenarios.update(changed, expected_etag=scenario.etag)

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


def test_display_name_filters_match_exactly_or_by_case_insensitive_substring(
    database, make, tenant_id
):
    for name in ("Alpha Market", "beta market", "Gamma", "100% real", "under_score", "100x real"):
        make.scenario(tenant_id, display_name=name)

    def names(op, text):
        condition = Comparison("display_name", op, text)
        query = ScenarioQuery(limit=50, order_by="display_name", filter=condition)
        return sorted(s.display_name for s in _list(database, tenant_id, query))

    assert names("=", "Gamma") == ["Gamma"]
    assert names("contains", "MARKET") == ["Alpha Market", "beta market"]
    assert names("contains", "0% r") == ["100% real"]
    assert names("contains", "r_s") == ["under_score"]
    assert names("contains", "_") == ["under_score"]
    assert names("contains", "%") == ["100% real"]


def test_label_filters_match_a_value_or_the_presence_of_a_key(database, make, tenant_id):
    make.scenario(tenant_id, display_name="a", labels={"team": "alpha", "env": "prod"})
    make.scenario(tenant_id, display_name="b", labels={"team": "beta", "env": "prod"})
    make.scenario(tenant_id, display_name="c", labels={"team": "alpha"})
    make.scenario(tenant_id, display_name="d", labels={})

    def names(*labels):
        query = ScenarioQuery(limit=50, filter=AllOf(labels))
        return sorted(s.display_name for s in _list(database, tenant_id, query))

    def label(key, value):
        # A value None asks only that the key be present.
        if value is None:
            return Comparison("labels", "has", None, key=key)
        return Comparison("labels", "=", value, key=key)

    assert names(label("team", "alpha")) == ["a", "c"]
    assert names(label("env", None)) == ["a", "b"]
    assert names(label("team", "alpha"), label("env", "prod")) == ["a"]
    assert names(label("missing", None)) == []


@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_by_create_time_cover_every_row_once_despite_ties(
    database, make, tenant_id, descending
):
    base = datetime(2024, 3, 1, tzinfo=UTC)
    # Groups of three rows share a create_time, so the id must break the ties.
    for i in range(10):
        make.scenario(tenant_id, create_time=base + timedelta(seconds=i // 3))
    expected = sorted(
        _list(database, tenant_id, ScenarioQuery(limit=100)),
        key=lambda s: (s.create_time, s.id),
        reverse=descending,
    )

    pages = _pages(database, tenant_id, "create_time", descending, page_size=3)

    assert [len(page) for page in pages] == [3, 3, 3, 1]
    assert [s.id for page in pages for s in page] == [s.id for s in expected]


@pytest.mark.parametrize("descending", [False, True])
def test_keyset_pages_by_display_name_follow_the_name_order(database, make, tenant_id, descending):
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for name in names:
        make.scenario(tenant_id, display_name=name)

    pages = _pages(database, tenant_id, "display_name", descending, page_size=2)

    assert [s.display_name for page in pages for s in page] == sorted(names, reverse=descending)


def test_purge_expired_removes_due_scenarios_with_everything_under_them(clean_database, make):
    db = clean_database
    tenant_id = make.tenant()
    now = datetime(2024, 6, 1, tzinfo=UTC)
    due = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=due.id)
    make.revision(sim, 1)
    make.event(sim)
    make.job(sim)
    not_due = make.scenario(tenant_id)
    live = make.scenario(tenant_id)
    for scenario, purge_time in ((due, now), (not_due, now + timedelta(seconds=1))):
        deleted = replace(scenario, delete_time=now - timedelta(days=30), purge_time=purge_time)
        db.run(lambda uow, d=deleted, e=scenario.etag: uow.scenarios.update(d, expected_etag=e))

    purged = db.run(lambda uow: uow.scenarios.purge_expired(now))

    assert purged == 1
    with pytest.raises(NotFound):
        db.run(lambda uow: uow.scenarios.get(tenant_id, due.id, include_deleted=True))
    with pytest.raises(NotFound):
        db.run(lambda uow: uow.simulations.get(tenant_id, sim.id))
    assert (
        db.run(lambda uow: uow.revisions.list(tenant_id, sim.id, before_revision=None, limit=9))
        == []
    )
    # Of its trail only the DELETED event the purge wrote is left, for watchers and webhooks.
    (left,) = db.run(lambda uow: uow.events.list(tenant_id, sim.id, after_id=None, limit=9))
    assert (left.kind, left.actor, left.create_time) == ("DELETED", "purge", now)
    assert left.reason == "its scenario was purged after the retention period"
    assert left.details == {"scenario_id": due.id, "name": sim.name}
    assert db.run(lambda uow: uow.jobs.find_active(tenant_id, sim.id)) is None
    db.run(lambda uow: uow.scenarios.get(tenant_id, not_due.id, include_deleted=True))
    db.run(lambda uow: uow.scenarios.get(tenant_id, live.id))
    assert db.run(lambda uow: uow.scenarios.purge_expired(now)) == 0


def test_a_purge_writes_the_deleted_events_of_a_tenant_in_simulation_id_order(clean_database, make):
    db = clean_database
    tenant_id = make.tenant()
    now = datetime(2024, 6, 1, tzinfo=UTC)
    due = make.scenario(tenant_id)
    # Stored in descending id order: only an ORDER BY id numbers their events ascending.
    high, low = sorted((new_id() for _ in range(2)), reverse=True)
    for simulation_id in (high, low):
        make.simulation(tenant_id, id=simulation_id, scenario_id=due.id)
    deleted = replace(due, delete_time=now - timedelta(days=30), purge_time=now)
    db.run(lambda uow: uow.scenarios.update(deleted, expected_etag=due.etag))

    assert db.run(lambda uow: uow.scenarios.purge_expired(now)) == 1

    events = db.run(lambda uow: uow.events.list_of_tenant(tenant_id, after_id=0, limit=9))
    assert [(event.kind, event.simulation_id) for event in events] == [
        ("DELETED", low),
        ("DELETED", high),
    ]


def _list(database, tenant_id, query):
    return database.run(lambda uow: uow.scenarios.list(tenant_id, query))


def _pages(database, tenant_id, order_by, descending, *, page_size, at_most=50):
    """Every page of the tenant's scenarios; fails (rather than loops) past ``at_most`` pages."""
    pages, after = [], None
    while len(pages) <= at_most:
        query = ScenarioQuery(
            limit=page_size, order_by=order_by, descending=descending, after=after
        )
        page = _list(database, tenant_id, query)
        if not page:
            return pages
        pages.append(page)
        after = cursor_of(page[-1], order_by)
    raise AssertionError(f"paging never ended: a cursor repeats its own row ({pages[-1]})")


@pytest.mark.parametrize(
    ("lock", "refused"),
    [
        (None, set()),
        # FOR KEY SHARE: blocks a delete, not the count updates of other adding writers.
        ("share", {"UPDATE"}),
        ("edit", {"SHARE", "NO KEY UPDATE", "UPDATE"}),
        ("update", {"KEY SHARE", "SHARE", "NO KEY UPDATE", "UPDATE"}),
    ],
)
def test_get_holds_the_row_lock_it_is_asked_for_until_the_transaction_ends(
    database, make, tenant_id, lock, refused
):
    scenario = make.scenario(tenant_id)

    with database.unit_of_work() as uow:
        found = uow.scenarios.get(tenant_id, scenario.id, lock=lock)
        held = refused_row_locks(database, "scenarios", scenario.id)
    after = refused_row_locks(database, "scenarios", scenario.id)

    assert found.id == scenario.id and found.simulation_count == 0
    if database.dialect == "sqlite":
        # One writer at a time: the transaction holds the database's write lock whatever it read.
        assert held == {SQLITE_WRITE_LOCK}
    else:
        assert held == refused
    assert after == set()


def test_get_refuses_an_unknown_lock(database, make, tenant_id):
    scenario = make.scenario(tenant_id)

    with pytest.raises(ValueError, match="exclusive"):
        database.run(lambda uow: uow.scenarios.get(tenant_id, scenario.id, lock="exclusive"))


def test_a_cursor_time_in_another_zone_pages_like_the_same_instant_in_utc(
    database, make, tenant_id
):
    base = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [make.scenario(tenant_id, create_time=base + timedelta(hours=i)) for i in range(4)]
    second = rows[1]
    elsewhere = second.create_time.astimezone(timezone(timedelta(hours=5)))

    after = database.run(
        lambda uow: uow.scenarios.list(
            tenant_id,
            ScenarioQuery(limit=10, order_by="create_time", after=(elsewhere, second.id)),
        )
    )

    assert [s.id for s in after] == [s.id for s in rows[2:]]


def test_adding_a_scenario_with_a_taken_id_already_exists_naming_it(database, make, tenant_id):
    first = make.scenario(tenant_id)

    with pytest.raises(AlreadyExists) as raised:
        make.scenario(tenant_id, id=first.id)

    assert (raised.value.entity, raised.value.field, raised.value.value) == (
        "scenario",
        "id",
        first.id,
    )


def test_add_returns_the_row_as_stored_even_when_it_is_deleted(database, make, tenant_id):
    # Rows are added deleted when they are imported with their history.
    record = make.scenario_record(tenant_id, delete_time=make.now)

    stored = database.run(lambda uow: uow.scenarios.add(record))

    assert stored.id == record.id and stored.delete_time == make.now


def test_a_missing_scenario_is_not_found_naming_it(database, tenant_id):
    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.scenarios.get(tenant_id, "no-such-scenario"))

    assert (raised.value.entity, raised.value.id) == ("scenario", "no-such-scenario")


def test_simulation_count_counts_the_scenarios_live_simulations_of_its_tenant_only(
    database, make, tenant_id, other_tenant_id
):
    scenario = make.scenario(tenant_id)
    gone = make.simulation(tenant_id, scenario_id=scenario.id)
    database.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant_id, scenario.id, make.now)
    )
    assert _simulation_ids(database, tenant_id) == set()  # the first member is deleted
    make.simulation(tenant_id, scenario_id=scenario.id)  # the one live member
    make.simulation(tenant_id)  # unfiled
    make.simulation(tenant_id, scenario_id=make.scenario(tenant_id).id)  # another scenario
    foreign = make.simulation_record(other_tenant_id, scenario_id=scenario.id)
    if database.dialect == "postgresql":
        # Its foreign key names the tenant (migration 0018): the row cannot even be stored.
        with pytest.raises(NotFound):
            database.run(lambda uow: uow.simulations.add(foreign))
    else:
        database.run(lambda uow: uow.simulations.add(foreign))  # another tenant's row

    counted = database.run(lambda uow: uow.scenarios.get(tenant_id, scenario.id))

    assert gone.id not in _simulation_ids(database, tenant_id)
    assert counted.simulation_count == 1


def _simulation_ids(database, tenant_id) -> set[str]:
    return {
        s.id
        for s in database.run(
            lambda uow: uow.simulations.list(tenant_id, SimulationQuery(limit=100))
        )
    }


def test_scenarios_read_by_id_are_only_those_asked_for(database, make, tenant_id):
    wanted = [make.scenario(tenant_id) for _ in range(2)]
    make.scenario(tenant_id)

    found = database.run(lambda uow: uow.scenarios.get_many(tenant_id, [s.id for s in wanted]))

    assert found == {s.id: s for s in wanted}


def test_an_update_to_a_taken_name_leaves_the_transaction_usable(database, make, tenant_id):
    taken = make.scenario(tenant_id)
    renamed = make.scenario(tenant_id)

    with database.unit_of_work() as uow:
        with pytest.raises(AlreadyExists):
            uow.scenarios.update(
                replace(renamed, display_name=taken.display_name), expected_etag=renamed.etag
            )
        # The caller can go on reading in the same transaction (PostgreSQL would refuse every
        # statement of a transaction whose failed write took no savepoint).
        still = uow.scenarios.get(tenant_id, renamed.id)

    assert still == renamed
