"""This process's memory of rows read by id, kept exact by the database's change notifications.

A warm ``GetScenario`` is answered from memory: no connection, no round trip. That is only
correct while every change reaches the memory before a reader could see it, so a
:class:`ReadCache` is trusted only under three rules:

* **Changes made elsewhere** (another server process, the CLI, plain SQL) arrive through
  PostgreSQL ``NOTIFY``, sent by a trigger when the change commits; the entry is dropped the
  moment the notification is heard (:meth:`ReadCache.evict`).
* **Changes a call makes here** drop everything as their transaction commits, before the
  call answers (:meth:`ReadCache.clear`, hooked to the commits of calls), so a caller always
  reads its own writes. This process's background work is heard through the feed, like
  another replica's: no caller waits on it.
* **A row read before a change is never stored after it**: every drop bumps a generation,
  and :meth:`ReadCache.store` refuses a row read under an older one.

A fourth rule closes the gap between a change's commit and its notification being handled here:
PostgreSQL sends the notification as the change commits, before the writer's client hears of
it, but this process handles it on a thread of its own a moment later. A cache told how to ask
the feed (:meth:`ReadCache.follow`) serves nothing while a notification is unread or being
handled, so a client that wrote through one replica and reads through another reads its write.

While the notification feed is not known to be delivering (SQLite has none; a PostgreSQL
listener that lost its connection may have missed some), nothing is served from memory. A
``ttl`` bounds how long any entry is trusted, as a last safety net, and ``max_entries`` bounds
the memory (least recently used first out).

A cache may instead be told to keep serving while the feed is not delivering, each entry then
trusted for ``unsynced_ttl`` seconds (the API key cache does: a revoked key must still stop
working within moments on SQLite), and to remember that a row does not exist, for
``absent_ttl`` seconds (so a repeated unknown id costs no read either).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadCache(Generic[V]):
    """Rows by id, served only while they are known to be current (see the module doc).

    ``ttl`` bounds how long an entry is trusted while the change feed delivers;
    ``unsynced_ttl`` (None: nothing is served or stored) while it does not. ``absent_ttl``
    (None: never remembered) bounds how long "no such row", stored as ``None``, is trusted.
    """

    def __init__(
        self,
        *,
        max_entries: int,
        ttl: float = 60.0,
        unsynced_ttl: float | None = None,
        absent_ttl: float | None = None,
    ):
        self._max_entries = max_entries
        self._ttl = ttl
        self._unsynced_ttl = unsynced_ttl
        self._absent_ttl = absent_ttl
        self._entries: OrderedDict[str, tuple[V | None, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._synced = False
        self._generation = 0
        self._behind: Callable[[], bool] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        """True while entries are served: the feed delivers (or need not), and there is room."""
        return (self._synced or self._unsynced_ttl is not None) and self._max_entries > 0

    @property
    def generation(self) -> int:
        """Take this before reading a row from the database; pass it to :meth:`store`."""
        return self._generation

    def follow(self, behind: Callable[[], bool]) -> None:
        """Serve nothing while ``behind()`` is true: the change feed holds unhandled news."""
        self._behind = behind

    def find(self, row_id: str) -> tuple[bool, V | None]:
        """``(True, row)`` for a trusted entry (row None: no such row), else ``(False, None)``.

        What :meth:`lookup` answers, telling a remembered absence from no entry at all.
        """
        if not self._synced and self._unsynced_ttl is None:
            return False, None
        behind = self._behind
        if behind is not None and behind():
            return False, None
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(row_id)
            if entry is None:
                return False, None
            row, stored_at = entry
            if row is None:
                ttl = self._absent_ttl
            else:
                ttl = self._ttl if self._synced else self._unsynced_ttl
            if ttl is None or now - stored_at > ttl:
                del self._entries[row_id]
                return False, None
            self._entries.move_to_end(row_id)
            return True, row

    def lookup(self, row_id: str) -> V | None:
        """The remembered row, or None (not remembered, expired, absent, or the cache is off)."""
        return self.find(row_id)[1]

    def read_through(
        self,
        row_id: str,
        tenant_id: str,
        tenant_of: Callable[[V], str],
        load: Callable[[], V],
    ) -> V:
        """Row ``row_id`` of ``tenant_id``: from memory when remembered, else ``load()``'s.

        A loaded row is stored for the next reader, unless something was dropped while it was
        read. ``load`` raises what a missing row raises; another tenant's row in memory is
        never served, but read (and refused) by ``load`` like any row not remembered.
        """
        cached = self.lookup(row_id)
        if cached is not None and tenant_of(cached) == tenant_id:
            return cached
        generation = self._generation
        row = load()
        self.store(row_id, row, generation)
        return row

    def store(self, row_id: str, row: V | None, generation: int) -> None:
        """Remember ``row`` unless something was dropped since ``generation`` was taken.

        ``None`` remembers that there is no such row, where the cache keeps absences.
        """
        if not self.enabled or (row is None and self._absent_ttl is None):
            return
        now = time.monotonic()
        with self._lock:
            if generation != self._generation:
                return
            self._entries[row_id] = (row, now)
            self._entries.move_to_end(row_id)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def evict(self, row_id: str) -> None:
        """Forget one row: it changed (a notification from the database)."""
        with self._lock:
            self._generation += 1
            self._entries.pop(row_id, None)

    def clear(self) -> None:
        """Forget every row: this process committed a change."""
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def set_synced(self, synced: bool) -> None:
        """Whether the change feed is delivering; either way, what was remembered may be stale."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._synced = synced
