"""Bulk loads for the scale figures: a million scenarios is no job for the API.

Rows go straight into the server's tables (``storage.schema``), with the same values the
server writes: UUID ids, UTC timestamps, an etag, JSON labels. Only the columns listed here
are written; any other column the schema has (a counter maintained by the database, say)
takes its default, so the loader keeps working as the schema grows.

PostgreSQL gets ``COPY ... FROM STDIN`` (psycopg 3 streams the rows), SQLite executemany
inserts in one transaction: a million scenarios take about 30 s and 50 s on a 2-core
machine, index upkeep included. Afterwards the
table is analysed, as autovacuum would do to a table that grew this much: measuring a plan
made for the empty table would measure the statistics, not the service.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Engine,
    MetaData,
    Table,
    create_engine,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.pool import NullPool

from storage.schema import config_revisions, scenarios, simulations

BATCH = 10_000


def engine_for(url: str) -> Engine:
    return create_engine(url, poolclass=NullPool)


def _scenario_rows(
    tenant_id: str, count: int, first_create_time: datetime, name_prefix: str
) -> Iterator[dict]:
    for index in range(count):
        moment = first_create_time + timedelta(milliseconds=index)
        yield {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "display_name": f"{name_prefix} {index:07d}",
            "description": "",
            "labels": {},
            "create_time": moment,
            "update_time": moment,
            "etag": uuid.uuid4().hex,
        }


def _simulation_rows(
    tenant_id: str, scenario_id: str, count: int, first_create_time: datetime
) -> Iterator[dict]:
    for index in range(count):
        moment = first_create_time + timedelta(milliseconds=index)
        yield {
            "id": str(uuid.uuid4()),
            "tenant_id": tenant_id,
            "scenario_id": scenario_id,
            "name": f"bulk {index:07d}",
            "prompt": "",
            "labels": {},
            "status": "PENDING",
            "current_revision": 0,
            "create_time": moment,
            "update_time": moment,
            "etag": uuid.uuid4().hex,
        }


RARE_MODEL = "sim-rare-1"


def _configured_simulation_rows(
    tenant_id: str, ids: list[str], first_create_time: datetime
) -> Iterator[dict]:
    for index, simulation_id in enumerate(ids):
        moment = first_create_time + timedelta(milliseconds=index)
        yield {
            "id": simulation_id,
            "tenant_id": tenant_id,
            "name": f"configured {index:07d}",
            "prompt": "",
            "labels": {},
            "status": "COMPLETED_CONFIG",
            "current_revision": 1,
            "create_time": moment,
            "update_time": moment,
            "etag": uuid.uuid4().hex,
        }


def _revision_rows(
    tenant_id: str, ids: list[str], rare_every: int, moment: datetime
) -> Iterator[dict]:
    for index, simulation_id in enumerate(ids):
        rare = index % rare_every == rare_every - 1
        yield {
            "tenant_id": tenant_id,
            "simulation_id": simulation_id,
            "revision": 1,
            "config": {
                "schema_version": 2,
                "title": f"market {index}",
                "objective": "",
                "max_turns": 10 + index % 90,
                "model": RARE_MODEL if rare else f"sim-small-{index % 3}",
                "agents": [
                    {
                        "id": "alice",
                        "name": "Alice",
                        "role": "seller",
                        "persona": "",
                        "attributes": {},
                        "goals": [],
                    },
                    {
                        "id": "bob",
                        "name": "Bob",
                        "role": "buyer",
                        "persona": "",
                        "attributes": {},
                        "goals": [],
                    },
                ],
                "events": [],
                "metrics": [],
            },
            "sources": [],
            "create_time": moment,
            "actor": "bench",
            "origin": "IMPORT",
            "description": "",
        }


def add_configured_simulations(
    engine: Engine, tenant_id: str, count: int, *, rare_every: int = 1000
) -> None:
    """Inserts ``count`` simulations, each with a config revision; one in ``rare_every`` uses
    the model :data:`RARE_MODEL`, the others one of three common ones."""
    first = datetime.now(UTC) - timedelta(hours=3)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    _load(engine, simulations, _configured_simulation_rows(tenant_id, ids, first))
    _load(engine, config_revisions, _revision_rows(tenant_id, ids, rare_every, first))


def _load(engine: Engine, table, rows: Iterator[dict]) -> None:
    first = next(rows, None)
    if first is None:
        return
    columns = list(first)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # COPY in text format: psycopg turns each value into its text form; JSON goes as
            # its text, which the jsonb input function parses.
            driver = connection.connection.driver_connection
            names = ", ".join(columns)
            with (
                driver.cursor() as cursor,
                cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy,
            ):
                for row in _chain(first, rows):
                    copy.write_row([_copy_value(row[c]) for c in columns])
        else:
            batch = []
            for row in _chain(first, rows):
                batch.append(row)
                if len(batch) == BATCH:
                    connection.execute(insert(table), batch)
                    batch = []
            if batch:
                connection.execute(insert(table), batch)
    analyze(engine, table.name)


def _copy_value(value):
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def _chain(first: dict, rest: Iterator[dict]) -> Iterator[dict]:
    yield first
    yield from rest


def analyze(engine: Engine, table_name: str) -> None:
    """Refreshes the planner's statistics (and, on PostgreSQL, the visibility map)."""
    if engine.dialect.name == "postgresql":
        # VACUUM cannot run in a transaction block.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM ANALYZE {table_name}"))
    else:
        with engine.begin() as connection:
            connection.execute(text(f"ANALYZE {table_name}"))


def add_scenarios(
    engine: Engine, tenant_id: str, count: int, first_create_time: datetime, name_prefix: str
) -> None:
    """Inserts ``count`` scenarios, created a millisecond apart from ``first_create_time``."""
    _load(engine, scenarios, _scenario_rows(tenant_id, count, first_create_time, name_prefix))


def add_simulations(engine: Engine, tenant_id: str, scenario_id: str, count: int) -> None:
    """Inserts ``count`` live simulations into one scenario, and keeps its count right.

    When ``scenarios`` has a ``simulation_count`` column, the database is trusted to keep it
    (a trigger fires on COPY as on INSERT); if after the load it does not match the rows, it
    is set here, so the figures never rest on a wrong count.
    """
    first = datetime.now(UTC) - timedelta(hours=2)
    _load(engine, simulations, _simulation_rows(tenant_id, scenario_id, count, first))
    # Reflected, not imported: the column exists in the database whichever code made it.
    stored = Table("scenarios", MetaData(), autoload_with=engine)
    if "simulation_count" not in stored.c:
        return
    live = (
        select(func.count())
        .select_from(simulations)
        .where(simulations.c.scenario_id == scenario_id, simulations.c.delete_time.is_(None))
        .scalar_subquery()
    )
    with engine.begin() as connection:
        connection.execute(
            update(stored)
            .where(stored.c.id == scenario_id, stored.c.simulation_count != live)
            .values(simulation_count=live)
        )
