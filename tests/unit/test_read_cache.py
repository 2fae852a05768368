"""The read cache serves only while its change feed delivers, and never stores a stale row."""

from __future__ import annotations

import time

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
