"""The second wall on PostgreSQL: row-level security and foreign keys that name the tenant.

Every repository query filters on its tenant. These tests take a filter away (monkeypatch) and
show that PostgreSQL still hides the other tenant's rows from work bound to a tenant, that a
pooled connection never serves one tenant with another's setting, and that no row of one
tenant can point at another tenant's parent. SQLite has no row-level security: its wall is the
filters alone, so these tests run on PostgreSQL only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import bindparam, inspect, or_, select, text

import storage.database as database_module
from storage import Database, NotFound, RetryPolicy, StorageError, head_revision
from storage.database import _alembic_config
from storage.queries import Query
from storage.repositories import scenarios as scenario_queries
from storage.schema import metadata, scenarios
from storage.tenancy import SERVICE_ROLE, TENANT_SETTING, acting_for
from tests.storage.conftest import Factory


@pytest.fixture
def database(postgresql_database: Database) -> Database:
    """The session's PostgreSQL database (the wall exists there only)."""
    return postgresql_database


@pytest.fixture
def unfiltered_get(monkeypatch) -> None:
    """GetScenario's query with its tenant filter taken away (the bug the wall is for).

    The tenant id is still bound, as the repository passes it, but no longer restricts a row.
    """

    def get_query(include_deleted: bool, lock: str | None) -> Query:
        any_tenant = or_(
            scenarios.c.tenant_id == bindparam("tenant_id"),
            bindparam("tenant_id").is_not(None),
        )
        return Query(
            select(scenarios).where(any_tenant, scenarios.c.id == bindparam("scenario_id"))
        )

    monkeypatch.setattr(scenario_queries, "_get_query", get_query)


def test_a_query_without_its_tenant_filter_still_returns_none_of_another_tenants_rows(
    database, make: Factory, tenant_id, other_tenant_id, unfiltered_get
):
    theirs = make.scenario(other_tenant_id)
    mine = make.scenario(tenant_id)

    with acting_for(tenant_id):
        with pytest.raises(NotFound):
            database.read(lambda uow: uow.scenarios.get(tenant_id, theirs.id))
        with pytest.raises(NotFound):
            database.run(lambda uow: uow.scenarios.get(tenant_id, theirs.id, lock="update"))
        assert database.read(lambda uow: uow.scenarios.get(tenant_id, mine.id)).id == mine.id
    # The owner's view has no wall: the patched query does leak there, so the wall is what
    # held above.
    assert database.read(lambda uow: uow.scenarios.get(tenant_id, theirs.id)).id == theirs.id


def test_work_bound_to_a_tenant_runs_as_the_service_role_and_the_owners_does_not(
    database, tenant_id
):
    def session(uow) -> tuple[str, str | None]:
        row = uow._connection.execute(
            text("SELECT current_user, current_setting(:name, true)"), {"name": TENANT_SETTING}
        ).one()
        return row[0], row[1]

    with acting_for(tenant_id):
        assert database.read(session) == (SERVICE_ROLE, tenant_id)
        assert database.run(session) == (SERVICE_ROLE, tenant_id)
    owner, _ = database.read(session)
    assert owner != SERVICE_ROLE


@pytest.fixture
def one_connection(postgres_url: str) -> Iterator[Database]:
    """A database whose pools hold a single connection each, so every call reuses it."""
    database = Database(postgres_url, pool_size=1)
    yield database
    database.dispose()


def test_a_pooled_connection_always_carries_the_tenant_of_the_work_at_hand(
    one_connection: Database, make: Factory, tenant_id, other_tenant_id
):
    mine = make.scenario(tenant_id)
    theirs = make.scenario(other_tenant_id)

    def tenant_setting(uow) -> str:
        return uow._connection.execute(
            text("SELECT current_setting(:name, true)"), {"name": TENANT_SETTING}
        ).scalar()

    for _ in range(2):
        for tenant, own, other in ((tenant_id, mine, theirs), (other_tenant_id, theirs, mine)):
            with acting_for(tenant):
                assert one_connection.read(tenant_setting) == tenant
                assert one_connection.run(tenant_setting) == tenant
                ids = one_connection.read(
                    lambda uow, own=own, other=other: uow.scenarios.get_many(
                        own.tenant_id, [own.id, other.id]
                    )
                )
                assert set(ids) == {own.id}


def test_a_tenant_cannot_write_a_row_of_another_tenant(
    database, make: Factory, tenant_id, other_tenant_id
):
    record = make.scenario_record(other_tenant_id)

    with acting_for(tenant_id), pytest.raises(StorageError):
        database.run(lambda uow: uow.scenarios.add(record))

    with pytest.raises(NotFound):
        database.read(lambda uow: uow.scenarios.get(other_tenant_id, record.id))


def test_a_row_cannot_point_at_another_tenants_parent(
    database, make: Factory, tenant_id, other_tenant_id
):
    # As the owner, so row-level security is out of the way and the foreign key alone holds.
    their_scenario = make.scenario(other_tenant_id)
    their_simulation = make.simulation(other_tenant_id)

    with pytest.raises(NotFound):
        make.simulation(tenant_id, scenario_id=their_scenario.id)
    with pytest.raises(NotFound):
        make.revision(their_simulation, 1, tenant_id=tenant_id)
    with pytest.raises(NotFound):
        make.job(their_simulation, tenant_id=tenant_id)
    stored = database.read(lambda uow: uow.scenarios.get(other_tenant_id, their_scenario.id))
    assert stored.simulation_count == 0


