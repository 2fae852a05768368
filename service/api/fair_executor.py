"""The RPC thread pool, shared fairly between tenants.

gRPC hands every call to one executor, first come first served: a tenant with 32 calls
queued would make everyone else wait behind all of them. :class:`FairExecutor` keeps one
queue per tenant instead, takes the next call from each tenant in turn (round robin), and
never lets one tenant run on more than ``max_workers - reserved`` threads at once, so a
reserve of threads is always left for other tenants.

While other tenants are calling too, the tenant with the most calls in flight runs on fewer
threads still: its share of the tenant threads (at least one). Python runs one thread at a
time: every call of another tenant, and gRPC's own threads that accept and answer it, wait
for the interpreter lock behind each of the busy tenant's running calls. With three flooding
calls running at once another tenant's short call took 3-13 times as long as alone; with one,
1-3 times, while the flood kept about 60% of its throughput. A tenant alone — no other
tenant's call for :data:`RECENT_SECONDS` — has every tenant thread.

Work names its lane in the call's own context (:func:`enter_lane`): the tenant interceptor
puts each authenticated call in its tenant's lane while gRPC looks up the call's handler, in the
``contextvars.Context`` gRPC made for the call and submits the call's work with, so one
handler per method serves every tenant and nothing is rebuilt per call. Work may instead carry
its lane on its behavior function (:func:`in_lane`), as the calls whose key is looked up on
the worker thread do. Untagged work — health checks, reflection, and
refusals that only send a status — jumps every lane: it is short, and a load balancer's
probe must not wait behind a tenant's burst. It also has a thread of its own, which serves
nothing else: when every tenant thread is stuck (a frozen database holds them all, from
several tenants, the reserve included), a health check is still answered at once, and says
NOT_SERVING instead of timing out.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent import futures

LANE_ATTRIBUTE = "simconfig_lane"
# The lane of calls whose key is not in memory yet: their tenant is not known until the key is
# looked up on the worker thread. It is no tenant, so it never makes a tenant share threads.
KEY_LOOKUP_LANE = "(key lookup)"
# How long after its last call a tenant still counts as calling. A tenant calling one call
# after another has none in flight between them: without this, a busy tenant would take
# every thread back in each gap, and the next call would find them all busy.
RECENT_SECONDS = 1.0

# The lane of the call whose context this is (set by the tenant interceptor).
_call_lane: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simconfig_lane", default=None
)


def enter_lane(lane: str) -> None:
    """Puts the call whose context is current in ``lane`` (a tenant id).

    Called while gRPC looks up a call's handler: gRPC runs that look-up and then submits the
    call's work in the same per-call context, whose lane :meth:`FairExecutor.submit` reads.
    """
    _call_lane.set(lane)


def in_lane(behavior: Callable, lane: str) -> Callable:
    """Marks ``behavior`` (a handler function) as work of ``lane`` (a tenant id)."""
    setattr(behavior, LANE_ATTRIBUTE, lane)
    return behavior


_BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def carry_lane(inner, outer):
    """``outer`` (a method handler wrapping ``inner``) with ``inner``'s lane on its behavior.

    An interceptor outside the tenant interceptor (the access log, tracing) wraps the tagged
    behavior in a function of its own; without this, its calls would run untagged, outside
    every tenant's lane.
    """
    if inner is None or outer is None:
        return outer
    for name in _BEHAVIORS:
        tagged, wrapper = getattr(inner, name), getattr(outer, name)
        lane = getattr(tagged, LANE_ATTRIBUTE, None)
        if lane is not None and wrapper is not None and wrapper is not tagged:
            setattr(wrapper, LANE_ATTRIBUTE, lane)
    return outer


def _lane_of(fn, args: tuple) -> str | None:
    # gRPC submits (context.run, response_in_pool, event, state, behavior, ...): the call's
    # context names its lane, or the behavior among the positional arguments carries it.
    context = getattr(fn, "__self__", None)
    if isinstance(context, contextvars.Context):
        lane = context.get(_call_lane)
        if lane is not None:
            return lane
    for arg in args:
        lane = getattr(arg, LANE_ATTRIBUTE, None) if callable(arg) else None
        if lane is not None:
            return lane
    return None


class _WorkItem:
    __slots__ = ("future", "fn", "args", "kwargs", "lane")

    def __init__(self, future, fn, args, kwargs, lane):
        self.future = future
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.lane = lane

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed to the future, as any executor does
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)


class FairExecutor(futures.Executor):
    """A fixed pool of ``max_workers`` threads that serves tenants' queues in turn.

    ``reserved`` threads are kept from any single tenant: one tenant runs on at most
    ``max_workers - reserved`` threads (at least one), and, while ``n`` tenants have called in
    the last ``recent_seconds``, the one with the most calls in flight on at most ``1/n`` of
    those (at least one). :meth:`in_flight` tells how many calls of a tenant are queued or
    running, for admission limits. One more thread runs untagged work only (health checks,
    reflection, refusals), so it never waits for a tenant's call.
    """

    def __init__(
        self,
        max_workers: int,
        *,
        reserved: int = 1,
        recent_seconds: float = RECENT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        thread_name_prefix: str = "fair",
    ):
        self.max_workers = max_workers
        self.per_lane_cap = max(1, max_workers - reserved)
        self._recent_seconds = recent_seconds
        self._clock = clock
        lock = threading.Lock()
        self._condition = threading.Condition(lock)
        # Wakes the untagged-only thread; one lock with ``_condition``, so either may take
        # an urgent item and a notify meant for a tenant thread is never spent on it.
        self._urgent_ready = threading.Condition(lock)
        self._urgent: deque[_WorkItem] = deque()
        # Lanes with queued work, in the order they get their next turn.
        self._lanes: OrderedDict[str, deque[_WorkItem]] = OrderedDict()
        self._running: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        # When each tenant last submitted a call, oldest first.
        self._last_call: OrderedDict[str, float] = OrderedDict()
        self._shutdown = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{thread_name_prefix}_{i}", daemon=True)
            for i in range(max_workers)
        ]
        self._threads.append(
            threading.Thread(
                target=self._work_urgent, name=f"{thread_name_prefix}_untagged", daemon=True
            )
        )
        for thread in self._threads:
            thread.start()

    def in_flight(self, lane: str) -> int:
        """Calls of ``lane`` queued or running right now."""
        with self._condition:
            return self._in_flight[lane]

    def submit(self, fn, /, *args, **kwargs) -> futures.Future:
        """Queues ``fn(*args, **kwargs)`` in the lane its behavior argument carries."""
        lane = _lane_of(fn, args)
        item = _WorkItem(futures.Future(), fn, args, kwargs, lane)
        with self._condition:
            if self._shutdown:
                raise RuntimeError("cannot schedule new work after shutdown")
            if lane is None:
                self._urgent.append(item)
                self._urgent_ready.notify()
            else:
                self._lanes.setdefault(lane, deque()).append(item)
                self._in_flight[lane] += 1
                if lane != KEY_LOOKUP_LANE:
                    now = self._clock()
                    self._last_call[lane] = now
                    self._last_call.move_to_end(lane)
                    # Kept to the tenants of the last moment, however many call over time.
                    self._forget_quiet_tenants(now)
            self._condition.notify()
        return item.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Runs what is queued (unless ``cancel_futures``), then ends the threads."""
        with self._condition:
            self._shutdown = True
            if cancel_futures:
                for item in [*self._urgent, *(i for q in self._lanes.values() for i in q)]:
                    item.future.cancel()
                    if item.lane is not None:
                        self._in_flight[item.lane] -= 1
                self._urgent.clear()
                self._lanes.clear()
            self._condition.notify_all()
            self._urgent_ready.notify_all()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _next(self) -> _WorkItem | None:
        """The next item to run (condition held): urgent work, then each lane in turn."""
        if self._urgent:
            return self._urgent.popleft()
        for lane, queue in self._lanes.items():
            running = self._running[lane]
            if running >= self.per_lane_cap or (running and self._over_share(lane, running)):
                continue
            item = queue.popleft()
            if queue:
                self._lanes.move_to_end(lane)
            else:
                del self._lanes[lane]
            self._running[lane] += 1
            return item
        return None

    def _over_share(self, lane: str, running: int) -> bool:
        """Whether ``lane``, running ``running`` calls, must leave its next call queued.

        Only the lane with the most calls in flight (or one of them) gives threads up: a
        tenant holding a few long calls (watch streams, waits for the architect) is never
        held back by another tenant's flood.
        """
        others = self._calling_tenants()
        others.discard(lane)
        if not others:
            return False
        share = max(1, self.per_lane_cap // (len(others) + 1))
        if running < share:
            return False
        mine = self._in_flight[lane]
        return all(self._in_flight[other] <= mine for other in others)

    def _calling_tenants(self) -> set[str]:
        """Tenants with a call in flight or submitted in the last ``recent_seconds``."""
        self._forget_quiet_tenants(self._clock())
        calling = set(self._last_call)
        calling.update(self._in_flight)
        calling.discard(KEY_LOOKUP_LANE)
        return calling

    def _forget_quiet_tenants(self, now: float) -> None:
        horizon = now - self._recent_seconds
        while self._last_call:
            lane, last = next(iter(self._last_call.items()))
            if last >= horizon:
                break
            del self._last_call[lane]

    def _work(self) -> None:
        while True:
            with self._condition:
                while (item := self._next()) is None:
                    if self._shutdown and not self._urgent and not self._lanes:
                        self._condition.notify_all()
                        return
                    self._condition.wait()
            try:
                item.run()
            finally:
                if item.lane is not None:
                    with self._condition:
                        self._finish(item.lane)

    def _work_urgent(self) -> None:
        while True:
            with self._condition:
                while not self._urgent:
                    if self._shutdown:
                        return
                    self._urgent_ready.wait()
                item = self._urgent.popleft()
            item.run()

    def _finish(self, lane: str) -> None:
        self._running[lane] -= 1
        self._in_flight[lane] -= 1
        if not self._in_flight[lane]:
            del self._in_flight[lane]
            del self._running[lane]
        # The lane may have been at its cap: if it has work queued, an idle thread can take
        # it now. Finishing frees room in this lane only, so with nothing of it queued there is
        # no one to wake (the thread finishing looks for its next item itself).
        if lane in self._lanes:
            self._condition.notify()
