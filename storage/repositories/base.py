"""Shared plumbing of the SQL repositories: one connection, translated errors, savepoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable
from sqlalchemy.exc import IntegrityError

from storage.translate import UniqueRule, driver_errors, integrity_error


class SqlRepository:
    """Base of the repositories: runs statements on the unit of work's connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _execute(self, statement: Executable) -> CursorResult[Any]:
        with driver_errors():
            return self._connection.execute(statement)

    def _execute_guarded(
        self,
        statement: Executable,
        *,
        entity: str,
        uniques: Sequence[UniqueRule] = (),
        parent: tuple[str, str] | None = None,
    ) -> CursorResult[Any]:
        """Run a write that may violate a constraint.

        The savepoint matters on PostgreSQL: a failed statement aborts the whole transaction,
        and callers routinely catch AlreadyExists and keep going (e.g. read the existing row).
        """
        with driver_errors():
            try:
                with self._connection.begin_nested():
                    return self._connection.execute(statement)
            except IntegrityError as exc:
                raise integrity_error(exc, entity, uniques, parent) from exc