def test_a_lost_connection_is_replaced_at_checkout_when_it_must_change_tenant(
    postgres_url: str, make: Factory, tenant_id, other_tenant_id
):
    # No retries: the checkout itself must hand out a live connection.
    database = Database(
        postgres_url, pool_size=1, retry=RetryPolicy(max_attempts=1, connection_seconds=0)
    )
    theirs = make.scenario(other_tenant_id)
    try:
        with acting_for(tenant_id):
            pid = database.read(
                lambda uow: uow._connection.execute(text("SELECT pg_backend_pid()")).scalar()
            )
        with make.database.engine.connect() as owner:
            owner.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

        with acting_for(other_tenant_id):
            found = database.read(lambda uow: uow.scenarios.get(other_tenant_id, theirs.id))

        assert found.id == theirs.id
    finally:
        database.dispose()


def test_downgrading_the_wall_removes_policies_and_tenant_keys_and_upgrading_again_works(
    empty_postgres_url: str,
):
    database = Database(empty_postgres_url)
    try:
        database.migrate()
        config = _alembic_config()
        with database.engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0017")
            connection.commit()

        with database.engine.connect() as connection:
            policies = connection.execute(text("SELECT count(*) FROM pg_policies")).scalar()
            secured = connection.execute(
                text("SELECT count(*) FROM pg_class WHERE relrowsecurity")
            ).scalar()
            keys = inspect(connection).get_foreign_keys("config_revisions")
            granted = connection.execute(
                text(
                    "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = :r"
                ),
                {"r": SERVICE_ROLE},
            ).scalar()
        assert (policies, secured, granted) == (0, 0, 0)
        assert [key["constrained_columns"] for key in keys] == [["simulation_id"]]

        database.migrate()
        assert database.current_revision() == head_revision()
        with database.engine.connect() as connection:
            keys = inspect(connection).get_foreign_keys("config_revisions")
        assert [key["constrained_columns"] for key in keys] == [["tenant_id", "simulation_id"]]
    finally:
        database.dispose()


def test_a_connection_that_serves_the_same_tenant_again_sends_no_setting(
    one_connection: Database, make: Factory, tenant_id, other_tenant_id, monkeypatch
):
    # The setting is sent on the driver connection, out of sight of statement counters
    # (tests/integration/test_round_trips.py): counted here instead.
    sent: list[tuple] = []
    real = database_module._in_autocommit

    def counting(dbapi_connection, statement, parameters):
        sent.append(parameters)
        return real(dbapi_connection, statement, parameters)

    monkeypatch.setattr(database_module, "_in_autocommit", counting)
    scenario = make.scenario(tenant_id)

    def read(uow):
        return uow.scenarios.get(tenant_id, scenario.id)

    with acting_for(tenant_id):
        for _ in range(3):
            one_connection.read(read)
    setting_sends = [p for p in sent if p]
    assert setting_sends == [(TENANT_SETTING, tenant_id)]

    with acting_for(other_tenant_id):
        one_connection.read(lambda uow: uow.scenarios.get_many(other_tenant_id, []))
    with acting_for(other_tenant_id):
        one_connection.read(lambda uow: uow.scenarios.get_many(other_tenant_id, []))
    assert [p for p in sent if p] == [
        (TENANT_SETTING, tenant_id),
        (TENANT_SETTING, other_tenant_id),
    ]


def test_every_table_of_tenant_rows_has_the_policy_and_is_granted_to_the_service_role(database):
    # A later migration adding a tenant table must wall it too; this names the one it forgot.
    tenant_tables = {table.name for table in metadata.tables.values() if "tenant_id" in table.c} | {
        "tenants"
    }
    with database.engine.connect() as connection:
        walled = set(
            connection.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_policies p "
                    "ON p.tablename = c.relname AND p.schemaname = current_schema() "
                    "WHERE c.relrowsecurity AND c.relnamespace = current_schema()::regnamespace"
                )
            ).scalars()
        )
        granted = set(
            connection.execute(
                text(
                    "SELECT table_name FROM information_schema.role_table_grants "
                    "WHERE grantee = :role AND privilege_type = 'SELECT'"
                ),
                {"role": SERVICE_ROLE},
            ).scalars()
        )
    assert tenant_tables - walled == set()
    assert tenant_tables - granted == set()
    # Nothing else is open to the role: service secrets and periodic runs stay the owner's.
    assert granted - tenant_tables == set()


def test_the_config_search_behind_the_wall_finds_only_the_callers_tenants_matches(
    database, make: Factory, tenant_id, other_tenant_id
):
    """Migration 0020's search runs as the owner, so it applies the wall itself."""
    from storage import ConfigRevision

    def with_config(tenant: str) -> str:
        sim = make.simulation(tenant)
        revision = ConfigRevision(tenant, sim.id, 1, {"model": "walled"}, [], make.now, "k", "EDIT")
        database.run(lambda uow: uow.revisions.add(revision))
        return sim.id

    mine, theirs = with_config(tenant_id), with_config(other_tenant_id)

    def matches(uow) -> set[str]:
        rows = uow._connection.execute(
            text("SELECT simulation_id FROM simconfig_config_matches(CAST(:d AS jsonb))"),
            {"d": '{"model": "walled"}'},
        )
        return {row[0] for row in rows}

    with acting_for(tenant_id):
        assert database.read(matches) == {mine}
    with acting_for(other_tenant_id):
        assert database.read(matches) == {theirs}
    # The owner bypasses the wall, here as everywhere: its queries filter by tenant themselves.
    assert database.read(matches) >= {mine, theirs}
