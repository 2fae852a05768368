"""Webhook workers: threads in every server process that drain the deliveries outbox.

One delivery, step by step:

1. **Claim** (one transaction): lease the oldest due delivery whose earlier deliveries for the
   same endpoint and simulation are all settled (in order per simulation). A worker that dies
   mid-delivery leaves its lease to expire; then any worker on any replica claims it again, so
   nothing is lost (and the receiver may see it twice: at least once).
2. **Send** (no transaction open): POST the signed payload through :class:`WebhookSender`.
3. **Settle** (one transaction): DELIVERED on a 2xx; otherwise PENDING again after an
   exponential backoff with jitter, until ``retry_window`` has passed since the event; then
   FAILED, and the endpoint is marked FAILING (no more deliveries until it is re-enabled).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import storage
from service.app.conventions import utc_now
from service.webhooks.sender import WebhookSender
from service.webhooks.signing import signed_headers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed delivery is tried again: ``base * 2**(attempt-1)``, capped, jittered."""

    base_seconds: float
    max_seconds: float
    window_seconds: float

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (half to full backoff)."""
        backoff = min(self.max_seconds, self.base_seconds * 2 ** max(0, attempts - 1))
        return backoff * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def payload(delivery: storage.WebhookDelivery) -> bytes:
    """The JSON body of a delivery (Standard Webhooks shape: type, timestamp, data).

    ``data`` is the event with the field names of its REST form; as there, a field the event
    does not have (``from_status`` of a config change, ``revision`` of a rename) is left out.
    """
    event: dict[str, Any] = {
        "id": delivery.event_id,
        "simulation_id": delivery.simulation_id,
        "kind": delivery.kind,
        "actor": delivery.actor,
        "reason": delivery.reason,
        "create_time": delivery.event_time.isoformat().replace("+00:00", "Z"),
    }
    optional = {
        "from_status": delivery.from_status,
        "to_status": delivery.to_status,
        "revision": delivery.revision,
        "details": delivery.details,
    }
    event.update((name, value) for name, value in optional.items() if value is not None)
    body = {
        "type": f"simulation.{delivery.kind.lower()}",
        "timestamp": event["create_time"],
        "data": event,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


class WebhookWorkerPool:
    """``count`` threads delivering from the shared outbox until stopped."""

    def __init__(
        self,
        database: storage.Database,
        sender: WebhookSender,
        retry: RetryPolicy,
        *,
        count: int,
        lease_seconds: float,
        poll_seconds: float,
    ) -> None:
        self._database = database
        self._sender = sender
        self._retry = retry
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._stop = threading.Event()
        # Set when a delivery may have become due (PostgreSQL NOTIFY, migration 0015); the
        # poll interval is the safety net, and the only way on SQLite. One event per thread:
        # a thread clears its own after waking, and a shared one would let the first thread to
        # wake clear it before a thread busy claiming got to its wait, which would then sleep
        # through the wake (or through a stop, for a whole poll interval).
        self._wakeups = [threading.Event() for _ in range(count)]
        self._threads = [
            threading.Thread(
                target=self._loop, args=(wakeup,), name=f"webhook-worker-{n}", daemon=True
            )
            for n, wakeup in enumerate(self._wakeups)
        ]

    def start(self) -> None:
        """Start the threads."""
        for thread in self._threads:
            thread.start()

    def wake(self, _payload: str = "") -> None:
        """End the idle waits at once: a delivery was queued, retried or redelivered.

        A change-feed callback (its payload is unused), and so also ``on_sync``'s: after a
        reconnect the workers look once for what they may have missed.
        """
        for wakeup in self._wakeups:
            wakeup.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the threads to stop and wait for them; an unfinished delivery's lease expires."""
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self, wakeup: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                worked = self.deliver_one()
            except Exception:  # noqa: BLE001 - keep delivering; the lease covers the delivery
                log.exception("webhook delivery failed unexpectedly")
                worked = False
            if not worked:
                wakeup.wait(self._poll_seconds)
                # Cleared only after waking: a wake from here on precedes the next claim,
                # which then sees the delivery that caused it.
                wakeup.clear()

    def deliver_one(self) -> bool:
        """Claim, send and settle one delivery; False when none was due."""
        claimed = self._database.run(
            lambda uow: uow.webhook_deliveries.claim_next(utc_now(), self._lease_seconds)
        )
        if claimed is None:
            return False
        delivery, webhook = claimed
        body = payload(delivery)
        headers = signed_headers(webhook.secret, f"msg_{delivery.id}", int(time.time()), body)
        attempt = self._sender.post(webhook.url, headers, body)
        now = utc_now()
        if attempt.succeeded:
            state, next_time = "DELIVERED", None
        elif now - delivery.event_time >= timedelta(seconds=self._retry.window_seconds):
            state, next_time = "FAILED", None
        else:
            state = "PENDING"
            next_time = now + timedelta(seconds=self._retry.delay(delivery.attempts))

        def settle(uow: storage.UnitOfWork) -> None:
            uow.webhook_deliveries.settle(
                delivery.id,
                now,
                state=state,
                response_code=attempt.status,
                latency_ms=attempt.latency_ms,
                error=attempt.error,
                next_attempt_time=next_time,
            )
            if state == "FAILED":
                uow.webhook_deliveries.mark_webhook_failing(webhook.id, now)

        self._database.run(settle)
        if state != "DELIVERED":
            log.info("webhook delivery %s to %s: %s", delivery.id, webhook.id, attempt.error)
        return True
