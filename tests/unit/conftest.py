"""Fixtures for servicer and use-case tests: a real, migrated SQLite database per test."""

from __future__ import annotations

import pytest

import storage
from service.app import page_tokens, tenants
from service.app.authentication import Principal


@pytest.fixture(autouse=True)
def page_token_signing_key() -> None:
    """Each test signs page tokens with a key of its own.

    A server started by an earlier test (in any directory) leaves the process reading the key
    from that server's database, which is gone by now: without this, a unit test's result
    would depend on the order the tests ran in.
    """
    page_tokens.use_signing_key(page_tokens.new_signing_secret())


@pytest.fixture
def database(migrated_sqlite_url):
    db = storage.Database(migrated_sqlite_url)
    yield db
    db.dispose()


@pytest.fixture
def principals(database):
    """Two tenants with a write key each, and a read key for the first."""
    first = tenants.new_tenant(database, "tenant-a")
    second = tenants.new_tenant(database, "tenant-b")
    keys = {
        "alice": tenants.issue_key(database, first.id, "write"),
        "reader": tenants.issue_key(database, first.id, "read"),
        "bob": tenants.issue_key(database, second.id, "write"),
    }
    resolved = {
        name: Principal(issued.record.tenant_id, issued.record.id, issued.record.scope)
        for name, issued in keys.items()
    }
    return resolved
