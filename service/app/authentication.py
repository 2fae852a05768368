"""Authentication: API keys and the principal a call runs as.

A key looks like ``sck_<key id>_<secret>``: the key id (public, 64 bits) finds
the stored row, the secret (256 random bits) proves possession. Only a SHA-256
hash of the whole key is stored, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

import storage
from service.app.read_cache import ReadCache
from service.domain import errors

KEY_PREFIX = "sck"
# Hash compared against when the key id is unknown, so that unknown and wrong
# keys take the same time.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant, the key id (the audit actor) and its scope."""

    tenant_id: str
    key_id: str
    scope: str

    @property
    def can_write(self) -> bool:
        """True for keys that may mutate."""
        return self.scope == "write"


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


_KEY_ID = re.compile(r"^[0-9a-f]{16}\Z")


def _split(key: str) -> str | None:
    """The key id of a well-formed key; None for anything else (never looked up)."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID.match(parts[1]) or not parts[2]:
        return None
    return parts[1]


class ApiKeyCache:
    """This process's memory of API key rows, so that a warm call does no key query.

    Holds up to ``max_entries`` key ids, least recently used first out, each with its row or
    with "no such key" (so a repeated unknown key costs nothing either); a flood of random key
    ids cannot grow it past the bound. An entry is trusted for ``ttl`` seconds while a change
    feed (PostgreSQL ``NOTIFY`` on every change of a key row) is known to be delivering, and
    for ``fallback_ttl`` seconds otherwise, so a revoked key stops working everywhere within
    moments either way. "No such key" is trusted for ``unknown_ttl``: key ids are random and
    chosen when a key is created, so an id asked for before it existed is only ever a guess.
    A :class:`~service.app.read_cache.ReadCache` keeps the entries.
    """

    def __init__(
        self,
        *,
        ttl: float,
        fallback_ttl: float,
        unknown_ttl: float = 30.0,
        max_entries: int = 10_000,
    ):
        self._rows: ReadCache[storage.ApiKey] = ReadCache(
            max_entries=max_entries, ttl=ttl, unsynced_ttl=fallback_ttl, absent_ttl=unknown_ttl
        )

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def generation(self) -> int:
        """Take this before reading a row from the database; pass it to :meth:`store`."""
        return self._rows.generation

    def lookup(self, key_id: str) -> tuple[bool, storage.ApiKey | None]:
        """``(True, row)`` for a fresh entry (row None: no such key); ``(False, None)`` if none."""
        return self._rows.find(key_id)

    def store(self, key_id: str, row: storage.ApiKey | None, generation: int) -> None:
        """Remember ``row`` (None: no such key) unless an invalidation came since ``generation``."""
        self._rows.store(key_id, row, generation)

    def evict(self, key_id: str) -> None:
        """Forget one key (its row changed)."""
        self._rows.evict(key_id)

    def set_synced(self, synced: bool) -> None:
        """Whether the change feed is delivering; either way, what was cached may be stale."""
        self._rows.set_synced(synced)


class Authenticator:
    """Resolves an ``x-api-key`` value to a :class:`Principal`, from memory when it can."""

    def __init__(
        self,
        database: storage.Database,
        cache: ApiKeyCache | None = None,
        on_lookup: Callable[[bool], None] | None = None,
    ):
        self._database = database
        self._cache = cache
        # Told True for a key answered from memory, False for one read from the database.
        self._on_lookup = on_lookup

    def authenticate(self, key: str | None) -> Principal:
        """Returns the principal, or raises :class:`errors.Unauthenticated`.

        May read the key's row from the database; use :meth:`authenticate_from_memory` where
        blocking is not allowed.
        """
        key, key_id = _key_and_id(key)
        found, record = self._remembered(key_id)
        if not found:
            record = self._load(key_id)
        return _verify(key, record)

    def authenticate_from_memory(self, key: str | None) -> Principal | None:
        """The principal when memory alone decides; raises Unauthenticated for a refused key.

        None when the key's row is not in memory: call :meth:`authenticate` on a thread that
        may block. Never touches the database.
        """
        key, key_id = _key_and_id(key)
        found, record = self._remembered(key_id)
        if not found:
            return None
        return _verify(key, record)

    def _remembered(self, key_id: str) -> tuple[bool, storage.ApiKey | None]:
        if self._cache is None:
            return False, None
        found, record = self._cache.lookup(key_id)
        if found and self._on_lookup is not None:
            self._on_lookup(True)
        return found, record

    def _load(self, key_id: str) -> storage.ApiKey | None:
        generation = self._cache.generation if self._cache is not None else 0
        if self._on_lookup is not None:
            self._on_lookup(False)
        try:
            record = self._database.read(lambda uow: uow.api_keys.get(key_id))
        except storage.NotFound:
            record = None
        if self._cache is not None:
            self._cache.store(key_id, record, generation)
        return record


def _key_and_id(key: str | None) -> tuple[str, str]:
    """The presented key and the id it names; Unauthenticated when it is missing or malformed."""
    if not key:
        raise errors.Unauthenticated("missing x-api-key metadata")
    key_id = _split(key.strip())
    if key_id is None:
        # Malformed keys are never looked up (and so never fill the cache).
        hmac.compare_digest(_DUMMY_HASH, hash_key(key.strip()))
        raise errors.Unauthenticated("the API key is unknown or revoked")
    return key, key_id


def _verify(key: str, record: storage.ApiKey | None) -> Principal:
    stored_hash = record.key_hash if record is not None else _DUMMY_HASH
    matches = hmac.compare_digest(stored_hash, hash_key(key.strip()))
    if record is None or not matches or record.revoke_time is not None:
        raise errors.Unauthenticated("the API key is unknown or revoked")
    return Principal(tenant_id=record.tenant_id, key_id=record.id, scope=record.scope)
