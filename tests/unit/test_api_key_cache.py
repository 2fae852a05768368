"""The API-key cache: warm keys come from memory, stale ones go, and it stays bounded."""

from __future__ import annotations

import secrets
import tracemalloc
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from service.app import tenants
from service.app.authentication import ApiKeyCache, Authenticator
from service.domain import errors


def _count_key_reads(database) -> list[str]:
    reads: list[str] = []
    for engine in database.engines:

        @event.listens_for(engine, "before_cursor_execute")
        def count(connection, cursor, statement, parameters, context, executemany):
            if "FROM api_keys" in statement:
                reads.append(statement)

    return reads


def _random_key() -> str:
    return f"sck_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"


@pytest.fixture
def tenant(database):
    return tenants.new_tenant(database, "acme")


def test_a_warm_key_is_resolved_without_reading_the_database(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    authenticator = Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60))
    reads = _count_key_reads(database)

    first = authenticator.authenticate(issued.secret)
    second = authenticator.authenticate_from_memory(issued.secret)

    assert first == second and second.tenant_id == tenant.id
    assert len(reads) == 1


def test_memory_alone_cannot_decide_a_key_it_has_not_seen(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    authenticator = Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60))

    assert authenticator.authenticate_from_memory(issued.secret) is None


def test_a_wrong_secret_for_a_cached_key_is_refused_from_memory(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    authenticator = Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60))
    authenticator.authenticate(issued.secret)

    with pytest.raises(errors.Unauthenticated):
        authenticator.authenticate_from_memory(issued.secret[:-4] + "AAAA")


def test_an_unknown_key_is_remembered_as_unknown(database, tenant):
    authenticator = Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60))
    key = _random_key()
    reads = _count_key_reads(database)

    for _ in range(3):
        with pytest.raises(errors.Unauthenticated):
            authenticator.authenticate(key)

    assert len(reads) == 1


def test_a_revoked_key_is_refused_once_its_entry_expires(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    cache = ApiKeyCache(ttl=60, fallback_ttl=0.0)
    authenticator = Authenticator(database, cache)
    authenticator.authenticate(issued.secret)

    database.run(lambda uow: uow.api_keys.revoke(issued.record.id, datetime.now(UTC)))

    # No change feed (SQLite): the fallback expiry applies, here at once.
    with pytest.raises(errors.Unauthenticated):
        authenticator.authenticate(issued.secret)


def test_while_the_change_feed_delivers_an_evicted_key_is_read_again(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    cache = ApiKeyCache(ttl=60, fallback_ttl=0.0)
    cache.set_synced(True)
    authenticator = Authenticator(database, cache)
    authenticator.authenticate(issued.secret)
    database.run(lambda uow: uow.api_keys.revoke(issued.record.id, datetime.now(UTC)))

    # Synced: the long expiry applies, so only the notification makes it forget the row.
    assert authenticator.authenticate_from_memory(issued.secret) is not None
    cache.evict(issued.record.id)

    with pytest.raises(errors.Unauthenticated):
        authenticator.authenticate(issued.secret)


def test_a_row_read_before_an_eviction_is_not_stored_after_it(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    cache = ApiKeyCache(ttl=60, fallback_ttl=60)
    row = database.run(lambda uow: uow.api_keys.get(issued.record.id))

    generation = cache.generation
    cache.evict(issued.record.id)  # the revocation's notification overtakes the slow read
    cache.store(issued.record.id, row, generation)

    assert cache.lookup(issued.record.id) == (False, None)


def test_losing_the_change_feed_forgets_everything(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    cache = ApiKeyCache(ttl=60, fallback_ttl=60)
    cache.set_synced(True)
    Authenticator(database, cache).authenticate(issued.secret)

    cache.set_synced(False)

    assert len(cache) == 0


def test_a_flood_of_random_keys_keeps_the_cache_at_its_bound():
    cache = ApiKeyCache(ttl=60, fallback_ttl=60, max_entries=1_000)
    tracemalloc.start()
    try:
        for _ in range(50_000):
            key_id = secrets.token_hex(8)
            cache.store(key_id, None, cache.generation)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(cache) == 1_000
    # 1,000 entries of a key id and a timestamp: well under a megabyte however many keys came.
    assert peak < 1_000_000


def test_the_most_recently_used_keys_survive_a_flood(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    cache = ApiKeyCache(ttl=60, fallback_ttl=60, max_entries=100)
    authenticator = Authenticator(database, cache)
    authenticator.authenticate(issued.secret)

    for _ in range(1_000):
        authenticator.authenticate_from_memory(issued.secret)  # in use all along
        cache.store(secrets.token_hex(8), None, cache.generation)

    assert authenticator.authenticate_from_memory(issued.secret) is not None


def test_the_least_recently_used_key_is_forgotten_first():
    cache = ApiKeyCache(ttl=60, fallback_ttl=60, max_entries=2)
    for key_id in ("oldest", "used", "newest"):
        cache.store(key_id, None, cache.generation)
        if key_id == "used":
            cache.lookup("oldest")  # "oldest" is used again: "used" is now the least recent

    assert [cache.lookup(key_id)[0] for key_id in ("oldest", "used", "newest")] == [
        True,
        False,
        True,
    ]


@pytest.mark.parametrize("invalidate", ["evict", "set_synced"])
def test_a_row_read_before_any_later_invalidation_is_not_stored(invalidate):
    cache = ApiKeyCache(ttl=60, fallback_ttl=60)

    def invalidation() -> None:
        if invalidate == "evict":
            cache.evict("another-key")
        else:
            cache.set_synced(True)

    invalidation()
    generation = cache.generation  # a read starts after the first invalidation...
    invalidation()  # ...and a second one overtakes it
    cache.store("key", None, generation)

    assert cache.lookup("key") == (False, None)


def test_every_key_lookup_is_reported_as_answered_from_memory_or_read(database, tenant):
    issued = tenants.issue_key(database, tenant.id)
    answers: list[bool] = []
    authenticator = Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60), answers.append)

    authenticator.authenticate(issued.secret)
    authenticator.authenticate(issued.secret)

    assert answers == [False, True]


@pytest.mark.parametrize("known", [True, False], ids=["key", "no-such-key"])
def test_an_expired_entry_is_not_an_answer(database, tenant, known):
    issued = tenants.issue_key(database, tenant.id)
    row = database.run(lambda uow: uow.api_keys.get(issued.record.id)) if known else None
    # Known rows live for ttl, "no such key" for unknown_ttl: each expired, the other fresh.
    cache = ApiKeyCache(
        ttl=-1 if known else 60, fallback_ttl=-1 if known else 60, unknown_ttl=60 if known else -1
    )
    cache.store(issued.record.id, row, cache.generation)

    assert cache.lookup(issued.record.id) == (False, None)


@pytest.mark.parametrize(
    "key",
    ["xyz_0123456789abcdef_secret", "sck_0123456789abcdef_", "sck_0123456789ABCDEF_secret"],
    ids=["other-prefix", "no-secret", "id-not-lowercase-hex"],
)
def test_a_malformed_key_is_refused_without_a_lookup(database, key):
    reads = _count_key_reads(database)

    with pytest.raises(errors.Unauthenticated):
        Authenticator(database, ApiKeyCache(ttl=60, fallback_ttl=60)).authenticate(key)

    assert reads == []
