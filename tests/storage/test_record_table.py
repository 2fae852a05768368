"""A record is its table's column list: a new field needs a column, and nothing else in storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import field, fields, make_dataclass, replace

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from storage import Conflict, Scenario
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import scenarios

# The fields every resource with a compare-and-swap update has, as Scenario has them.
_BASE_FIELDS = [("id", str), ("tenant_id", str), ("name", str), ("etag", str, field(default=""))]


@pytest.fixture
def widgets(database) -> Iterator[tuple[type, RecordTable]]:
    """A throwaway resource with one field more than its base: ``color``, added as a resource
    would add one: a field on the record and a column in the table, nothing else."""
    record = make_dataclass("Widget", [*_BASE_FIELDS[:3], ("color", str), _BASE_FIELDS[3]])
    metadata = MetaData()
    table = Table(
        f"widgets_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("tenant_id", String(64), nullable=False),
        Column("name", String(64), nullable=False),
        Column("color", String(64), nullable=False),
        Column("etag", String(64), nullable=False),
    )
    metadata.create_all(database.engine)
    yield record, RecordTable(record, table, keys=("tenant_id", "id"), fixed=("name",))
    metadata.drop_all(database.engine)


class _Widgets(SqlRepository):
    """What a repository built on RecordTable does for add and update, and a read."""

    def __init__(self, connection, columns: RecordTable) -> None:
        super().__init__(connection)
        self._columns = columns

    def add(self, widget):
        self._write(self._columns.insert, self._columns.insert_values(widget), entity="widget")
        return widget

    def update(self, widget, *, expected_etag: str):
        written = replace(widget, etag=uuid.uuid4().hex)
        count = self._write(
            self._columns.update,
            self._columns.update_values(written, expected_etag),
            entity="widget",
        )
        if count == 0:
            raise Conflict("widget", widget.id)
        return written

    def get(self, widget_id: str):
        table = self._columns.table
        row = self._execute(select(table).where(table.c.id == widget_id)).one()
        return self._columns.record(**row._mapping)


def test_a_field_added_to_a_record_round_trips_through_add_and_update(database, widgets):
    record, columns = widgets
    widget = record(id=str(uuid.uuid4()), tenant_id="t", name="gear", color="red", etag="e1")

    database.run(lambda uow: _Widgets(uow._active(), columns).add(widget))
    painted = database.run(
        lambda uow: _Widgets(uow._active(), columns).update(
            replace(widget, color="blue"), expected_etag="e1"
        )
    )
    stored = database.run(lambda uow: _Widgets(uow._active(), columns).get(widget.id))

    assert stored.color == "blue" and stored.etag == painted.etag


def test_an_update_writes_nothing_it_was_told_is_fixed_and_checks_the_etag(database, widgets):
    record, columns = widgets
    widget = record(id=str(uuid.uuid4()), tenant_id="t", name="gear", color="red", etag="e1")
    database.run(lambda uow: _Widgets(uow._active(), columns).add(widget))

    with pytest.raises(Conflict):
        database.run(
            lambda uow: _Widgets(uow._active(), columns).update(
                replace(widget, color="x"), expected_etag="stale"
            )
        )
    database.run(
        lambda uow: _Widgets(uow._active(), columns).update(
            replace(widget, name="renamed", color="green"), expected_etag="e1"
        )
    )
    stored = database.run(lambda uow: _Widgets(uow._active(), columns).get(widget.id))

    assert (stored.name, stored.color) == ("gear", "green")  # `name` is fixed at creation


def test_a_record_and_a_table_that_disagree_fail_at_once():
    added = make_dataclass(
        "ScenarioWithColor",
        [("color", str, field(default=""))],
        bases=(Scenario,),
    )

    with pytest.raises(TypeError, match="color"):
        RecordTable(added, scenarios, keys=("tenant_id", "id"))


def test_every_stored_resource_is_declared_field_for_column():
    from storage import records, schema

    pairs = [
        (records.Tenant, schema.tenants),
        (records.ApiKey, schema.api_keys),
        (records.Scenario, schema.scenarios),
        (records.Simulation, schema.simulations),
        (records.ConfigRevision, schema.config_revisions),
        (records.SimulationEvent, schema.simulation_events),
        (records.ArchitectJob, schema.architect_jobs),
    ]
    for record, table in pairs:
        assert {f.name for f in fields(record)} == {c.name for c in table.c}, record.__name__
