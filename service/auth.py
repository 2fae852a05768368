"""API keys and the principal a call runs as.

A key looks like ``sck_<key id>_<secret>``: the key id (public, 64 bits) finds
the stored row, the secret (256 random bits) proves possession. Only a SHA-256
hash of the whole key is stored, and it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import storage
from service import errors

KEY_PREFIX = "sck"
SCOPES = ("read", "write")
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


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    record: storage.ApiKey
    secret: str


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


def new_tenant(database: storage.Database, name: str) -> storage.Tenant:
    """Creates a tenant; raises :class:`errors.InvalidArgument` for a bad name."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise errors.InvalidArgument.field("name", "must be 1 to 200 characters")
    tenant = storage.Tenant(id=str(uuid.uuid4()), name=name, create_time=datetime.now(UTC))
    try:
        return database.run(lambda uow: uow.tenants.add(tenant))
    except storage.AlreadyExists:
        raise errors.AlreadyExists("tenant", "name", name) from None


def issue_key(
    database: storage.Database, tenant_id: str, scope: str = "write", description: str = ""
) -> IssuedKey:
    """Creates an API key for a tenant and returns it with its secret (shown once)."""
    if scope not in SCOPES:
        raise errors.InvalidArgument.field("scope", f"must be one of {', '.join(SCOPES)}")
    key_id = secrets.token_hex(8)
    secret = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    record = storage.ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        scope=scope,
        key_hash=hash_key(secret),
        create_time=datetime.now(UTC),
        description=description,
    )

    def add(uow):
        uow.tenants.get(tenant_id)
        return uow.api_keys.add(record)

    try:
        stored = database.run(add)
    except storage.NotFound:
        raise errors.NotFound("tenant", tenant_id) from None
    return IssuedKey(record=stored, secret=secret)


class Authenticator:
    """Resolves an ``x-api-key`` value to a :class:`Principal`."""

    def __init__(self, database: storage.Database):
        self._database = database

    def authenticate(self, key: str | None) -> Principal:
        """Returns the principal, or raises :class:`errors.Unauthenticated`."""
        if not key:
            raise errors.Unauthenticated("missing x-api-key metadata")
        key_id = _split(key.strip())
        record = None
        if key_id is not None:
            try:
                record = self._database.run(lambda uow: uow.api_keys.get(key_id))
            except storage.NotFound:
                record = None
        stored_hash = record.key_hash if record is not None else _DUMMY_HASH
        matches = hmac.compare_digest(stored_hash, hash_key(key.strip()))
        if record is None or not matches or record.revoke_time is not None:
            raise errors.Unauthenticated("the API key is unknown or revoked")
        return Principal(tenant_id=record.tenant_id, key_id=record.id, scope=record.scope)
