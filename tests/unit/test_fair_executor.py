"""The RPC executor serves tenants in turn and keeps threads in reserve from any one tenant."""

from __future__ import annotations

import threading

import pytest

from service.api.fair_executor import FairExecutor, in_lane


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
