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
        box["simulation"] = waiter.wait(tenant_id, simulation_id, timeout)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def count_reads(database, monkeypatch) -> threading.Semaphore:
    """A semaphore released once per read ``database`` runs from now on.

    A waiter reads its simulation as soon as it holds a waiting slot, then again after each
    poll: acquiring the semaphore N times waits until N reads have happened.
    """
    reads = threading.Semaphore(0)
    real_read = database.read

    def read_and_count(fn):
        try:
            return real_read(fn)
        finally:
            reads.release()

    monkeypatch.setattr(database, "read", read_and_count)
    return reads


def test_waiters_past_the_cap_answer_at_once(database, principals, monkeypatch):
    tenant = principals["alice"].tenant_id
    sim = pending_simulation(database, tenant)
    waiter = JobWaiter(database, max_waiters=1, poll_interval=60)
    reads = count_reads(database, monkeypatch)
    thread, first = wait_in_thread(waiter, tenant, sim.id, timeout=60)
    assert reads.acquire(timeout=10)  # the first waiter holds the only slot

    started = time.monotonic()
    second = waiter.wait(tenant, sim.id, timeout=60)
    # One-sided and far from the 60 s a waiter that got a slot would block for.
    assert time.monotonic() - started < 30
    assert second.status == "PENDING"
    assert thread.is_alive(), "the first waiter should still be waiting"

    waiter.close()
    thread.join(10)
    assert first["simulation"].status == "PENDING"


def test_close_returns_every_waiter_at_once(database, principals, monkeypatch):
    tenant = principals["alice"].tenant_id
    sim = pending_simulation(database, tenant)
    waiter = JobWaiter(database, max_waiters=4, poll_interval=60)
    reads = count_reads(database, monkeypatch)
    threads = [wait_in_thread(waiter, tenant, sim.id, timeout=60) for _ in range(3)]
    for _ in threads:
        assert reads.acquire(timeout=10)  # each waiter has read once and is now waiting

    waiter.close()

    for thread, box in threads:
        thread.join(20)  # far less than the 60 s each would otherwise wait
        assert not thread.is_alive()
        assert box["simulation"].status == "PENDING"
