"""Migrations that carry data: the stored simulation counts are backfilled exactly."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy
from alembic import command
from sqlalchemy import text

from storage import Database, head_revision, sqlite_url_for
from storage.database import _alembic_config


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request, tmp_path):
    if request.param == "sqlite":
        url = sqlite_url_for(tmp_path)
    else:
        url = request.getfixturevalue("empty_postgres_url")
    database = Database(url)
    yield database
    database.dispose()


def _upgrade(database: Database, revision: str) -> None:
    config = _alembic_config()
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()


def test_upgrading_backfills_each_scenarios_live_simulation_count(fresh):
    _upgrade(fresh, "0004")
    now = datetime.now(UTC)
    scenario_ids = [str(uuid.uuid4()) for _ in range(2)]
    with fresh.engine.begin() as connection:
        for index, scenario_id in enumerate(scenario_ids):
            connection.execute(
                text(
                    "INSERT INTO scenarios (id, tenant_id, display_name, description, labels, "
                    "create_time, update_time, etag) VALUES (:id, 't', :name, '', '{}', :now, "
                    ":now, 'e')"
                ),
                {"id": scenario_id, "name": f"s{index}", "now": now},
            )
        # Three live simulations in the first scenario, one deleted, none in the second.
        for deleted in (None, None, None, now):
            connection.execute(
                text(
                    "INSERT INTO simulations (id, tenant_id, scenario_id, name, prompt, labels, "
                    "status, current_revision, create_time, update_time, delete_time, etag) "
                    "VALUES (:id, 't', :scenario, 'n', '', '{}', 'PENDING', 0, :now, :now, "
                    ":deleted, 'e')"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "scenario": scenario_ids[0],
                    "now": now,
                    "deleted": deleted,
                },
            )

    fresh.migrate()

    with fresh.engine.connect() as connection:
        counts = dict(connection.execute(text("SELECT id, simulation_count FROM scenarios")).all())
    assert counts == {scenario_ids[0]: 3, scenario_ids[1]: 0}


def test_upgrading_to_deletion_events_keeps_the_events_and_never_reuses_an_event_id(fresh):
    _upgrade(fresh, "0014")
    now = datetime.now(UTC)
    with fresh.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO simulations (id, tenant_id, name, prompt, labels, status, "
                "current_revision, create_time, update_time, etag) VALUES ('s', 't', 'n', '', "
                "'{}', 'PENDING', 0, :now, :now, 'e')"
            ),
            {"now": now},
        )
        for _ in range(3):
            connection.execute(
                text(
                    "INSERT INTO simulation_events (tenant_id, simulation_id, kind, actor, "
                    "create_time, reason) VALUES ('t', 's', 'CREATED', 'k', :now, '')"
                ),
                {"now": now},
            )
        ids = list(connection.execute(text("SELECT id FROM simulation_events")).scalars())
        # The newest event is gone: its id must not be handed out again.
        connection.execute(text("DELETE FROM simulation_events WHERE id = :id"), {"id": max(ids)})

    fresh.migrate()

    with fresh.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO simulation_events (tenant_id, simulation_id, kind, actor, "
                "create_time, reason) VALUES ('t', 's', 'CREATED', 'k', :now, '')"
            ),
            {"now": now},
        )
        after = list(
            connection.execute(text("SELECT id FROM simulation_events ORDER BY id")).scalars()
        )
    assert after[:2] == sorted(ids)[:2]
    assert after[2] > max(ids)


def test_downgrading_deletion_events_restores_the_foreign_key_and_upgrading_again_works(fresh):
    fresh.migrate()
    now = datetime.now(UTC)
    with fresh.engine.begin() as connection:
        for simulation_id in ("kept", "gone"):
            connection.execute(
                text(
                    "INSERT INTO simulations (id, tenant_id, name, prompt, labels, status, "
                    "current_revision, create_time, update_time, etag) VALUES (:id, 't', 'n', "
                    "'', '{}', 'PENDING', 0, :now, :now, 'e')"
                ),
                {"id": simulation_id, "now": now},
            )
            for kind in ("CREATED", "DELETED"):
                connection.execute(
                    text(
                        "INSERT INTO simulation_events (tenant_id, simulation_id, kind, actor, "
                        "create_time, reason) VALUES ('t', :id, :kind, 'k', :now, '')"
                    ),
                    {"id": simulation_id, "kind": kind, "now": now},
                )
        connection.execute(text("DELETE FROM simulations WHERE id = 'gone'"))

    config = _alembic_config()
    with fresh.engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0014")
        connection.commit()

    with fresh.engine.connect() as connection:
        left = connection.execute(
            text("SELECT simulation_id, kind FROM simulation_events ORDER BY id")
        ).all()
        keys = sqlalchemy.inspect(connection).get_foreign_keys("simulation_events")
    assert [tuple(row) for row in left] == [("kept", "CREATED")]
    assert [key["referred_table"] for key in keys] == ["simulations"]
    fresh.migrate()
    assert fresh.current_revision() == head_revision()


def _add_event(connection, simulation_id: str, reason: str) -> None:
    connection.execute(
        text(
            "INSERT INTO simulation_events (tenant_id, simulation_id, kind, actor, create_time, "
            "reason) VALUES ('t', :id, 'STATUS_CHANGED', 'k', :now, :reason)"
        ),
        {"id": simulation_id, "now": datetime.now(UTC), "reason": reason},
    )


def _events_by_id(database: Database) -> list[tuple[int, str]]:
    with database.engine.connect() as connection:
        rows = connection.execute(text("SELECT id, reason FROM simulation_events ORDER BY id"))
        return [tuple(row) for row in rows]


def test_event_ids_keep_growing_across_the_move_to_transaction_ids_and_back(
    empty_postgres_url,
):
    """Migration 0022: events written after it come after those before, and so on downgrade.

    The sequence is pushed far ahead first, as a long-lived database's would be, so the new
    ids must start above it rather than at the transaction id alone.
    """
    database = Database(empty_postgres_url)
    try:
        _upgrade(database, "0021")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO simulations (id, tenant_id, name, prompt, labels, status, "
                    "current_revision, create_time, update_time, etag) VALUES ('s', 't', 'n', "
                    "'', '{}', 'PENDING', 0, now(), now(), 'e')"
                )
            )
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('simulation_events', 'id'), "
                    "4000000000000000)"
                )
            )
            _add_event(connection, "s", "before 0022")
        database.migrate()
        with database.engine.begin() as connection:
            _add_event(connection, "s", "after 0022")
        config = _alembic_config()
        with database.engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0021")
            connection.commit()
        with database.engine.begin() as connection:
            _add_event(connection, "s", "after the downgrade")
        events = _events_by_id(database)
        assert [reason for _, reason in events] == [
            "before 0022",
            "after 0022",
            "after the downgrade",
        ]
        assert events[0][0] > 4000000000000000
        database.migrate()
        assert database.current_revision() == head_revision()
    finally:
        database.dispose()


def test_configs_are_compressed_with_lz4_from_migration_0023_and_pglz_again_after_it(
    empty_postgres_url,
):
    database = Database(empty_postgres_url)

    def methods() -> dict[str, str]:
        with database.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = "
                    "'config_revisions'::regclass AND attname IN ('config', 'sources')"
                )
            )
            return {name: method for name, method in rows}

    try:
        database.migrate()
        assert methods() == {"config": "l", "sources": "l"}
        config = _alembic_config()
        with database.engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0022")
            connection.commit()
        assert methods() == {"config": "p", "sources": "p"}
    finally:
        database.dispose()
