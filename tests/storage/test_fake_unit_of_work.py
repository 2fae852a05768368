"""The in-memory fakes of tests/fakes.py behave as the real repositories do.

Each test runs on SQLite, on PostgreSQL and on :class:`tests.fakes.FakeDatabase`, with the
same assertions: a use-case test that passes on the fake would pass on a real database for
everything the fake covers.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from storage import (
    AlreadyExists,
    Comparison,
    Conflict,
    Database,
    NotFound,
    ScenarioQuery,
    Tenant,
    cursor_of,
)
from tests.fakes import FakeDatabase
from tests.storage.conftest import Factory, new_id, utc_now


@pytest.fixture(scope="module", params=["fake", "sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> FakeDatabase | Database:
    """The fake, and the contract suite's migrated database on each engine."""
    if request.param == "fake":
        return FakeDatabase()
    return request.getfixturevalue(f"{request.param}_database")


@pytest.fixture
def make(backend) -> Factory:
    """Record builders (only the ``*_record`` methods, which store nothing)."""
    return Factory(backend)


@pytest.fixture
def tenant(backend) -> str:
    """A fresh tenant id (a stored tenant on a real database, which checks the reference)."""
    tenant_id = new_id()
    if isinstance(backend, Database):
        record = Tenant(id=tenant_id, name=f"tenant-{uuid.uuid4().hex}", create_time=utc_now())
        backend.run(lambda uow: uow.tenants.add(record))
    return tenant_id


def test_a_scenario_reads_back_as_added_with_a_fresh_etag(backend, make, tenant):
    record = make.scenario_record(tenant, labels={"team": "a"}, request_id="r-1")

    stored = backend.run(lambda uow: uow.scenarios.add(record))

    assert len(stored.etag) == 32
    assert stored == replace(record, etag=stored.etag)
    assert backend.run(lambda uow: uow.scenarios.get(tenant, record.id)) == stored
    assert backend.run(lambda uow: uow.scenarios.get_by_request_id(tenant, "r-1")) == stored
    with pytest.raises(NotFound):
        backend.run(lambda uow: uow.scenarios.get(new_id(), record.id))


def test_a_live_display_name_is_taken_until_its_scenario_is_deleted(backend, make, tenant):
    first = backend.run(
        lambda uow: uow.scenarios.add(make.scenario_record(tenant, display_name="M"))
    )
    clash = make.scenario_record(tenant, display_name="M")

    with pytest.raises(AlreadyExists) as raised:
        backend.run(lambda uow: uow.scenarios.add(clash))
    assert (raised.value.field, raised.value.value) == ("display_name", "M")

    now = utc_now()
    deleted = replace(first, delete_time=now, purge_time=now + timedelta(days=1))
    backend.run(lambda uow: uow.scenarios.update(deleted, expected_etag=first.etag))
    second = backend.run(lambda uow: uow.scenarios.add(clash))
    assert second.id == clash.id
    with pytest.raises(NotFound):
        backend.run(lambda uow: uow.scenarios.get(tenant, first.id))
    gone = backend.run(lambda uow: uow.scenarios.get(tenant, first.id, include_deleted=True))
    restored = replace(gone, delete_time=None, purge_time=None)
    with pytest.raises(AlreadyExists):
        backend.run(lambda uow: uow.scenarios.update(restored, expected_etag=gone.etag))


def test_an_update_swaps_the_etag_and_keeps_the_fields_written_once(backend, make, tenant):
    stored = backend.run(lambda uow: uow.scenarios.add(make.scenario_record(tenant)))
    edited = replace(stored, description="new", request_id="changed", create_time=utc_now())

    updated = backend.run(lambda uow: uow.scenarios.update(edited, expected_etag=stored.etag))

    assert updated.etag not in ("", stored.etag)
    assert updated.description == "new"
    assert (updated.request_id, updated.create_time) == (stored.request_id, stored.create_time)
    assert backend.run(lambda uow: uow.scenarios.get(tenant, stored.id)) == updated
    with pytest.raises(Conflict):
        backend.run(lambda uow: uow.scenarios.update(edited, expected_etag=stored.etag))
    with pytest.raises(NotFound):
        missing = replace(edited, id=new_id())
        backend.run(lambda uow: uow.scenarios.update(missing, expected_etag=stored.etag))
    assert backend.run(lambda uow: uow.scenarios.get(tenant, stored.id)) == updated


def test_changes_are_seen_in_their_unit_and_discarded_without_a_commit(backend, make, tenant):
    record = make.scenario_record(tenant)

    with backend.unit_of_work() as uow:
        uow.scenarios.add(record)
        assert uow.scenarios.get(tenant, record.id).id == record.id

    with pytest.raises(NotFound):
        backend.run(lambda uow: uow.scenarios.get(tenant, record.id))


