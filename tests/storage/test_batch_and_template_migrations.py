"""Migrations 0008 (batch requests) and 0009 (templates) go down and up again cleanly."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect

from storage import Database, sqlite_url_for
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


def _run(database: Database, step, revision: str) -> None:
    config = _alembic_config()
    with database.engine.connect() as connection:
        config.attributes["connection"] = connection
        step(config, revision)
        connection.commit()


def _tables(database: Database) -> set[str]:
    return set(inspect(database.engine).get_table_names())


def test_the_new_tables_come_with_their_migrations_and_go_with_them(fresh):
    fresh.migrate()
    assert {"batch_requests", "templates", "template_revisions"} <= _tables(fresh)

    _run(fresh, command.downgrade, "0008")
    assert "batch_requests" in _tables(fresh)
    assert not {"templates", "template_revisions"} & _tables(fresh)

    _run(fresh, command.downgrade, "0007")
    assert "batch_requests" not in _tables(fresh)

    fresh.migrate()
    assert {"batch_requests", "templates", "template_revisions"} <= _tables(fresh)
