"""Shared plumbing of the SQL repositories: one connection, translated errors, savepoints."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    CursorResult,
    Executable,
    Result,
    Table,
    bindparam,
    insert,
    update,
)
from sqlalchemy.exc import IntegrityError

from storage.driver_errors import UniqueRule, driver_errors, integrity_error
from storage.queries import Query, Write


class SqlRepository:
    """Base of the repositories: runs statements on the unit of work's connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _execute(
        self,
        statement: Executable,
        parameters: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
    ) -> CursorResult[Any]:
        with driver_errors():
            return self._connection.execute(statement, parameters)

    def _first(self, query: Query, parameters: dict[str, Any]) -> dict[str, Any] | None:
        """The first row of a precompiled hot read, as a dict; None when there is none."""
        with driver_errors():
            return query.first(self._connection, parameters)

    def _all(self, query: Query, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row of a precompiled hot read, each as a dict."""
        with driver_errors():
            return query.all(self._connection, parameters)

    def _write(
        self,
        write: Write,
        parameters: dict[str, Any],
        *,
        entity: str,
        uniques: Sequence[UniqueRule] = (),
        parent: tuple[str, str] | None = None,
        returning: bool = False,
        savepoint: bool = False,
    ) -> Any:
        """Run a precompiled write; constraint violations become AlreadyExists or NotFound.

        Returns the row count, or with ``returning`` the RETURNING row (None when no row
        matched). With ``savepoint`` the unit of work stays usable after a violation (on
        PostgreSQL a failed statement aborts the whole transaction otherwise); without, a
        violation ends the unit of work, and two round trips are saved.
        """

        def run() -> Any:
            if returning:
                return write.returning(self._connection, parameters)
            return write.execute(self._connection, parameters)

        with driver_errors():
            try:
                if not savepoint:
                    return run()
                with self._connection.begin_nested():
                    return run()
            except IntegrityError as exc:
                raise integrity_error(exc, entity, uniques, parent) from exc

    def _execute_guarded(
        self,
        statement: Executable,
        parameters: dict[str, Any] | None = None,
        *,
        entity: str,
        uniques: Sequence[UniqueRule] = (),
        parent: tuple[str, str] | None = None,
        recoverable: bool = True,
    ) -> Result[Any]:
        """Run a write that may violate a constraint; RETURNING rows come fully read.

        ``recoverable`` writes run in a savepoint, so that the unit of work stays usable after
        AlreadyExists or NotFound: on PostgreSQL a failed statement aborts the whole
        transaction otherwise. Writes whose violation always ends the unit of work (a revision
        number taken, a vanished parent) skip it: a savepoint costs two round trips.
        """
        with driver_errors():
            try:
                if not recoverable:
                    return self._connection.execute(statement, parameters)
                with self._connection.begin_nested():
                    result = self._connection.execute(statement, parameters)
                    if result.returns_rows:
                        # RETURNING rows are read before the savepoint is released: SQLite
                        # cannot release it while a statement is still producing rows.
                        return result.freeze()()
                    return result
            except IntegrityError as exc:
                raise integrity_error(exc, entity, uniques, parent) from exc


class RecordTable:
    """A record dataclass and its table, whose columns are exactly the record's fields.

    The one list of a resource's columns is its record: the INSERT writes every field but the
    ``computed`` ones (maintained by the database), the compare-and-swap UPDATE every field
    but those and the ``fixed`` ones (written once, at creation), and rows read back become
    records field by field. Adding a field is a field on the record and a column in the
    schema (and its migration); a record and a table that disagree fail at import.

    The UPDATE is a compare-and-swap on the ``etag`` column, limited to the row with the
    record's ``keys`` (and, with ``updatable_when``, only while those conditions hold).
    """

    def __init__(
        self,
        record: type,
        table: Table,
        *,
        keys: tuple[str, ...],
        fixed: Collection[str] = (),
        computed: Collection[str] = (),
        updatable_when: Sequence[ColumnElement[bool]] = (),
    ) -> None:
        names = [field.name for field in fields(record)]
        columns = {column.name for column in table.c}
        if set(names) != columns:
            raise TypeError(
                f"{record.__name__} and table {table.name} disagree: {sorted(set(names) ^ columns)}"
            )
        self.record = record
        self.table = table
        self.computed = frozenset(computed)
        self.inserted = tuple(name for name in names if name not in self.computed)
        self.updated = tuple(
            name for name in names if name not in self.computed | set(fixed) | set(keys)
        )
        returning = table.c if self.computed else ()
        self.insert = Write(
            insert(table).values(binds_for(table, self.inserted)).returning(*returning)
        )
        # Only resources with an etag are updated (with compare-and-swap) through here.
        self._update = (
            None
            if "etag" not in table.c
            else Write(
                update(table)
                .where(
                    *(table.c[key] == bindparam(f"key_{key}") for key in keys),
                    table.c.etag == bindparam("key_etag"),
                    *updatable_when,
                )
                .values(binds_for(table, self.updated))
                .returning(*returning)
            )
        )
        self.keys = keys

    @property
    def update(self) -> Write:
        """The compare-and-swap UPDATE; TypeError for a table without an ``etag`` column."""
        if self._update is None:
            raise TypeError(f"table {self.table.name} has no etag to update with")
        return self._update

    def insert_values(self, record: Any) -> dict[str, Any]:
        """The INSERT's parameters for ``record``."""
        return {name: getattr(record, name) for name in self.inserted}

    def update_values(self, record: Any, expected_etag: str) -> dict[str, Any]:
        """The compare-and-swap UPDATE's parameters: ``record``'s fields where ``expected_etag``."""
        values = {name: getattr(record, name) for name in self.updated}
        values.update({f"key_{key}": getattr(record, key) for key in self.keys})
        values["key_etag"] = expected_etag
        return values


def binds_for(table: Table, names: Collection[str]) -> dict[str, BindParameter[Any]]:
    """``{column: bindparam(column)}`` for a precompiled INSERT's or UPDATE's values."""
    return {name: bindparam(name, type_=table.c[name].type) for name in names}


def columns_of(record: Any, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A record's fields as column values: its dataclass is the list of columns.

    Shallow on purpose: JSON values are handed to the driver as they are, not deep-copied
    (``dataclasses.asdict`` copies every nested dict and list, which costs more than the write).
    """
    return {
        field.name: getattr(record, field.name)
        for field in fields(record)
        if field.name not in exclude
    }