def test_scenario_wide_simulation_operations_count_only_live_ones(backend, make, tenant):
    scenario = backend.run(lambda uow: uow.scenarios.add(make.scenario_record(tenant)))
    sims = [
        backend.run(
            lambda uow: uow.simulations.add(make.simulation_record(tenant, scenario_id=scenario.id))
        )
        for _ in range(3)
    ]
    get = lambda uow: uow.scenarios.get(tenant, scenario.id, include_deleted=True)  # noqa: E731
    assert backend.run(get).simulation_count == 3
    locked = backend.run(lambda uow: uow.simulations.lock_in_scenario(tenant, scenario.id))
    assert [s.id for s in locked] == sorted(s.id for s in sims)

    when = utc_now()
    deleted = backend.run(
        lambda uow: uow.simulations.soft_delete_in_scenario(tenant, scenario.id, when)
    )

    assert deleted == 3
    assert backend.run(get).simulation_count == 0
    assert backend.run(lambda uow: uow.simulations.count_in_scenario(tenant, scenario.id)) == 0
    with pytest.raises(NotFound):
        backend.run(lambda uow: uow.simulations.get(tenant, sims[0].id))
    other_time = when + timedelta(seconds=1)
    assert (
        backend.run(
            lambda uow: uow.simulations.restore_in_scenario(tenant, scenario.id, other_time)
        )
        == 0
    )
    assert (
        backend.run(lambda uow: uow.simulations.restore_in_scenario(tenant, scenario.id, when)) == 3
    )
    assert backend.run(get).simulation_count == 3


def test_a_simulation_in_a_missing_scenario_is_refused(backend, make, tenant):
    with pytest.raises(NotFound) as raised:
        backend.run(
            lambda uow: uow.simulations.add(make.simulation_record(tenant, scenario_id=new_id()))
        )
    assert raised.value.entity == "scenario"


def test_lists_filter_and_page_through_every_match_once(backend, make, tenant):
    names = ["delta", "alpha", "Charlie", "bravo", "echo"]
    for name in names:
        labels = {"team": "x"} if name != "echo" else {}
        record = make.scenario_record(tenant, display_name=name, labels=labels)
        backend.run(lambda uow, record=record: uow.scenarios.add(record))

    def page(**query):
        return backend.run(lambda uow: uow.scenarios.list(tenant, ScenarioQuery(**query)))

    def matching(condition):
        return page(limit=10, filter=condition)

    assert {s.display_name for s in matching(Comparison("display_name", "contains", "HA"))} == {
        "alpha",
        "Charlie",
    }
    assert [s.display_name for s in matching(Comparison("display_name", "=", "bravo"))] == ["bravo"]
    assert len(matching(Comparison("labels", "has", None, key="team"))) == 4
    assert len(matching(Comparison("labels", "=", "y", key="team"))) == 0
    for descending in (False, True):
        seen, after = [], None
        while True:
            rows = page(limit=2, order_by="display_name", descending=descending, after=after)
            if not rows:
                break
            seen += [s.display_name for s in rows]
            after = cursor_of(rows[-1], "display_name")
        lowercase = sorted(n for n in names if n.islower())
        assert [n for n in seen if n.islower()] == (lowercase[::-1] if descending else lowercase)
        assert sorted(seen) == sorted(names)


def test_purging_removes_expired_scenarios_with_their_simulations(backend, make, tenant):
    now = utc_now()
    expired = backend.run(lambda uow: uow.scenarios.add(make.scenario_record(tenant)))
    kept = backend.run(lambda uow: uow.scenarios.add(make.scenario_record(tenant)))
    backend.run(
        lambda uow: uow.simulations.add(make.simulation_record(tenant, scenario_id=expired.id))
    )
    in_expired = lambda uow: uow.simulations.count_in_scenario(tenant, expired.id)  # noqa: E731
    assert backend.run(in_expired) == 1
    for scenario, purge_time in (
        (expired, now - timedelta(seconds=1)),
        (kept, now + timedelta(days=1)),
    ):
        gone = replace(scenario, delete_time=now - timedelta(days=1), purge_time=purge_time)
        backend.run(
            lambda uow, gone=gone, s=scenario: uow.scenarios.update(gone, expected_etag=s.etag)
        )

    assert backend.run(lambda uow: uow.scenarios.purge_expired(now)) >= 1

    with pytest.raises(NotFound):
        backend.run(lambda uow: uow.scenarios.get(tenant, expired.id, include_deleted=True))
    assert backend.run(lambda uow: uow.scenarios.get(tenant, kept.id, include_deleted=True))
    assert backend.run(in_expired) == 0


def test_a_periodic_run_is_claimed_once_per_interval(backend):
    name = f"task-{uuid.uuid4().hex}"
    now = utc_now()
    interval = timedelta(minutes=5)

    def claim(at):
        return backend.run(lambda uow: uow.periodic_runs.claim(name, at, interval))

    assert claim(now) is True
    assert claim(now + timedelta(minutes=1)) is False
    assert claim(now + interval) is True
