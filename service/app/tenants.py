"""Tenants and their API keys: the administration the ``simconfig`` command offers.

A key is shown once, when it is issued; only its hash is stored (see
:mod:`service.app.authentication` for its format and how calls are authenticated with it).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import storage
from service.app.authentication import KEY_PREFIX, hash_key
from service.domain import errors

SCOPES = ("read", "write")


@dataclass(frozen=True)
class IssuedKey:
    """A freshly created key: ``secret`` is shown once and never stored."""

    record: storage.ApiKey
    secret: str


def new_tenant(database: storage.Database, name: str) -> storage.Tenant:
    """Creates a tenant; InvalidArgument for a bad name, storage.AlreadyExists for a taken one."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise errors.InvalidArgument.field("name", "must be 1 to 200 characters")
    tenant = storage.Tenant(id=str(uuid.uuid4()), name=name, create_time=datetime.now(UTC))
    return database.retry.run(lambda: _add_tenant(database, tenant))


def _add_tenant(database: storage.Database, tenant: storage.Tenant) -> storage.Tenant:
    with database.unit_of_work() as uow:
        added = uow.tenants.add(tenant)
        uow.commit()
    return added


def issue_key(
    database: storage.Database, tenant_id: str, scope: str = "write", description: str = ""
) -> IssuedKey:
    """Creates an API key for a tenant and returns it with its secret (shown once).

    InvalidArgument for an unknown scope, storage.NotFound for a tenant that does not exist.
    """
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

    stored = database.retry.run(lambda: _add_key(database, record))
    return IssuedKey(record=stored, secret=secret)


def _add_key(database: storage.Database, key: storage.ApiKey) -> storage.ApiKey:
    with database.unit_of_work() as uow:
        uow.tenants.get(key.tenant_id)  # storage.NotFound for a tenant that does not exist
        added = uow.api_keys.add(key)
        uow.commit()
    return added


def list_tenants(database: storage.Database) -> list[storage.Tenant]:
    """Every tenant, oldest first."""
    return database.read(lambda uow: uow.tenants.list())


def list_keys(database: storage.Database, tenant_id: str) -> list[storage.ApiKey]:
    """The tenant's keys, revoked ones included, oldest first; NotFound without the tenant."""

    def read(uow: storage.ReadUnitOfWork) -> list[storage.ApiKey]:
        uow.tenants.get(tenant_id)
        return uow.api_keys.list_for_tenant(tenant_id)

    return database.read(read)


def revoke_key(database: storage.Database, key_id: str) -> storage.ApiKey:
    """Revokes a key (every server refuses it within moments); NotFound for an unknown id."""
    return database.retry.run(lambda: _revoke(database, key_id))


def _revoke(database: storage.Database, key_id: str) -> storage.ApiKey:
    with database.unit_of_work() as uow:
        revoked = uow.api_keys.revoke(key_id, datetime.now(UTC))
        uow.commit()
    return revoked


def count_tenants(database: storage.Database) -> int:
    """How many tenants there are (the embedded database gets a demo one when it has none)."""
    return database.read(lambda uow: uow.tenants.count())
