"""Contract of the batch request records and the many-row reads batch calls use, per engine."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from storage import AlreadyExists, BatchRequest, ScenarioQuery


def _record(tenant_id: str, now, **overrides) -> BatchRequest:
    values = {
        "tenant_id": tenant_id,
        "method": "BatchCreateScenarios",
        "request_id": "req-1",
        "request_fingerprint": "f" * 64,
        "resource_ids": ["b", "a", "c"],
        "create_time": now,
    }
    return BatchRequest(**(values | overrides))


def test_a_recorded_batch_request_reads_back_with_its_ids_in_order(database, make, tenant_id):
    database.run(lambda uow: uow.batch_requests.add(_record(tenant_id, make.now)))

    stored = database.run(
        lambda uow: uow.batch_requests.get(tenant_id, "BatchCreateScenarios", "req-1")
    )

    assert stored == _record(tenant_id, stored.create_time)
    assert stored.resource_ids == ["b", "a", "c"]


def test_a_request_id_is_unique_per_tenant_and_method(database, make, tenant_id, other_tenant_id):
    database.run(lambda uow: uow.batch_requests.add(_record(tenant_id, make.now)))

    with pytest.raises(AlreadyExists) as raised:
        database.run(lambda uow: uow.batch_requests.add(_record(tenant_id, make.now)))
    assert (raised.value.entity, raised.value.field, raised.value.value) == (
        "batch_request",
        "request_id",
        "req-1",
    )
    # The same id is free for another method and for another tenant.
    database.run(
        lambda uow: uow.batch_requests.add(
            _record(tenant_id, make.now, method="BatchDeleteScenarios")
        )
    )
    database.run(lambda uow: uow.batch_requests.add(_record(other_tenant_id, make.now)))


def test_another_tenants_batch_request_is_not_visible(database, make, tenant_id, other_tenant_id):
    database.run(lambda uow: uow.batch_requests.add(_record(tenant_id, make.now)))

    assert (
        database.run(
            lambda uow: uow.batch_requests.get(other_tenant_id, "BatchCreateScenarios", "req-1")
        )
        is None
    )
    other_method = "BatchDeleteScenarios"
    assert (
        database.run(lambda uow: uow.batch_requests.get(tenant_id, other_method, "req-1")) is None
    )


def test_the_unit_of_work_stays_usable_after_a_request_id_clash(database, make, tenant_id):
    database.run(lambda uow: uow.batch_requests.add(_record(tenant_id, make.now)))

    def clash_then_write(uow):
        with pytest.raises(AlreadyExists):
            uow.batch_requests.add(_record(tenant_id, make.now))
        uow.scenarios.add(make.scenario_record(tenant_id, display_name="after the clash"))

    database.run(clash_then_write)
    assert (
        database.run(lambda uow: uow.scenarios.list(tenant_id, ScenarioQuery(limit=10)))[
            0
        ].display_name
        == "after the clash"
    )


def test_many_scenarios_read_in_one_call_only_of_the_tenant(
    database, make, tenant_id, other_tenant_id
):
    mine = [make.scenario(tenant_id) for _ in range(3)]
    theirs = make.scenario(other_tenant_id)

    found = database.run(
        lambda uow: uow.scenarios.get_many(tenant_id, [s.id for s in mine] + [theirs.id])
    )

    assert set(found) == {s.id for s in mine}
    assert found[mine[1].id].display_name == mine[1].display_name


def test_many_simulations_read_with_their_current_sources_only_of_the_tenant(
    database, make, tenant_id, other_tenant_id
):
    with_config = make.simulation(tenant_id)
    make.revision(with_config, 1)
    database.run(
        lambda uow: uow.simulations.update(
            dataclasses.replace(with_config, current_revision=1), expected_etag=with_config.etag
        )
    )
    without_config = make.simulation(tenant_id)
    theirs = make.simulation(other_tenant_id)

    found = database.run(
        lambda uow: uow.simulations.get_many_with_sources(
            tenant_id, [with_config.id, without_config.id, theirs.id, with_config.id]
        )
    )

    assert set(found) == {with_config.id, without_config.id}
    assert found[with_config.id][1] == [{"uri": "catalogue://trader", "title": "Trader"}]
    assert found[without_config.id][1] == []


def test_batch_requests_older_than_the_cutoff_are_forgotten(clean_database, make):
    db = clean_database
    tenant_id = make.tenant()
    cutoff = make.now - timedelta(days=7)
    old = _record(tenant_id, cutoff - timedelta(days=1), request_id="old")
    recent = _record(tenant_id, make.now, request_id="recent")
    at_cutoff = _record(tenant_id, cutoff, request_id="at-cutoff")
    for record in (old, recent, at_cutoff):
        db.run(lambda uow, record=record: uow.batch_requests.add(record))

    assert db.run(lambda uow: uow.batch_requests.purge_older_than(cutoff)) == 1

    method = "BatchCreateScenarios"
    assert db.run(lambda uow: uow.batch_requests.get(tenant_id, method, "old")) is None
    assert db.run(lambda uow: uow.batch_requests.get(tenant_id, method, "recent")) is not None
