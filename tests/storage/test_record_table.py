"""A record is its table's column list: a new field needs a column, and nothing else in storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import field, fields, make_dataclass, replace

import pytest
from sqlalchemy import Column, ForeignKey, MetaData, String, Table, literal_column, select, text

from storage import Conflict, NotFound, Scenario, Tenant
from storage.driver_errors import UniqueRule
from storage.repositories.base import RecordTable, SqlRepository
from storage.schema import scenarios, tenants

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


# RecordTables are built when their repository module is imported; the tests below build their
# own, so that what a RecordTable does with its options is checked where a test can see it.


def test_an_update_writes_only_the_row_with_the_records_keys(database, widgets):
    record, columns = widgets
    # Two rows with the same etag: only the keys tell the compare-and-swap which one it is.
    gear = record(id=str(uuid.uuid4()), tenant_id="t", name="gear", color="red", etag="e1")
    cog = replace(gear, id=str(uuid.uuid4()), name="cog")
    for widget in (gear, cog):
        database.run(lambda uow, widget=widget: _Widgets(uow._active(), columns).add(widget))

    database.run(
        lambda uow: _Widgets(uow._active(), columns).update(
            replace(gear, color="blue"), expected_etag="e1"
        )
    )

    stored = database.run(lambda uow: _Widgets(uow._active(), columns).get(cog.id))
    assert (stored.color, stored.etag) == ("red", "e1")


def test_an_update_is_refused_while_a_condition_of_the_table_does_not_hold(database, widgets):
    record, plain = widgets
    table = plain.table
    columns = RecordTable(
        record,
        table,
        keys=("tenant_id", "id"),
        # Without a bound value, as the conditions of the real tables (a precompiled write
        # binds only its record's fields).
        updatable_when=(table.c.color != literal_column("'locked'"),),
    )
    locked = record(id=str(uuid.uuid4()), tenant_id="t", name="gear", color="locked", etag="e1")
    database.run(lambda uow: _Widgets(uow._active(), columns).add(locked))

    with pytest.raises(Conflict):
        database.run(
            lambda uow: _Widgets(uow._active(), columns).update(
                replace(locked, color="blue"), expected_etag="e1"
            )
        )
    stored = database.run(lambda uow: _Widgets(uow._active(), columns).get(locked.id))
    assert stored.color == "locked"


def test_a_table_without_an_etag_has_an_insert_and_no_update():
    columns = RecordTable(Tenant, tenants, keys=("id",))

    assert columns.insert is not None
    with pytest.raises(TypeError, match="no etag"):
        columns.update  # noqa: B018 - the property is what raises


@pytest.fixture
def stamped(database) -> Iterator[tuple[type, RecordTable]]:
    """A throwaway resource whose ``stamp`` the database fills in (a server default)."""
    record = make_dataclass("Stamped", [("id", str), ("stamp", str, field(default=""))])
    metadata = MetaData()
    table = Table(
        f"stamped_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("stamp", String(64), nullable=False, server_default=text("'by the database'")),
    )
    metadata.create_all(database.engine)
    yield record, RecordTable(record, table, keys=("id",), computed=("stamp",))
    metadata.drop_all(database.engine)


def test_columns_the_database_computes_are_not_written_and_come_back_from_the_insert(
    database, stamped
):
    record, columns = stamped
    row = record(id=str(uuid.uuid4()), stamp="from the caller")

    returned = database.run(
        lambda uow: SqlRepository(uow._active())._write(
            columns.insert, columns.insert_values(row), entity="stamped", returning=True
        )
    )

    assert returned == {"id": row.id, "stamp": "by the database"}


@pytest.fixture
def tagged(database) -> Iterator[RecordTable]:
    """A throwaway resource whose rows belong to a tenant (a foreign key to ``tenants``)."""
    record = make_dataclass("Tag", [("id", str), ("tenant_id", str)])
    metadata = MetaData()
    table = Table(
        f"tags_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", String(64), primary_key=True),
        Column("tenant_id", String(64), ForeignKey(tenants.c.id), nullable=False),
    )
    metadata.create_all(database.engine)
    yield RecordTable(record, table, keys=("id",))
    metadata.drop_all(database.engine)


def _add_tag(uow, columns: RecordTable, tag) -> None:
    # A write whose violation ends the unit of work: no savepoint (the option no repository
    # uses today, checked so that it works when one does).
    SqlRepository(uow._active())._execute_guarded(
        columns.insert.statement,
        columns.insert_values(tag),
        entity="tag",
        uniques=(UniqueRule(f"{columns.table.name}_pkey", ("id",), "id", tag.id),),
        parent=("tenant", tag.tenant_id),
        recoverable=False,
    )


def test_a_write_without_a_savepoint_stores_its_row_and_names_a_missing_parent(
    database, tagged, tenant_id
):
    tag = tagged.record(id=str(uuid.uuid4()), tenant_id=tenant_id)
    orphan = tagged.record(id=str(uuid.uuid4()), tenant_id=str(uuid.uuid4()))

    database.run(lambda uow: _add_tag(uow, tagged, tag))
    with pytest.raises(NotFound) as missing:
        database.run(lambda uow: _add_tag(uow, tagged, orphan))

    assert (missing.value.entity, missing.value.id) == ("tenant", orphan.tenant_id)
    table = tagged.table
    with database.engine.connect() as connection:
        stored = connection.execute(select(table.c.id, table.c.tenant_id)).all()
    assert stored == [(tag.id, tenant_id)]
