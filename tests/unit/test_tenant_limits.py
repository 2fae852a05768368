"""Per-tenant admission: concurrent calls and request rate, each refused with when to retry."""

from __future__ import annotations

import pytest

from service.api.tenant_limits import TenantLimits
from service.domain import errors


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_tenant_at_its_concurrent_call_limit_is_refused_and_others_are_not():
    in_flight = {"a": 3, "b": 2}
    limits = TenantLimits(lambda t: in_flight[t], max_calls=3, rate=0, burst=1)

    with pytest.raises(errors.ResourceExhausted) as refused:
        limits.admit("a")
    limits.admit("b")

    assert refused.value.reason == "TENANT_CONCURRENCY_LIMIT"
    assert refused.value.subject == "tenant:a"
    assert refused.value.retry_after > 0
    assert "3 concurrent calls" in refused.value.description


def test_the_rate_limit_allows_a_burst_then_refills_at_the_rate():
    clock = Clock()
    limits = TenantLimits(lambda t: 0, max_calls=10, rate=10, burst=3, clock=clock)
    for _ in range(3):
        limits.admit("a")

    with pytest.raises(errors.ResourceExhausted) as refused:
        limits.admit("a")
    limits.admit("b")  # another tenant has its own bucket
    clock.now += 0.11
    limits.admit("a")  # a token came back

    assert refused.value.reason == "TENANT_RATE_LIMIT"
    assert refused.value.retry_after == pytest.approx(0.1)


def test_a_rate_of_zero_means_no_rate_limit():
    limits = TenantLimits(lambda t: 0, max_calls=10, rate=0, burst=1)
    for _ in range(1000):
        limits.admit("a")
