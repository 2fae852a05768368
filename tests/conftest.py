"""Fixtures shared by every test package: a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tests.recycled_postgres import RecycledPostgres

# The server CI provides; override with SIMCONFIG_TEST_POSTGRES_ADMIN_URL to use another one.
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"

# The slow suite (`make test-slow`; CI runs it after `make test`): everything driven through
# real binaries (simconfig serve, grpcurl, Envoy, a fresh venv for the client), and the
# scenarios that wait on purpose (faults on a scratch PostgreSQL cluster, floods, leases,
# several server processes). Minutes each; `make test` keeps the rest under a few minutes.
SLOW_PATHS = (
    "tests/e2e/",
    "tests/integration/test_architect_durability.py",
    "tests/integration/test_database_resilience.py",
    "tests/integration/test_database_restarts.py",
    "tests/integration/test_fair_sharing.py",
    "tests/integration/test_frozen_database.py",
    "tests/integration/test_processes.py",
    "tests/integration/test_tenant_wall_roles.py",
    "tests/integration/test_unauthenticated_work.py",
    "tests/integration/test_watch_across_processes.py",
    "tests/integration/test_webhook_failover.py",
)


# Single tests that wait out a real timeout of several seconds (a connect timeout, SQLite's busy
# timeout, the retry budget) or run the real image commands one after another: what they check
# needs the wait, so they run with the slow suite (CI runs both).
SLOW_TESTS = (
    "tests/deploy/test_image_entry_command.py::test_migrate_serve_and_healthcheck_run_as_the_image_runs_them",
    "tests/integration/test_tenant_interceptor.py::test_database_down_is_unavailable_without_internals",
    "tests/integration/test_tenant_interceptor.py::test_health_reports_not_serving_when_database_is_unreachable",
    "tests/storage/test_sqlite_locking.py::test_a_write_gives_up_after_one_busy_timeout",
    "tests/storage/test_retry.py::test_retrying_stops_when_the_time_budget_is_spent",
)


def pytest_collection_modifyitems(config, items):
    """Marks the tests under :data:`SLOW_PATHS`, and those of :data:`SLOW_TESTS`, ``slow``."""
    root = Path(str(config.rootpath))
    for item in items:
        relative = Path(str(item.path)).relative_to(root).as_posix()
        name = relative + "::" + item.name.split("[", 1)[0]
        if relative.startswith(SLOW_PATHS) or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _no_settings_from_the_developers_shell(monkeypatch):
    """Settings built in a test read only what the test gives them.

    ``Settings(...)`` also reads ``SIMCONFIG_*`` variables (pydantic-settings); one exported in
    the shell running the tests (a database URL, say) must not change what a test runs against.
    """
    from service.settings import PREFIX, Settings

    for name in Settings.model_fields:
        monkeypatch.delenv(PREFIX + name.upper(), raising=False)


@pytest.fixture(scope="session")
def _migrated_sqlite_template(tmp_path_factory) -> Path:
    """An embedded database migrated once per test session, to copy for each test."""
    import storage

    directory = tmp_path_factory.mktemp("migrated-sqlite")
    database = storage.Database(storage.sqlite_url_for(directory))
    database.migrate()
    database.dispose()
    return directory / "simconfig.db"


@pytest.fixture
def migrated_sqlite_url(tmp_path, _migrated_sqlite_template) -> str:
    """The URL of this test's own embedded database, already migrated.

    Migrating takes seconds and every test of the in-process server needs a database: the
    schema is built once per session and its file copied.
    """
    import storage

    url = storage.sqlite_url_for(tmp_path)
    shutil.copyfile(_migrated_sqlite_template, tmp_path / "simconfig.db")
    return url


def postgres_admin_url() -> str:
    """Where tests create and drop their PostgreSQL databases."""
    return os.environ.get("SIMCONFIG_TEST_POSTGRES_ADMIN_URL", DEFAULT_ADMIN_URL)


@contextmanager
def throwaway_postgres_database(
    template: str | None = None, *, icu_locale: str | None = None
) -> Iterator[str]:
    """Creates a fresh PostgreSQL database, yields its URL, and drops it.

    The database is empty, or a copy of the database named ``template``. With ``icu_locale``
    it is empty and its default collation is that ICU locale's (a linguistic order, where the
    cluster's own is by code point).

    Skips when PostgreSQL is unreachable, unless SIMCONFIG_REQUIRE_POSTGRES=1 (as in CI),
    where a missing database must fail the run rather than silently skip half the suite.
    """
    admin_url = postgres_admin_url()
    name = f"simconfig_test_{uuid.uuid4().hex}"
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    admin = create_engine(
        admin_url,
        isolation_level="AUTOCOMMIT",
        poolclass=NullPool,
        connect_args={"connect_timeout": 3},
    )
    try:
        with admin.connect() as connection:
            copied = f' TEMPLATE "{template}"' if template is not None else ""
            if icu_locale is not None:
                # Only template0 may be copied with another collation than its own.
                copied = f" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'"
            connection.execute(text(f'CREATE DATABASE "{name}"{copied}'))
    except OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL is unreachable at {make_url(admin_url)!r}: {exc.orig}"
        if os.environ.get("SIMCONFIG_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"SIMCONFIG_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # FORCE ends connections a test or a pool left open.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _migrated_postgres_template() -> Iterator[str]:
    """The name of a PostgreSQL database migrated once per session, to copy for each test.

    Nothing stays connected to it: PostgreSQL copies a database only while no one uses it.
    """
    import storage

    with throwaway_postgres_database() as url:
        database = storage.Database(url)
        database.migrate()
        database.dispose()
        name = make_url(url).database
        assert name is not None
        yield name


@pytest.fixture(scope="session")
def _recycled_postgres(_migrated_postgres_template: str) -> Iterator[RecycledPostgres]:
    """Copies of the migrated template, emptied after each test and handed out again."""
    pool = RecycledPostgres(postgres_admin_url(), _migrated_postgres_template)
    yield pool
    pool.close()


@pytest.fixture
def migrated_postgres_url(_recycled_postgres: RecycledPostgres) -> Iterator[str]:
    """URL of a PostgreSQL database of this test's own, already migrated, with no rows.

    Migrating takes a second or more on PostgreSQL, and so does copying a database: the schema
    is built once per session, copied with ``CREATE DATABASE ... TEMPLATE``, and after the test
    the copy is emptied for the next one (:mod:`tests.recycled_postgres` says when it is dropped
    instead).
    """
    url = _recycled_postgres.take()
    yield url
    _recycled_postgres.give_back(url)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database shared by the whole test session."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database of this test's own, with no schema yet."""
    with throwaway_postgres_database() as url:
        yield url
