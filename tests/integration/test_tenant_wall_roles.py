"""The role behind the tenant wall, on scratch clusters of the tests' own (roles are cluster-wide).

Production migrates as the tables' owner, not a superuser: that owner creates
``simconfig_service``, is granted it, bypasses row-level security for cross-tenant work and
switches tenant connections to the role. And since every database of a cluster shares the role,
a migration must cope with another one creating it at the same moment.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

import storage
from storage.tenancy import SERVICE_ROLE, acting_for
from tests.scratch_postgres import scratch_postgres  # noqa: F401 - a fixture
from tests.storage.conftest import Factory

OWNER = "simconfig_owner"


def _admin(cluster):
    return create_engine(cluster.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _create_database(cluster, name: str, owner: str = "postgres") -> str:
    admin = _admin(cluster)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}" OWNER "{owner}"'))
    admin.dispose()
    return make_url(cluster.url).set(database=name).render_as_string(hide_password=False)


def test_an_owner_that_is_no_superuser_migrates_and_its_calls_are_walled(
    scratch_postgres,  # noqa: F811
):
    admin = _admin(scratch_postgres)
    with admin.connect() as connection:
        connection.execute(text(f"CREATE ROLE {OWNER} LOGIN CREATEROLE"))
    admin.dispose()
    url = make_url(_create_database(scratch_postgres, "app", owner=OWNER)).set(username=OWNER)
    database = storage.Database(url.render_as_string(hide_password=False))
    try:
        database.migrate()
        make = Factory(database)
        mine, theirs = make.tenant(), make.tenant()
        make.scenario(mine)
        make.scenario(theirs)

        def visible(uow) -> tuple[str, int]:
            row = uow._connection.execute(
                text("SELECT current_user, (SELECT count(*) FROM scenarios)")
            ).one()
            return row[0], row[1]

        with acting_for(mine):
            assert database.read(visible) == (SERVICE_ROLE, 1)
            assert database.run(visible) == (SERVICE_ROLE, 1)
        # The owner's own work (workers, purges) sees every tenant.
        assert database.read(visible) == (OWNER, 2)
    finally:
        database.dispose()


def test_a_migration_tolerates_the_role_being_created_by_another_at_the_same_time(
    scratch_postgres,  # noqa: F811
):
    url = _create_database(scratch_postgres, "racing")
    holder = create_engine(scratch_postgres.url, poolclass=NullPool)
    database = storage.Database(url)
    failures: list[BaseException] = []

    def migrate() -> None:
        try:
            database.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    try:
        with holder.connect() as other:
            # Another database's migration, caught between creating the role and committing.
            other.execute(text(f"CREATE ROLE {SERVICE_ROLE} NOLOGIN"))
            migrating = threading.Thread(target=migrate)
            migrating.start()
            _wait_until_blocked(scratch_postgres, "racing")
            other.commit()
        migrating.join(60)

        assert not migrating.is_alive()
        assert failures == []
        assert database.current_revision() == storage.head_revision()
    finally:
        database.dispose()
        holder.dispose()


def _wait_until_blocked(cluster, database_name: str) -> None:
    """Returns once a session of ``database_name`` waits for a lock (the role's catalog row)."""
    admin = _admin(cluster)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            with admin.connect() as connection:
                waiting = connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = :name AND wait_event_type = 'Lock'"
                    ),
                    {"name": database_name},
                ).scalar()
            if waiting:
                return
            time.sleep(0.05)
    finally:
        admin.dispose()
    pytest.fail("the migration never waited for the role being created")
