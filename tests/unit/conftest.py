"""Fixtures for servicer and use-case tests: a real, migrated SQLite database per test."""

from __future__ import annotations

import pytest

import storage
from service.app import tenants
from service.app.authentication import Principal


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
