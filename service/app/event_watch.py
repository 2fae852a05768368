"""WatchEvents: a tenant's audit trail as a stream that a client can resume without loss.

The stream reads the events table after a cursor (the last event id sent), oldest first, and
sleeps between reads until :mod:`service.app.event_feed` says the tenant committed something.
Each message carries a resume token (the cursor, bound to tenant and filter), so a client that
reconnects with the token of the last message it received gets exactly the events after it:
within a tenant, event ids follow commit order (migration 0010).

Buffering is bounded: events are read ``batch_size`` at a time, and the next batch only when
gRPC took the previous messages, which it does only as fast as the client reads.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import storage
from service.app.authentication import Principal
from service.app.event_feed import EventFeed, Subscription, shutting_down
from service.app.page_tokens import (
    IntRange,
    decode_page_token,
    encode_page_token,
    query_fingerprint,
)
from service.domain import errors
from service.domain.validation import require_id

_CURSOR = (IntRange(0, 2**63),)


@dataclass(frozen=True)
class WatchFilter:
    """Which events a stream carries: optionally one simulation, one scenario, some kinds."""

    simulation_id: str = ""
    scenario_id: str = ""
    kinds: frozenset[str] = frozenset()


@dataclass(frozen=True)
class WatchItem:
    """One message of a stream: an event, or a keepalive (``event`` None), and its token."""

    event: storage.SimulationEvent | None
    resume_token: str


class EventStream:
    """An open watch: iterate it for messages; :meth:`cancel` ends it from another thread.

    Holds one of the feed's watcher slots until :meth:`close` (or the ``with`` block) ends.
    """

    def __init__(
        self,
        watch: EventWatch,
        principal: Principal,
        query: WatchFilter,
        cursor: int,
        subscriptions: Generator[Subscription, None, None],
    ) -> None:
        self._watch = watch
        self._tenant_id = principal.tenant_id
        self._query = query
        self._fingerprint = _fingerprint_of(query)
        self.cursor = cursor
        self._subscriptions = subscriptions
        self._subscription = next(subscriptions)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Give the watcher slot back."""
        self._subscriptions.close()

    def cancel(self) -> None:
        """End the stream at its next wake-up (the client went away)."""
        self._subscription.cancel()

    def resume_token(self) -> str:
        """The token that resumes after the last message sent."""
        return encode_page_token(self._tenant_id, self._fingerprint, (self.cursor,))

    def __iter__(self) -> Iterator[WatchItem]:
        watch, subscription = self._watch, self._subscription
        last_sent = time.monotonic()
        while True:
            if subscription.cancelled:
                return
            if subscription.shutting_down:
                raise shutting_down()
            subscription.clear()
            events = watch.read_batch(self._tenant_id, self._query, self.cursor)
            for event in events:
                self.cursor = event.id
                yield WatchItem(event, self.resume_token())
            if events:
                last_sent = time.monotonic()
                if len(events) == watch.batch_size:
                    continue
            idle = time.monotonic() - last_sent
            if idle >= watch.keepalive_seconds:
                yield WatchItem(None, self.resume_token())
                last_sent = time.monotonic()
                continue
            subscription.wait(watch.keepalive_seconds - idle)


class EventWatch:
    """Opens watch streams over the events table, woken by ``feed``."""

    def __init__(
        self,
        database: storage.Database,
        feed: EventFeed,
        *,
        keepalive_seconds: float,
        batch_size: int = 100,
    ) -> None:
        self._database = database
        self._feed = feed
        self.keepalive_seconds = keepalive_seconds
        self.batch_size = batch_size

    def open(
        self,
        principal: Principal,
        query: WatchFilter,
        *,
        after_event_id: int | None = None,
        resume_token: str = "",
    ) -> EventStream:
        """A stream of ``principal``'s events matching ``query`` after the cursor.

        The cursor is the one in ``resume_token``, else ``after_event_id``, else the newest
        event (only what happens from now on). ``INVALID_ARGUMENT`` for a bad id or token,
        ``NOT_FOUND`` for a simulation or scenario the tenant does not have,
        ``RESOURCE_EXHAUSTED`` when the server holds as many streams as it allows.
        """
        if query.simulation_id:
            require_id(query.simulation_id, "simulation_id")
        if query.scenario_id:
            require_id(query.scenario_id, "scenario_id")
        cursor = None
        if resume_token:
            decoded = decode_page_token(
                resume_token,
                principal.tenant_id,
                _fingerprint_of(query),
                "resume_token",
                cursor_types=_CURSOR,
            )
            # Not None: the token is not empty.
            (cursor,) = decoded or (None,)
        elif after_event_id is not None:
            if after_event_id < 0:
                raise errors.InvalidArgument.field("after_event_id", "must not be negative")
            cursor = after_event_id
        subscriptions = self._feed.subscribe(principal.tenant_id)
        # Subscribed before the first read: a commit from here on wakes the stream.
        stream = EventStream(self, principal, query, 0, _held(subscriptions))
        try:
            stream.cursor = self._database.read(
                lambda uow: _start(
                    uow, principal.tenant_id, query, cursor, resuming=bool(resume_token)
                )
            )
        except BaseException:
            stream.close()
            raise
        return stream

    def read_batch(
        self, tenant_id: str, query: WatchFilter, cursor: int
    ) -> list[storage.SimulationEvent]:
        """The next events after ``cursor`` (one statement)."""
        return self._database.read(
            lambda uow: uow.events.list_of_tenant(
                tenant_id,
                after_id=cursor,
                limit=self.batch_size,
                simulation_id=query.simulation_id,
                scenario_id=query.scenario_id,
                kinds=query.kinds,
            )
        )


def _start(
    uow: storage.ReadUnitOfWork,
    tenant_id: str,
    query: WatchFilter,
    cursor: int | None,
    *,
    resuming: bool,
) -> int:
    # A resume token is signed for this tenant and filter: its simulation or scenario was
    # checked when the first stream opened, and may have been deleted since. The stream then
    # carries the DELETED events still to come, so resuming must not be NOT_FOUND.
    if not resuming:
        if query.simulation_id:
            _check_watchable_simulation(uow, tenant_id, query.simulation_id)
        if query.scenario_id:
            # A deleted scenario can be watched: its simulations' DELETED events come at purge.
            uow.scenarios.get(tenant_id, query.scenario_id, include_deleted=True)
    return uow.events.latest_id(tenant_id) if cursor is None else cursor


def _check_watchable_simulation(
    uow: storage.ReadUnitOfWork, tenant_id: str, simulation_id: str
) -> None:
    """NotFound unless the tenant has the simulation, or had it and has its DELETED event."""
    try:
        uow.simulations.get(tenant_id, simulation_id)
    except storage.NotFound:
        if not uow.events.has_deleted_event(tenant_id, simulation_id):
            raise


def _held(subscriptions) -> Generator[Subscription, None, None]:
    # The feed's context manager as a generator, so the stream can hold it across calls.
    with subscriptions as subscription:
        yield subscription


def _fingerprint_of(query: WatchFilter) -> str:
    return query_fingerprint(
        watch="events",
        simulation_id=query.simulation_id,
        scenario_id=query.scenario_id,
        kinds=sorted(query.kinds),
    )
