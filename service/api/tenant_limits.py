"""Per-tenant admission: how many calls a tenant may have in flight, and how fast it may call.

Checked once per call, from memory, before the call is queued for a thread (see
:class:`~service.api.interceptors.TenantInterceptor`). A call over either limit is refused
with RESOURCE_EXHAUSTED, telling the client when to retry; the limits hold per server
process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from service.domain import errors

# A call refused for concurrency is told to come back after a few calls' time: sooner, and
# the refusals of a client that keeps too many calls open would cost more than its calls.
CONCURRENCY_RETRY_SECONDS = 0.25


class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``; each call takes one."""

    def __init__(self, rate: float, burst: int, now: float):
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> float:
        """0 if a token was taken; otherwise the seconds until one will be there."""
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class TenantLimits:
    """Refuses a tenant's call past ``max_calls`` in flight or past its request rate.

    ``in_flight(tenant_id)`` counts the tenant's calls queued or running (the RPC executor
    knows); ``rate`` 0 turns the rate limit off.
    """

    def __init__(
        self,
        in_flight: Callable[[str], int],
        *,
        max_calls: int,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._in_flight = in_flight
        self._max_calls = max_calls
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def admit(self, tenant_id: str) -> None:
        """Returns if the call may proceed; raises :class:`errors.ResourceExhausted` if not."""
        subject = f"tenant:{tenant_id}"
        if self._in_flight(tenant_id) >= self._max_calls:
            raise errors.ResourceExhausted(
                f"this tenant already has {self._max_calls} calls in progress; "
                "retry when one has finished",
                retry_after=CONCURRENCY_RETRY_SECONDS,
                subject=subject,
                description=f"at most {self._max_calls} concurrent calls per tenant",
                reason="TENANT_CONCURRENCY_LIMIT",
            )
        if not self._rate:
            return
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(tenant_id)
            if bucket is None:
                bucket = self._buckets[tenant_id] = TokenBucket(self._rate, self._burst, now)
            wait = bucket.take(now)
        if wait:
            raise errors.ResourceExhausted(
                f"this tenant is calling faster than {self._rate:g} requests a second; "
                f"retry in {wait:.3f} s",
                retry_after=wait,
                subject=subject,
                description=f"at most {self._rate:g} requests a second per tenant "
                f"(bursts of {self._burst})",
                reason="TENANT_RATE_LIMIT",
            )
