"""Webhook worker threads: a wake or a stop reaches every thread, whatever the others do."""

from __future__ import annotations

import threading

import storage
from service.webhooks.sender import WebhookSender
from service.webhooks.worker import RetryPolicy, WebhookWorkerPool


class _ClaimGate:
    """The real database, with a gate that can hold the next transaction a worker runs.

    A worker's step is a claim transaction; holding one keeps that worker inside a claim (and
    out of its idle wait) for as long as the test needs, which no real database state can do
    on demand.
    """

    def __init__(self, database: storage.Database) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._hold_next = False
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_thread: threading.Thread | None = None
        self.idle = threading.Condition()
        self.claims = 0
        self.callers: set[threading.Thread] = set()

    def hold_next_claim(self) -> None:
        with self._lock:
            self._hold_next = True

    def run(self, work):
        with self._lock:
            hold, self._hold_next = self._hold_next, False
            self.callers.add(threading.current_thread())
        if hold:
            self.held_thread = threading.current_thread()
            self.held.set()
            assert self.release.wait(30)
        result = self._database.run(work)
        with self.idle:
            self.claims += 1
            self.idle.notify_all()
        return result


def test_a_stop_reaches_a_worker_that_was_claiming_while_another_woke_first(database):
    gate = _ClaimGate(database)
    pool = WebhookWorkerPool(
        gate,  # type: ignore[arg-type]
        WebhookSender(timeout=1, max_response_bytes=1024, allow_private=True),
        RetryPolicy(base_seconds=1, max_seconds=1, window_seconds=1),
        count=2,
        lease_seconds=30,
        poll_seconds=60,  # far longer than the test: only a wake or a stop ends an idle wait
    )
    pool.start()
    try:
        with gate.idle:  # both threads found nothing to deliver and are going idle
            assert gate.idle.wait_for(lambda: gate.claims >= 2, timeout=10)
        gate.hold_next_claim()
        pool.wake()
        assert gate.held.wait(10)  # one thread is inside its claim ...
        with gate.idle:  # ... and the other claimed nothing and went idle again
            assert gate.idle.wait_for(lambda: gate.claims >= 3, timeout=10)
        stopping = threading.Thread(target=pool.stop, kwargs={"timeout": 30})
        stopping.start()
        others = [thread for thread in gate.callers if thread is not gate.held_thread]
        for thread in others:  # the idle thread ends on the stop (clearing its wake-up)
            thread.join(10)
            assert not thread.is_alive()
        gate.release.set()  # the busy thread's claim finds nothing: it must not go idle now
        stopping.join(10)
        assert not stopping.is_alive(), "a worker slept through the stop"
        assert gate.held_thread is not None and not gate.held_thread.is_alive()
    finally:
        gate.release.set()
        pool.stop(timeout=1)
