"""The tenant a thread works for, which PostgreSQL's row-level security enforces.

Every repository method filters on its tenant id: that is the first wall. The second is
PostgreSQL's row-level security (migration 0018): while a tenant is bound with
:func:`acting_for`, units of work connect as :data:`SERVICE_ROLE`, which does not bypass
row-level security, with the tenant in the :data:`TENANT_SETTING` session setting, so a query
that forgot its filter still sees only that tenant's rows. The API edge binds the caller's
tenant for exactly as long as the call runs. Work with no tenant bound (the API key lookup
that finds the tenant, architect and webhook workers, purges, the CLI, migrations) runs as the
database owner, on connections of its own. SQLite has no roles: there the filter is the wall.

A migration that adds a table of tenant rows must grant it to :data:`SERVICE_ROLE` and give it
the ``tenant_isolation`` policy, as migration 0018 did for the tables before it (a storage test
names any table it forgot).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

# The role tenant-scoped work runs as: NOLOGIN, NOBYPASSRLS, granted to the migrating user
# (migration 0018). Roles are cluster-wide, so every database of a cluster shares it.
SERVICE_ROLE = "simconfig_service"
# The session setting the row-level security policies compare each row's tenant_id with.
TENANT_SETTING = "simconfig.tenant_id"

_tenant: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "simconfig_tenant", default=None
)


@contextmanager
def acting_for(tenant_id: str | None) -> Iterator[None]:
    """Database work in the block sees only ``tenant_id``'s rows (None: the owner's view)."""
    token = _tenant.set(tenant_id)
    try:
        yield
    finally:
        _tenant.reset(token)


@contextmanager
def as_owner() -> Iterator[None]:
    """Database work in the block runs as the owner, whatever tenant the thread serves.

    For the few things a call needs that belong to no tenant, such as the page token key.
    """
    with acting_for(None):
        yield


def current_tenant() -> str | None:
    """The tenant bound on this thread, or None for work that runs as the owner."""
    return _tenant.get()
