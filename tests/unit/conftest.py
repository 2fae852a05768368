"""Fixtures for servicer unit tests: a real, migrated SQLite database per test."""

from __future__ import annotations

import pytest

import storage
from service import auth
from service.auth import Principal
from tests.harness import PrincipalDirectory


@pytest.fixture
def database(tmp_path):
    db = storage.Database(storage.sqlite_url_for(tmp_path))
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def principals(database):
    """Two tenants with a write key each, and a read key for the first."""
    directory = PrincipalDirectory()
    first = auth.new_tenant(database, "tenant-a")
    second = auth.new_tenant(database, "tenant-b")
    keys = {
        "alice": auth.issue_key(database, first.id, "write"),
        "reader": auth.issue_key(database, first.id, "read"),
        "bob": auth.issue_key(database, second.id, "write"),
    }
    resolved = {
        name: directory.add(
            Principal(issued.record.tenant_id, issued.record.id, issued.record.scope)
        )
        for name, issued in keys.items()
    }
    resolved["directory"] = directory
    return resolved
