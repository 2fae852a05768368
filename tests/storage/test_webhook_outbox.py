"""The webhook outbox: a trigger queues deliveries with the event, in the same transaction.

Run on SQLite and PostgreSQL alike: one delivery per matching enabled endpoint, none when the
transaction rolls back, a copy of the event that outlives the simulation, and claims that keep
the order per endpoint and simulation and never hand one delivery to two workers.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from storage import Database, NotFound, RetryPolicy, SimulationEvent, Webhook


def _webhook(tenant_id: str, **overrides) -> Webhook:
    now = datetime.now(UTC)
    values = {
        "id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "url": "https://hooks.example.com/",
        "kinds": [],
        "simulation_id": "",
        "scenario_id": "",
        "description": "",
        "enabled": True,
        "state": "ACTIVE",
        "secret": "whsec_c2VjcmV0",
        "create_time": now,
        "update_time": now,
        "etag": uuid.uuid4().hex,
    }
    return Webhook(**(values | overrides))


def _deliveries(database, tenant_id: str, webhook_id: str):
    return database.run(
        lambda uow: uow.webhook_deliveries.list(tenant_id, webhook_id, before_id=None, limit=100)
    )


def test_an_event_queues_one_delivery_per_matching_enabled_endpoint(database, make, tenant_id):
    scenario = make.scenario(tenant_id)
    sim = make.simulation(tenant_id, scenario_id=scenario.id)
    other = make.simulation(tenant_id)
    hooks = {
        "all": _webhook(tenant_id),
        "kind": _webhook(tenant_id, kinds=["CONFIG_CHANGED"]),
        "simulation": _webhook(tenant_id, simulation_id=other.id),
        "scenario": _webhook(tenant_id, scenario_id=scenario.id),
        "disabled": _webhook(tenant_id, enabled=False),
    }
    for hook in hooks.values():
        database.run(lambda uow, hook=hook: uow.webhooks.add(hook))
    event = make.event(sim, kind="STATUS_CHANGED", from_status="PENDING", to_status="RUNNING")

    queued = {name: _deliveries(database, tenant_id, hook.id) for name, hook in hooks.items()}

    assert {name for name, rows in queued.items() if rows} == {"all", "scenario"}
    (delivery,) = queued["all"]
    assert (delivery.event_id, delivery.kind, delivery.to_status, delivery.state) == (
        event.id,
        "STATUS_CHANGED",
        "RUNNING",
        "PENDING",
    )


def test_a_rolled_back_event_queues_nothing(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    with database.unit_of_work() as uow:
        uow.events.add(SimulationEvent(tenant_id, sim.id, "CREATED", "key-1", make.now))
        uow.rollback()
    assert _deliveries(database, tenant_id, hook.id) == []


def test_a_delivery_outlives_its_simulation(database, make, tenant_id):
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    make.event(sim, kind="CREATED")
    database.run(lambda uow: uow.simulations.delete(tenant_id, sim.id))
    assert [d.simulation_id for d in _deliveries(database, tenant_id, hook.id)] == [sim.id]


def test_a_delivery_is_read_back_by_id_only_through_its_tenant_and_endpoint(
    database, make, tenant_id
):
    sim = make.simulation(tenant_id)
    hook, other_hook = _webhook(tenant_id), _webhook(tenant_id)
    database.run(lambda uow: (uow.webhooks.add(hook), uow.webhooks.add(other_hook)))
    make.event(sim, kind="CREATED")
    (queued,) = _deliveries(database, tenant_id, hook.id)

    got = database.run(lambda uow: uow.webhook_deliveries.get(tenant_id, hook.id, queued.id))

    assert got == queued
    for tenant, webhook_id in ((make.tenant(), hook.id), (tenant_id, other_hook.id)):
        with pytest.raises(NotFound) as missing:
            database.run(
                lambda uow, tenant=tenant, webhook_id=webhook_id: uow.webhook_deliveries.get(
                    tenant, webhook_id, queued.id
                )
            )
        assert (missing.value.entity, missing.value.id) == ("webhook_delivery", str(queued.id))


def test_claims_keep_the_order_per_simulation_and_never_hand_out_one_twice(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    first, second = make.simulation(tenant_id), make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    a1, b1, a2 = make.event(first), make.event(second), make.event(first)
    now = datetime.now(UTC) + timedelta(seconds=1)

    def claim():
        claimed = database.run(lambda uow: uow.webhook_deliveries.claim_next(now, 60))
        return None if claimed is None else claimed[0]

    # a1 and b1 are due; a2 waits for a1, which is leased (in flight).
    assert [claim().event_id, claim().event_id, claim()] == [a1.id, b1.id, None]
    leased = _deliveries(database, tenant_id, hook.id)
    a1_delivery = next(d for d in leased if d.event_id == a1.id)
    database.run(
        lambda uow: uow.webhook_deliveries.settle(
            a1_delivery.id, now, state="DELIVERED", response_code=204, latency_ms=3
        )
    )
    assert claim().event_id == a2.id


def test_the_purge_deletes_settled_deliveries_past_the_cutoff_and_keeps_pending_ones(
    clean_database, make
):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    for _ in range(5):
        make.event(sim)
    cutoff = datetime.now(UTC) - timedelta(days=7)
    old, recent = cutoff - timedelta(days=1), datetime.now(UTC)
    delivered, failed, pending, fresh, at_cutoff = sorted(
        _deliveries(database, tenant_id, hook.id), key=lambda d: d.id
    )
    for delivery, state, when in (
        (delivered, "DELIVERED", old),
        (failed, "FAILED", old),
        (pending, "PENDING", old),
        (fresh, "DELIVERED", recent),
        (at_cutoff, "DELIVERED", cutoff),
    ):
        database.run(
            lambda uow, d=delivery, s=state, w=when: uow.webhook_deliveries.settle(
                d.id, w, state=s, response_code=None, latency_ms=None
            )
        )

    purged = database.run(lambda uow: uow.webhook_deliveries.purge_settled_before(cutoff))

    assert purged == 2
    assert {d.id for d in _deliveries(database, tenant_id, hook.id)} == {
        pending.id,
        fresh.id,
        at_cutoff.id,
    }


def _claim(database, now: datetime, lease_seconds: float = 60):
    claimed = database.run(lambda uow: uow.webhook_deliveries.claim_next(now, lease_seconds))
    return None if claimed is None else claimed[0]


def test_a_claim_leases_the_delivery_counts_the_attempt_and_returns_its_endpoint(
    clean_database, make
):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    event = make.event(sim)
    now = make.now + timedelta(seconds=5)

    delivery, endpoint = database.run(lambda uow: uow.webhook_deliveries.claim_next(now, 30))

    assert (delivery.event_id, delivery.attempts, delivery.update_time) == (event.id, 1, now)
    assert delivery.lease_expire_time == now + timedelta(seconds=30)
    assert endpoint == hook
    assert _deliveries(database, tenant_id, hook.id) == [delivery]


def test_a_leased_delivery_is_claimed_again_only_once_its_lease_has_passed(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    make.event(sim)
    now = make.now + timedelta(seconds=5)
    lease_end = now + timedelta(seconds=30)

    assert _claim(database, now, 30).attempts == 1
    assert _claim(database, now + timedelta(seconds=10)) is None
    assert _claim(database, lease_end) is None  # the lease runs up to its end
    again = _claim(database, lease_end + timedelta(microseconds=1))
    assert again.attempts == 2


def test_a_delivery_is_due_from_its_next_attempt_time_on(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    make.event(sim)
    (queued,) = _deliveries(database, tenant_id, hook.id)
    retry_at = make.now + timedelta(minutes=5)
    database.run(
        lambda uow: uow.webhook_deliveries.settle(
            queued.id,
            make.now,
            state="PENDING",
            response_code=503,
            latency_ms=12,
            error="503 Service Unavailable",
            next_attempt_time=retry_at,
        )
    )

    assert _claim(database, retry_at - timedelta(microseconds=1)) is None
    assert _claim(database, retry_at).id == queued.id


def test_deliveries_of_a_disabled_or_failing_endpoint_are_not_claimed(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    disabled, failing, healthy = _webhook(tenant_id), _webhook(tenant_id), _webhook(tenant_id)
    for hook in (disabled, failing, healthy):
        database.run(lambda uow, hook=hook: uow.webhooks.add(hook))
    make.event(sim)
    database.run(
        lambda uow: uow.webhooks.update(
            replace(disabled, enabled=False), expected_etag=disabled.etag
        )
    )
    database.run(lambda uow: uow.webhook_deliveries.mark_webhook_failing(failing.id, make.now))
    now = make.now + timedelta(seconds=5)

    assert [_claim(database, now).webhook_id, _claim(database, now)] == [healthy.id, None]
    states = {
        hook.id: database.run(lambda uow, hook=hook: uow.webhooks.get(tenant_id, hook.id)).state
        for hook in (disabled, failing, healthy)
    }
    assert states == {disabled.id: "ACTIVE", failing.id: "FAILING", healthy.id: "ACTIVE"}
    marked = database.run(lambda uow: uow.webhooks.get(tenant_id, failing.id))
    assert marked.update_time == make.now


def test_a_pending_delivery_holds_back_only_its_own_endpoint_and_simulation(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    first, second = _webhook(tenant_id), _webhook(tenant_id)
    for hook in (first, second):
        database.run(lambda uow, hook=hook: uow.webhooks.add(hook))
    make.event(sim)
    now = make.now + timedelta(seconds=5)

    # The same event goes to both endpoints: the first one's lease does not hold back the second.
    claimed = {_claim(database, now).webhook_id, _claim(database, now).webhook_id}

    assert claimed == {first.id, second.id}


def test_settling_records_the_outcome_clears_the_lease_and_keeps_the_due_time(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    make.event(sim)
    now = make.now + timedelta(seconds=5)
    claimed = _claim(database, now)
    later = now + timedelta(seconds=1)

    database.run(
        lambda uow: uow.webhook_deliveries.settle(
            claimed.id, later, state="FAILED", response_code=500, latency_ms=42, error="x" * 2500
        )
    )

    (settled,) = _deliveries(database, tenant_id, hook.id)
    assert (settled.state, settled.response_code, settled.latency_ms) == ("FAILED", 500, 42)
    assert (settled.lease_expire_time, settled.update_time) == (None, later)
    assert settled.last_error == "x" * 2000
    assert settled.next_attempt_time == claimed.next_attempt_time

    database.run(
        lambda uow: uow.webhook_deliveries.settle(
            claimed.id, later, state="DELIVERED", response_code=204, latency_ms=7
        )
    )
    assert _deliveries(database, tenant_id, hook.id)[0].last_error == ""


def test_deliveries_are_listed_newest_first_in_pages_of_the_tenant_and_endpoint(
    database, make, tenant_id, other_tenant_id
):
    sim = make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    for _ in range(3):
        make.event(sim)
    newest, middle, oldest = _deliveries(database, tenant_id, hook.id)
    assert newest.id > middle.id > oldest.id

    def page(tenant: str, before_id, limit: int):
        return database.run(
            lambda uow: uow.webhook_deliveries.list(
                tenant, hook.id, before_id=before_id, limit=limit
            )
        )

    assert [d.id for d in page(tenant_id, None, 2)] == [newest.id, middle.id]
    assert [d.id for d in page(tenant_id, middle.id, 2)] == [oldest.id]
    assert page(other_tenant_id, None, 10) == []


def test_a_requeued_delivery_is_due_now_with_fresh_attempts(clean_database, make):
    database = clean_database
    tenant_id = make.tenant()
    sim = make.simulation(tenant_id)
    hook, other_hook = _webhook(tenant_id), _webhook(tenant_id)
    database.run(lambda uow: (uow.webhooks.add(hook), uow.webhooks.add(other_hook)))
    make.event(sim)
    now = make.now + timedelta(seconds=5)
    claimed = _claim(database, now)
    if claimed.webhook_id != hook.id:
        hook, other_hook = other_hook, hook
    # A delivery still in flight is released at once.
    in_flight = database.run(
        lambda uow: uow.webhook_deliveries.requeue(tenant_id, hook.id, claimed.id, now)
    )
    assert (in_flight.attempts, in_flight.lease_expire_time) == (0, None)
    assert _claim(database, now).id == claimed.id
    database.run(
        lambda uow: uow.webhook_deliveries.settle(
            claimed.id, now, state="FAILED", response_code=500, latency_ms=1, error="boom"
        )
    )
    later = now + timedelta(minutes=1)

    requeued = database.run(
        lambda uow: uow.webhook_deliveries.requeue(tenant_id, hook.id, claimed.id, later)
    )

    assert (requeued.id, requeued.state, requeued.attempts) == (claimed.id, "PENDING", 0)
    assert (requeued.next_attempt_time, requeued.update_time) == (later, later)
    assert requeued.lease_expire_time is None
    assert _deliveries(database, tenant_id, hook.id)[0] == requeued
    for tenant, webhook_id, delivery_id in (
        (make.tenant(), hook.id, claimed.id),
        (tenant_id, other_hook.id, claimed.id),
        (tenant_id, hook.id, claimed.id + 1000),
    ):
        with pytest.raises(NotFound) as missing:
            database.run(
                lambda uow, t=tenant, w=webhook_id, d=delivery_id: uow.webhook_deliveries.requeue(
                    t, w, d, later
                )
            )
        assert (missing.value.entity, missing.value.id) == ("webhook_delivery", str(delivery_id))


def test_a_claim_passes_over_a_delivery_another_worker_is_claiming(clean_database, make):
    database = clean_database
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only: SQLite writes one transaction at a time")
    tenant_id = make.tenant()
    first_sim, second_sim = make.simulation(tenant_id), make.simulation(tenant_id)
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    make.event(first_sim)
    make.event(second_sim)
    now = make.now + timedelta(seconds=5)
    # A claim that waited for the first worker's row lock would fail instead of waiting.
    url = database.engine.url.update_query_dict({"options": "-c lock_timeout=100"})
    impatient = Database(
        url.render_as_string(hide_password=False), retry=RetryPolicy(max_attempts=1)
    )
    try:
        with database.unit_of_work() as first:
            held, _ = first.webhook_deliveries.claim_next(now, 60)
            passed = impatient.run(lambda uow: uow.webhook_deliveries.claim_next(now, 60))
            first.commit()
    finally:
        impatient.dispose()

    assert passed is not None
    assert {held.simulation_id, passed[0].simulation_id} == {first_sim.id, second_sim.id}
