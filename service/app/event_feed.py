"""Wake-ups for watch streams: which tenant's events may have changed, and when to look again.

The events table is the record; this only says *when* to read it. On PostgreSQL every
committed event notifies ``simconfig_events`` with its tenant id (migration 0010), and the
server's :class:`storage.NotificationListener` calls :meth:`EventFeed.notify`, so a watcher on
any replica reads within milliseconds of the commit. When the feed is not delivering (SQLite,
or the listener reconnecting) watchers poll every ``poll_seconds`` instead, and each time the
listener (re)connects every watcher looks once, for what it may have missed.

The feed also bounds how many streams run at once: each holds one of the server's RPC threads
for as long as it is open, and unbounded watchers would leave none for other calls.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from contextlib import contextmanager

from service.domain import errors


class Subscription:
    """One watcher's wake-up: set by a notification for its tenant, a reconnect, or the end.

    Use :meth:`clear` before reading the table and :meth:`wait` after: a wake-up that comes
    in between is kept, so no commit is slept through.
    """

    def __init__(self, feed: EventFeed, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self._feed = feed
        self._woken = threading.Event()
        self._cancelled = False

    def wake(self) -> None:
        """Make the current or next :meth:`wait` return at once."""
        self._woken.set()

    def clear(self) -> None:
        """Forget earlier wake-ups (call just before reading)."""
        self._woken.clear()

    def wait(self, timeout: float) -> None:
        """Sleep until woken, or ``timeout`` seconds, or the poll interval when polling."""
        self._woken.wait(min(timeout, self._feed.poll_interval))

    def cancel(self) -> None:
        """End the watch (the client went away)."""
        self._cancelled = True
        self._woken.set()

    @property
    def cancelled(self) -> bool:
        """True once the client went away."""
        return self._cancelled

    @property
    def shutting_down(self) -> bool:
        """True once the server is stopping."""
        return self._feed.closed


class EventFeed:
    """Wakes the subscriptions of a tenant when its events may have changed.

    ``max_watchers`` subscriptions at most are open at once per feed (one feed per server
    process); one more is refused with ``RESOURCE_EXHAUSTED``.
    """

    def __init__(self, *, max_watchers: int, poll_seconds: float) -> None:
        self._max_watchers = max_watchers
        self._poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._count = 0
        self._synced = False
        self._closed = False

    @property
    def poll_interval(self) -> float:
        """How long a watcher may sleep without a wake-up: unbounded while notified."""
        return float("inf") if self._synced else self._poll_seconds

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def watcher_count(self) -> int:
        """How many subscriptions are open."""
        return self._count

    def notify(self, tenant_id: str) -> None:
        """A change-feed callback: ``tenant_id`` committed an event."""
        with self._lock:
            subscriptions = list(self._subscriptions.get(tenant_id, ()))
        for subscription in subscriptions:
            subscription.wake()

    def set_synced(self, synced: bool) -> None:
        """A change-feed callback: notifications are (or stop being) delivered.

        On (re)connection every watcher reads once: notifications sent while the feed was
        down are lost.
        """
        self._synced = synced
        if synced:
            self._wake_all()

    def close(self) -> None:
        """The server is stopping: every watcher wakes and ends its stream."""
        self._closed = True
        self._wake_all()

    @contextmanager
    def subscribe(self, tenant_id: str) -> Generator[Subscription, None, None]:
        """An open subscription for ``tenant_id`` until the block ends.

        ``RESOURCE_EXHAUSTED`` when ``max_watchers`` are open; ``UNAVAILABLE`` once closed.
        """
        subscription = Subscription(self, tenant_id)
        with self._lock:
            if self._closed:
                raise shutting_down()
            if self._count >= self._max_watchers:
                raise errors.ResourceExhausted(
                    f"this server already holds {self._max_watchers} watch streams; "
                    "retry with backoff, or on another server",
                    reason="TOO_MANY_WATCHERS",
                )
            self._count += 1
            self._subscriptions.setdefault(tenant_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            with self._lock:
                self._count -= 1
                tenant = self._subscriptions[tenant_id]
                tenant.discard(subscription)
                if not tenant:
                    del self._subscriptions[tenant_id]

    def _wake_all(self) -> None:
        with self._lock:
            subscriptions = [s for tenant in self._subscriptions.values() for s in tenant]
        for subscription in subscriptions:
            subscription.wake()


def shutting_down() -> errors.ServiceUnavailable:
    """The error a stream ends with when the server stops: the client resumes elsewhere."""
    return errors.ServiceUnavailable(
        "the server is shutting down; reconnect with the last resume_token",
        reason="SERVER_SHUTTING_DOWN",
    )
