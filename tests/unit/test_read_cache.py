"""The read cache serves only while its change feed delivers, and never stores a stale row."""

from __future__ import annotations

import time

import pytest

from service.app.read_cache import ReadCache


def synced(**options) -> ReadCache[str]:
    cache: ReadCache[str] = ReadCache(max_entries=options.pop("max_entries", 10), **options)
    cache.set_synced(True)
    return cache


def test_nothing_is_served_or_stored_until_the_feed_delivers():
    cache: ReadCache[str] = ReadCache(max_entries=10)
    cache.store("a", "row", cache.generation)

    assert cache.lookup("a") is None
    assert len(cache) == 0
    assert not cache.enabled


def test_a_stored_row_is_served_until_it_is_evicted():
    cache = synced()
    cache.store("a", "row", cache.generation)

    assert cache.lookup("a") == "row"
    cache.evict("a")
    assert cache.lookup("a") is None


def test_a_row_read_before_an_eviction_is_not_stored_after_it():
    cache = synced()
    generation = cache.generation  # a reader starts...
    cache.evict("a")  # ...the row changes elsewhere...
    cache.store("a", "old row", generation)  # ...and the reader's old row arrives

    assert cache.lookup("a") is None


def test_a_row_read_before_a_local_commit_is_not_stored_after_it():
    cache = synced()
    cache.store("b", "other", cache.generation)
    generation = cache.generation
    cache.clear()
    cache.store("a", "old row", generation)

    assert cache.lookup("a") is None
    assert cache.lookup("b") is None, "a local commit drops every row"


def test_losing_the_feed_drops_everything_and_stops_serving():
    cache = synced()
    cache.store("a", "row", cache.generation)

    cache.set_synced(False)
    cache.store("b", "row", cache.generation)

    assert cache.lookup("a") is None
    assert cache.lookup("b") is None
    cache.set_synced(True)
    assert cache.lookup("a") is None, "what was held before the gap is not trusted again"


def test_entries_expire_after_the_ttl():
    cache = synced(ttl=0.05)
    cache.store("a", "row", cache.generation)
    time.sleep(0.1)

    assert cache.lookup("a") is None


def test_the_least_recently_used_row_goes_first_when_full():
    cache = synced(max_entries=2)
    for row_id in ("a", "b"):
        cache.store(row_id, row_id, cache.generation)
    cache.lookup("a")
    cache.store("c", "c", cache.generation)

    assert len(cache) == 2
    assert cache.lookup("b") is None
    assert cache.lookup("a") == "a"


def test_no_room_means_off():
    cache = synced(max_entries=0)
    cache.store("a", "row", cache.generation)

    assert not cache.enabled
    assert cache.lookup("a") is None


class _Row:
    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id


def _tenant_of(row: _Row) -> str:
    return row.tenant_id


def test_read_through_serves_a_remembered_row_without_loading_it():
    cache: ReadCache[_Row] = ReadCache(max_entries=10)
    cache.set_synced(True)
    row = _Row("acme")
    loads: list[str] = []

    def load() -> _Row:
        loads.append("a")
        return row

    first = cache.read_through("a", "acme", _tenant_of, load)
    second = cache.read_through("a", "acme", _tenant_of, load)

    assert first is row and second is row
    assert loads == ["a"]


def test_read_through_never_serves_another_tenants_row_from_memory():
    cache: ReadCache[_Row] = ReadCache(max_entries=10)
    cache.set_synced(True)
    cache.store("a", _Row("acme"), cache.generation)

    class Missing(Exception):
        pass

    def load() -> _Row:
        raise Missing  # what the database says to another tenant

    with pytest.raises(Missing):
        cache.read_through("a", "globex", _tenant_of, load)
    assert cache.lookup("a") is not None, "the owner's row stays remembered"


def test_read_through_does_not_store_a_row_read_across_an_eviction():
    cache: ReadCache[_Row] = ReadCache(max_entries=10)
    cache.set_synced(True)

    def load() -> _Row:
        cache.evict("a")  # the row changes while it is being read
        return _Row("acme")

    cache.read_through("a", "acme", _tenant_of, load)

    assert cache.lookup("a") is None


def test_read_through_without_room_always_loads():
    cache: ReadCache[_Row] = ReadCache(max_entries=0)
    loads: list[str] = []

    def load() -> _Row:
        loads.append("a")
        return _Row("acme")

    for _ in range(2):
        cache.read_through("a", "acme", _tenant_of, load)

    assert loads == ["a", "a"]


def test_an_unsynced_ttl_serves_while_the_feed_is_not_delivering():
    cache: ReadCache[str] = ReadCache(max_entries=10, ttl=60, unsynced_ttl=60)
    cache.store("a", "row", cache.generation)

    assert cache.enabled
    assert cache.lookup("a") == "row"


def test_an_unsynced_ttl_bounds_trust_while_unsynced_only():
    cache: ReadCache[str] = ReadCache(max_entries=10, ttl=60, unsynced_ttl=0.05)
    cache.store("a", "row", cache.generation)
    cache.set_synced(True)
    cache.store("b", "row", cache.generation)
    time.sleep(0.1)

    assert cache.lookup("b") == "row", "synced: the long ttl applies"


def test_absences_are_remembered_only_where_the_cache_keeps_them():
    keeping: ReadCache[str] = ReadCache(max_entries=10, unsynced_ttl=60, absent_ttl=60)
    plain = synced()
    for cache in (keeping, plain):
        cache.store("gone", None, cache.generation)

    assert keeping.find("gone") == (True, None)
    assert plain.find("gone") == (False, None)
    assert len(plain) == 0


def test_a_remembered_absence_expires_after_its_own_ttl():
    cache: ReadCache[str] = ReadCache(max_entries=10, ttl=60, unsynced_ttl=60, absent_ttl=0.05)
    cache.store("gone", None, cache.generation)
    cache.store("here", "row", cache.generation)
    time.sleep(0.1)

    assert cache.find("gone") == (False, None)
    assert cache.find("here") == (True, "row")


def test_nothing_is_served_while_the_feed_it_follows_has_unhandled_news():
    cache = synced()
    behind = [False]
    cache.follow(lambda: behind[0])
    cache.store("a", "row", cache.generation)
    assert cache.lookup("a") == "row"

    behind[0] = True
    assert cache.lookup("a") is None
    assert cache.read_through("a", "t", lambda _row: "t", lambda: "fresh") == "fresh"

    behind[0] = False
    assert cache.lookup("a") == "fresh"
