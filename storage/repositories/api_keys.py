"""API keys: looked up by id for authentication, listed per tenant for management."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update

from storage.driver_errors import UniqueRule
from storage.errors import NotFound
from storage.queries import Query
from storage.records import ApiKey
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import api_keys

# Compiled once: every call whose key is not in memory yet reads it.
_GET = Query(select(api_keys).where(api_keys.c.id == bindparam("key_id")))


# The record is the column list.
COLUMNS = RecordTable(ApiKey, api_keys, keys=("id",))


class ApiKeyRepository(SqlRepository):
    """Stores API keys (hashes only) and revokes them."""

    def add(self, key: ApiKey) -> ApiKey:
        """Store a new key; AlreadyExists when the id is taken."""
        self._execute_guarded(
            COLUMNS.insert.statement,
            COLUMNS.insert_values(key),
            entity="api_key",
            uniques=(UniqueRule("api_keys_pkey", ("id",), "id", key.id),),
        )
        return self.get(key.id)

    def get(self, key_id: str) -> ApiKey:
        """Return the key by id across tenants (authentication has no tenant yet); NotFound."""
        row = self._first(_GET, {"key_id": key_id})
        if row is None:
            raise NotFound("api_key", key_id)
        return ApiKey(**row)

    def list_for_tenant(self, tenant_id: str) -> list[ApiKey]:
        """Return the tenant's keys, revoked ones included, oldest first."""
        rows = self._execute(
            select(api_keys)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.create_time, api_keys.c.id)
        )
        return [ApiKey(**row._mapping) for row in rows]

    def revoke(self, key_id: str, when: datetime) -> ApiKey:
        """Mark the key revoked at ``when`` and return it; NotFound when it does not exist.

        Revoking twice keeps the first revoke time: that is when the key stopped working.
        """
        result = self._execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(revoke_time=func.coalesce(api_keys.c.revoke_time, when))
        )
        if result.rowcount == 0:
            raise NotFound("api_key", key_id)
        return self.get(key_id)
