"""Tenants: the only table that is not scoped by tenant id."""

from __future__ import annotations

from sqlalchemy import func, select

from storage.driver_errors import UniqueRule
from storage.errors import NotFound
from storage.records import Tenant
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import tenants

# The record is the column list.
COLUMNS = RecordTable(Tenant, tenants, keys=("id",))


class TenantRepository(SqlRepository):
    """Creates and reads tenants."""

    def add(self, tenant: Tenant) -> Tenant:
        """Store a new tenant; AlreadyExists when the name (or id) is taken."""
        self._execute_guarded(
            COLUMNS.insert.statement,
            COLUMNS.insert_values(tenant),
            entity="tenant",
            uniques=(
                UniqueRule("uq_tenants_name", ("name",), "name", tenant.name),
                UniqueRule("tenants_pkey", ("id",), "id", tenant.id),
            ),
        )
        return self.get(tenant.id)

    def get(self, tenant_id: str) -> Tenant:
        """Return the tenant; NotFound when it does not exist."""
        row = self._execute(select(tenants).where(tenants.c.id == tenant_id)).first()
        if row is None:
            raise NotFound("tenant", tenant_id)
        return Tenant(**row._mapping)

    def list(self) -> list[Tenant]:
        """Return every tenant, oldest first."""
        rows = self._execute(select(tenants).order_by(tenants.c.create_time, tenants.c.id))
        return [Tenant(**row._mapping) for row in rows]

    def count(self) -> int:
        """Return the number of tenants (the server seeds a demo tenant when it is 0)."""
        return self._execute(select(func.count()).select_from(tenants)).scalar_one()
