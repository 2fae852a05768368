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

While the notification feed is not known to be delivering (SQLite has none; a PostgreSQL
listener that lost its connection may have missed some), nothing is served from memory. A
``ttl`` bounds how long any entry is trusted, as a last safety net, and ``max_entries`` bounds
the memory (least recently used first out).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadCache(Generic[V]):
    """Rows by id, served only while the change feed is delivering (see the module doc)."""

    def __init__(self, *, max_entries: int, ttl: float = 60.0):
        self._max_entries = max_entries
        self._ttl = ttl
        self._entries: OrderedDict[str, tuple[V, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._synced = False
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def enabled(self) -> bool:
        """True while entries are served: the feed is delivering and the cache has room."""
        return self._synced and self._max_entries > 0

    @property
    def generation(self) -> int:
        """Take this before reading a row from the database; pass it to :meth:`store`."""
        return self._generation

    def lookup(self, row_id: str) -> V | None:
        """The remembered row, or None (not remembered, expired, or the cache is off)."""
        if not self._synced:
            return None
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(row_id)
            if entry is None:
                return None
            if now - entry[1] > self._ttl:
                del self._entries[row_id]
                return None
            self._entries.move_to_end(row_id)
            return entry[0]

    def store(self, row_id: str, row: V, generation: int) -> None:
        """Remember ``row`` unless something was dropped since ``generation`` was taken."""
        if not self.enabled:
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
