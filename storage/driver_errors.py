"""Driver errors (SQLAlchemy, psycopg, sqlite3) mapped to storage errors, at the boundary."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage.errors import AlreadyExists, NotFound, StorageError, Unavailable
from storage.retry import is_transient

_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"


@dataclass(frozen=True)
class UniqueRule:
    """How one unique constraint maps to AlreadyExists.

    PostgreSQL names the violated constraint; SQLite only lists its columns, so both are kept.
    """

    constraint: str
    columns: tuple[str, ...]
    field: str
    value: str


def translate(exc: BaseException) -> StorageError:
    """Return the storage error for a driver error that no caller-specific rule handled."""
    # Messages name only the error type: driver messages can carry SQL and parameters.
    if is_transient(exc):
        return Unavailable(f"database unavailable ({type(exc).__name__})")
    return StorageError(f"database error ({type(exc).__name__})")


@contextmanager
def driver_errors() -> Iterator[None]:
    """Re-raise driver errors from the block as storage errors, keeping the cause chained."""
    try:
        yield
    except StorageError:
        raise
    except (SQLAlchemyError, psycopg.Error, sqlite3.Error) as exc:
        raise translate(exc) from exc


def integrity_error(
    exc: IntegrityError,
    entity: str,
    uniques: Sequence[UniqueRule],
    parent: tuple[str, str] | None,
) -> StorageError:
    """Map a constraint violation to AlreadyExists (unique) or NotFound (missing parent row)."""
    orig = exc.orig
    if isinstance(orig, psycopg.Error):
        if orig.sqlstate == _UNIQUE_VIOLATION:
            name = orig.diag.constraint_name
            for rule in uniques:
                if rule.constraint == name:
                    return AlreadyExists(entity, rule.field, rule.value)
        elif orig.sqlstate == _FOREIGN_KEY_VIOLATION and parent is not None:
            return NotFound(*parent)
    elif isinstance(orig, sqlite3.IntegrityError):
        message = str(orig)
        if message.startswith("UNIQUE constraint failed:"):
            columns = tuple(
                part.strip().rsplit(".", 1)[-1] for part in message.split(":", 1)[1].split(",")
            )
            for rule in uniques:
                if rule.columns == columns:
                    return AlreadyExists(entity, rule.field, rule.value)
        elif message.startswith("FOREIGN KEY constraint failed") and parent is not None:
            return NotFound(*parent)
    return translate(exc)
