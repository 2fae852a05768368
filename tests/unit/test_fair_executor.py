"""The RPC executor serves tenants in turn and keeps threads in reserve from any one tenant."""

from __future__ import annotations

import threading

import pytest

from service.api.fair_executor import KEY_LOOKUP_LANE, FairExecutor, in_lane


def _behavior(lane: str | None):
    def behavior():
        pass

    return in_lane(behavior, lane) if lane else behavior


class Gate:
    """Work that blocks until opened, recording the order it started in."""

    def __init__(self):
        self.opened = threading.Event()
        self.started: list[str] = []
        self.lock = threading.Lock()
        self.all_started = threading.Condition(self.lock)

    def work(self, name: str):
        def run(_behavior):
            with self.lock:
                self.started.append(name)
                self.all_started.notify_all()
            assert self.opened.wait(10)

        return run

    def wait_started(self, count: int) -> list[str]:
        with self.lock:
            assert self.all_started.wait_for(lambda: len(self.started) >= count, timeout=10)
            return list(self.started)


@pytest.fixture
def executor():
    pool = FairExecutor(2, reserved=1)
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def test_one_tenant_never_takes_the_reserved_threads(executor):
    gate = Gate()
    flood = [executor.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(5)]
    assert gate.wait_started(1) == ["a0"]
    other = executor.submit(gate.work("b0"), _behavior("b"))

    # The second thread was kept for tenant b although tenant a had four calls waiting.
    assert gate.wait_started(2) == ["a0", "b0"]
    assert executor.in_flight("a") == 5 and executor.in_flight("b") == 1
    gate.opened.set()
    for future in [*flood, other]:
        future.result(timeout=10)
    assert executor.in_flight("a") == 0


def test_queued_tenants_are_served_in_turn_not_in_arrival_order():
    pool = FairExecutor(1, reserved=0)
    try:
        gate = Gate()
        first = pool.submit(gate.work("blocker"), _behavior("z"))
        gate.wait_started(1)
        names = ["a1", "a2", "a3", "b1", "b2", "c1"]
        futures = [pool.submit(gate.work(name), _behavior(name[0])) for name in names]
        gate.opened.set()
        for future in [first, *futures]:
            future.result(timeout=10)
        assert gate.started == ["blocker", "a1", "b1", "c1", "a2", "b2", "a3"]
    finally:
        pool.shutdown()


def test_untagged_work_such_as_health_checks_jumps_the_tenant_queues():
    pool = FairExecutor(1, reserved=0)
    try:
        gate = Gate()
        first = pool.submit(gate.work("blocker"), _behavior("a"))
        gate.wait_started(1)
        queued = [pool.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(3)]
        health = pool.submit(gate.work("health"), _behavior(None))
        gate.opened.set()
        for future in [first, *queued, health]:
            future.result(timeout=10)
        assert gate.started[:2] == ["blocker", "health"]
    finally:
        pool.shutdown()


def test_untagged_work_runs_while_every_thread_is_taken_by_tenants(executor):
    gate = Gate()
    # Two tenants take both threads, the reserve included, and stay stuck.
    stuck = [executor.submit(gate.work(name), _behavior(name)) for name in ("a", "b")]
    gate.wait_started(2)

    health = executor.submit(lambda _behavior: "SERVING", _behavior(None))

    assert health.result(timeout=5) == "SERVING"
    gate.opened.set()
    for future in stuck:
        future.result(timeout=10)


def test_a_failing_call_reaches_its_future_and_frees_its_slot(executor):
    def fail(_behavior):
        raise ValueError("boom")

    future = executor.submit(fail, _behavior("a"))

    with pytest.raises(ValueError, match="boom"):
        future.result(timeout=10)
    assert executor.in_flight("a") == 0
    assert executor.submit(lambda _b: 7, _behavior("a")).result(timeout=10) == 7


def test_nothing_is_accepted_after_shutdown():
    pool = FairExecutor(1)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(print)


def test_interceptors_outside_the_tenant_interceptor_keep_the_calls_lane():
    """The access log and tracing wrap the tagged behavior; the lane must survive the wrap."""
    import grpc
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from service.api.access import AccessInterceptor
    from service.api.fair_executor import LANE_ATTRIBUTE, in_lane
    from service.telemetry.tracing import RpcSpanInterceptor, new_tracer_provider

    def behavior(request, context):
        return request

    tagged = grpc.unary_unary_rpc_method_handler(in_lane(behavior, "tenant-a"))
    details = type(
        "Details",
        (),
        {"method": "/simulation.v1.ScenarioService/GetScenario", "invocation_metadata": ()},
    )()
    # With an SDK provider, as `serve` has once tracing is on (without one it wraps nothing).
    tracing = RpcSpanInterceptor(new_tracer_provider(InMemorySpanExporter()))
    for interceptor in (AccessInterceptor(), tracing):
        wrapped = interceptor.intercept_service(lambda _details: tagged, details)
        assert wrapped.unary_unary is not behavior
        assert getattr(wrapped.unary_unary, LANE_ATTRIBUTE) == "tenant-a"


