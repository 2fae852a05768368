"""``wait: true`` is bounded: by a cap on concurrent waiters, and by server shutdown."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import storage
from service.architect.jobs import JobWaiter


def pending_simulation(database, tenant_id: str) -> storage.Simulation:
    now = datetime.now(UTC)
    return database.run(
        lambda uow: uow.simulations.add(
            storage.Simulation(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                scenario_id=None,
                name="waiting",
                prompt="p",
                labels={},
                status="PENDING",
                current_revision=0,
                architect_parameters=None,
                results=None,
                analysis=None,
                last_error=None,
                create_time=now,
                update_time=now,
            )
        )
    )


def wait_in_thread(waiter, tenant_id, simulation_id, timeout):
    box = {}

    def run():
        started = time.monotonic()
        box["simulation"] = waiter.wait(tenant_id, simulation_id, timeout)
        box["elapsed"] = time.monotonic() - started

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def test_waiters_past_the_cap_answer_at_once(database, principals):
    tenant = principals["alice"].tenant_id
    sim = pending_simulation(database, tenant)
    waiter = JobWaiter(database, max_waiters=1)
    thread, first = wait_in_thread(waiter, tenant, sim.id, timeout=3)
    time.sleep(0.3)  # the first waiter holds the only slot

    started = time.monotonic()
    second = waiter.wait(tenant, sim.id, timeout=3)
    assert time.monotonic() - started < 1.0
    assert second.status == "PENDING"

    thread.join(10)
    assert first["elapsed"] >= 2.5  # the first one did wait


def test_close_returns_every_waiter_at_once(database, principals):
    tenant = principals["alice"].tenant_id
    sim = pending_simulation(database, tenant)
    waiter = JobWaiter(database, max_waiters=4)
    threads = [wait_in_thread(waiter, tenant, sim.id, timeout=30) for _ in range(3)]
    time.sleep(0.3)

    waiter.close()

    for thread, box in threads:
        thread.join(5)
        assert not thread.is_alive()
        assert box["elapsed"] < 5 and box["simulation"].status == "PENDING"
