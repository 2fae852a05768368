"""Hot statements: Core statements compiled once per dialect and run straight on the cursor.

SQLAlchemy's execution path costs more than the query itself on a one-row read or write: per
call it builds an execution context and a result object, and asks the driver to describe
every column again. A :class:`Query` (SELECT) or :class:`Write` (INSERT, UPDATE, DELETE)
keeps the statement a Core statement (one definition, both engines) but does that work once
per dialect: the SQL text, how bind values are converted, which result processors turn driver
values into Python ones. Each call is then one ``cursor.execute`` and a fetch.

The usual execution events still fire (``before_cursor_execute``/``after_cursor_execute``), so
statement counters and tracing see these statements like any other. Driver errors are raised
as SQLAlchemy's (an IntegrityError stays an IntegrityError); a lost connection is invalidated
so that the pool replaces it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, ResourceClosedError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.expression import ReturnsRows


@dataclass(frozen=True)
class _Plan:
    sql: str
    # Positional drivers (SQLite) take a tuple in this order; named ones (psycopg) a dict.
    positions: tuple[str, ...] | None
    bind_processors: Mapping[str, Callable[[Any], Any]]
    names: tuple[str, ...]
    result_processors: tuple[Callable[[Any], Any] | None, ...]
    # Values the statement itself fixed (SQLite's OFFSET 0 beside a bound LIMIT), already in
    # the driver's form; a caller's parameters never name them.
    fixed: Mapping[str, Any]


_Statement = TypeVar("_Statement", bound=ReturnsRows)


class _Compiled(Generic[_Statement]):
    """A statement with named bind parameters and its per-dialect plans."""

    def __init__(self, statement: _Statement) -> None:
        self._statement = statement
        self._plans: dict[str, _Plan] = {}

    @property
    def statement(self) -> _Statement:
        """The Core statement (for tests and EXPLAIN)."""
        return self._statement

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _compile(self._statement, dialect)
        return plan

    def _run(
        self, connection: Connection, parameters: dict[str, Any], fetch: int | None
    ) -> tuple[_Plan, int, Sequence[Sequence[Any]]]:
        """Runs the statement; returns its plan, row count and up to ``fetch`` rows (None: all)."""
        plan = self._plan(connection.dialect)
        driver_parameters = _driver_parameters(plan, parameters)
        if not connection.in_transaction():
            # What SQLAlchemy's autobegin does before its own first statement: a write unit of
            # work's transaction (SQLite's BEGIN IMMEDIATE included) starts before this one.
            connection.begin()
        dbapi_connection = _driver_connection(connection)
        dispatch = connection.dispatch
        # Listeners (counters, tracing) may keep per-statement state on the context.
        context = SimpleNamespace()
        cursor = dbapi_connection.cursor()
        try:
            sql = plan.sql
            for listener in dispatch.before_cursor_execute:
                listener(connection, cursor, sql, driver_parameters, context, False)
            cursor.execute(sql, driver_parameters)
            rows: Sequence[Sequence[Any]] = ()
            if plan.names:
                rows = cursor.fetchall() if fetch is None else cursor.fetchmany(fetch)
            count = cursor.rowcount
            for listener in dispatch.after_cursor_execute:
                listener(connection, cursor, sql, driver_parameters, context, False)
            return plan, count, rows
        except connection.dialect.loaded_dbapi.Error as exc:
            disconnected = connection.dialect.is_disconnect(exc, dbapi_connection, cursor)
            if disconnected:
                # As SQLAlchemy does on a lost connection: this one is discarded and the pool's
                # others, likely lost too (a restarted server), are replaced as they come back.
                connection.invalidate(exc)
                connection.engine.dispose(close=False)
            raise DBAPIError.instance(
                plan.sql,
                driver_parameters,
                exc,
                connection.dialect.loaded_dbapi.Error,
                connection_invalidated=disconnected,
                dialect=connection.dialect,
            ) from exc
        finally:
            cursor.close()


class Query(_Compiled[ReturnsRows]):
    """A SELECT with named bind parameters, run with :meth:`all` or :meth:`first`."""

    def all(self, connection: Connection, parameters: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row, each as a dict of column name to Python value."""
        plan, _, rows = self._run(connection, parameters, None)
        return [_row(plan, row) for row in rows]

    def first(self, connection: Connection, parameters: dict[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of column name to Python value, or None."""
        plan, _, rows = self._run(connection, parameters, 1)
        return _row(plan, rows[0]) if rows else None


class Write(_Compiled[UpdateBase]):
    """An INSERT, UPDATE or DELETE whose every value is a named bind parameter.

    Build the statement with explicit ``bindparam``s (``insert(t).values(c=bindparam("c"))``):
    it is compiled once, so the columns it writes are fixed.
    """

    def execute(self, connection: Connection, parameters: dict[str, Any]) -> int:
        """Runs it; returns how many rows it matched."""
        _, count, _ = self._run(connection, parameters, None)
        return count

    def returning(
        self, connection: Connection, parameters: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Runs it and returns its RETURNING row; None when it matched no row."""
        plan, _, rows = self._run(connection, parameters, None)
        return _row(plan, rows[0]) if rows else None


def run_together(
    connection: Connection, writes: Sequence[tuple[Write, dict[str, Any]]]
) -> list[tuple[int, list[dict[str, Any]]]]:
    """Runs several writes of one transaction in one round trip where the driver can.

    On PostgreSQL the statements go out together in psycopg's pipeline mode and their results
    come back together; elsewhere they run one after another. Returns each write's row count
    and RETURNING rows, in order. The first failure is raised (as SQLAlchemy's error) and the
    transaction must then be rolled back.
    """
    dbapi_connection = _driver_connection(connection)
    pipeline = getattr(dbapi_connection, "pipeline", None)
    if pipeline is None or not connection.in_transaction():
        results: list[tuple[int, list[dict[str, Any]]]] = []
        for write, parameters in writes:
            plan, count, rows = write._run(connection, parameters, None)
            results.append((count, [_row(plan, row) for row in rows]))
        return results
    plans = [write._plan(connection.dialect) for write, _ in writes]
    dispatch = connection.dispatch
    cursors = []
    sent = []
    try:
        with pipeline():
            for (_, parameters), plan in zip(writes, plans, strict=True):
                driver_parameters = _driver_parameters(plan, parameters)
                context = SimpleNamespace()
                cursor = dbapi_connection.cursor()
                for listener in dispatch.before_cursor_execute:
                    listener(connection, cursor, plan.sql, driver_parameters, context, False)
                cursor.execute(plan.sql, driver_parameters)
                cursors.append(cursor)
                sent.append((plan, driver_parameters, context))
        results = []
        for cursor, (plan, driver_parameters, context) in zip(cursors, sent, strict=True):
            returned = [_row(plan, row) for row in cursor.fetchall()] if plan.names else []
            results.append((cursor.rowcount, returned))
            for listener in dispatch.after_cursor_execute:
                listener(connection, cursor, plan.sql, driver_parameters, context, False)
        return results
    except connection.dialect.loaded_dbapi.Error as exc:
        disconnected = connection.dialect.is_disconnect(exc, dbapi_connection, None)
        if disconnected:
            connection.invalidate(exc)
            connection.engine.dispose(close=False)
        raise DBAPIError.instance(
            "; ".join(plan.sql for plan in plans),
            None,
            exc,
            connection.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnected,
            dialect=connection.dialect,
        ) from exc
    finally:
        for cursor in cursors:
            cursor.close()


def _driver_connection(connection: Connection) -> DBAPIConnection:
    """The driver's connection under ``connection``."""
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is None:
        # Only a pooled connection that was invalidated and not checked out again has none.
        raise ResourceClosedError("the database connection was invalidated")
    return dbapi_connection


def _driver_parameters(plan: _Plan, parameters: dict[str, Any]) -> Any:
    processors = plan.bind_processors
    values = {
        name: processors[name](value) if name in processors else value
        for name, value in parameters.items()
    }
    if plan.fixed:
        values.update(plan.fixed)
    if plan.positions is not None:
        return tuple(values[name] for name in plan.positions)
    return values


def _compile(statement: ReturnsRows, dialect: Dialect) -> _Plan:
    compiled = statement.compile(dialect=dialect)
    if not isinstance(compiled, SQLCompiler):
        raise TypeError(f"{type(statement).__name__} does not compile to SQL")
    # Tuple-valued binds (with a sequence of processors) are not used by these statements.
    bind_processors = {
        name: processor
        for name, processor in compiled._bind_processors.items()
        if isinstance(name, str) and callable(processor)
    }
    positions = tuple(compiled.positiontup or ()) if compiled.positional else None
    # What a SELECT selects, or what an INSERT/UPDATE returns (nothing without RETURNING).
    columns = list(statement.exported_columns)
    names = tuple(column.key for column in columns)
    result_processors = tuple(
        column.type._cached_result_processor(dialect, None) for column in columns
    )
    fixed = {
        name: bind_processors[name](bind.value) if name in bind_processors else bind.value
        for bind, name in compiled.bind_names.items()
        if not bind.required and bind.value is not None
    }
    return _Plan(compiled.string, positions, bind_processors, names, result_processors, fixed)


def _row(plan: _Plan, row: Sequence[Any]) -> dict[str, Any]:
    return {
        name: processor(value) if processor is not None else value
        for name, processor, value in zip(plan.names, plan.result_processors, row, strict=True)
    }