class Clock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_busiest_tenant_runs_on_its_share_while_others_are_calling():
    pool = FairExecutor(4, reserved=0, clock=Clock())
    try:
        gate = Gate()
        quiet = pool.submit(gate.work("b0"), _behavior("b"))
        gate.wait_started(1)
        # Two tenants calling: the busier one runs on half of the four threads.
        flood = [pool.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(4)]
        assert gate.wait_started(3) == ["b0", "a0", "a1"]

        # A thread is free and tenant a is first in line, yet the next call is the third
        # tenant's: a keeps its share (now a third of four threads, so no more than it has).
        other = pool.submit(gate.work("c0"), _behavior("c"))
        assert gate.wait_started(4) == ["b0", "a0", "a1", "c0"]
        assert pool.in_flight("a") == 4
        gate.opened.set()
        for future in [quiet, *flood, other]:
            future.result(timeout=10)
    finally:
        pool.shutdown()


def test_a_tenant_alone_uses_every_thread_once_the_others_stopped_calling():
    clock = Clock()
    pool = FairExecutor(3, reserved=0, clock=clock)
    try:
        pool.submit(lambda _behavior: None, _behavior("b")).result(timeout=10)
        clock.now += 2.0  # past RECENT_SECONDS since tenant b's last call
        gate = Gate()
        calls = [pool.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(3)]

        assert gate.wait_started(3) == ["a0", "a1", "a2"]
        gate.opened.set()
        for future in calls:
            future.result(timeout=10)
    finally:
        pool.shutdown()


def test_a_tenant_with_fewer_calls_in_flight_is_not_held_back_by_anothers_flood():
    pool = FairExecutor(5, reserved=0, clock=Clock())
    try:
        gate = Gate()
        # Tenant a holds two long calls (watch streams, say) before tenant b floods.
        long_calls = [pool.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(2)]
        gate.wait_started(2)
        flood = [pool.submit(gate.work(f"b{i}"), _behavior("b")) for i in range(6)]
        assert gate.wait_started(4)[2:] == ["b0", "b1"]

        # Tenant a already runs its share (two of five), but b has more in flight: a's next
        # call takes the free thread.
        third = pool.submit(gate.work("a2"), _behavior("a"))
        assert gate.wait_started(5)[4] == "a2"
        gate.opened.set()
        for future in [*long_calls, *flood, third]:
            future.result(timeout=10)
    finally:
        pool.shutdown()


def test_calls_whose_key_is_being_looked_up_do_not_make_a_tenant_share():
    pool = FairExecutor(3, reserved=0, clock=Clock())
    try:
        gate = Gate()
        lookup = pool.submit(gate.work("lookup"), _behavior(KEY_LOOKUP_LANE))
        gate.wait_started(1)
        calls = [pool.submit(gate.work(f"a{i}"), _behavior("a")) for i in range(2)]

        assert gate.wait_started(3) == ["lookup", "a0", "a1"]
        gate.opened.set()
        for future in [lookup, *calls]:
            future.result(timeout=10)
    finally:
        pool.shutdown()


def test_a_call_whose_context_names_its_lane_is_queued_in_that_lane(executor):
    """gRPC submits ``context.run`` of the call's own context, where the tenant interceptor
    put the call in its tenant's lane."""
    import contextvars

    from service.api.fair_executor import enter_lane

    def context_in(lane: str) -> contextvars.Context:
        context = contextvars.Context()
        context.run(enter_lane, lane)
        return context

    gate = Gate()
    flood = [
        executor.submit(context_in("a").run, gate.work(f"a{i}"), _behavior(None)) for i in range(3)
    ]
    assert gate.wait_started(1) == ["a0"]
    other = executor.submit(context_in("b").run, gate.work("b0"), _behavior(None))

    assert gate.wait_started(2) == ["a0", "b0"], "a's calls are held to a's share"
    assert executor.in_flight("a") == 3 and executor.in_flight("b") == 1
    gate.opened.set()
    for future in [*flood, other]:
        future.result(timeout=10)


def test_interceptors_hand_out_one_wrapped_handler_per_method():
    """Wrapping a method's handler once, not on every call: only the call's data differs."""
    import grpc
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from service.api.access import AccessInterceptor
    from service.api.interceptors import ErrorInterceptor
    from service.telemetry.tracing import RpcSpanInterceptor, new_tracer_provider

    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    other = grpc.unary_unary_rpc_method_handler(lambda request, context: request)
    details = type(
        "Details",
        (),
        {"method": "/simulation.v1.ScenarioService/GetScenario", "invocation_metadata": ()},
    )()
    tracing = RpcSpanInterceptor(new_tracer_provider(InMemorySpanExporter()))
    for interceptor in (AccessInterceptor(), ErrorInterceptor(), tracing):
        first = interceptor.intercept_service(lambda _details: handler, details)
        again = interceptor.intercept_service(lambda _details: handler, details)
        for_other = interceptor.intercept_service(lambda _details: other, details)

        assert first is again and first is not handler
        assert for_other is not first, "a different inner handler gets a wrapping of its own"
