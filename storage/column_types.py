"""Column types shared by the table definitions and the migrations."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always returned timezone-aware.

    SQLite has no time zones and hands back naive values; PostgreSQL returns them in the
    session's zone. Both are normalised to UTC so callers compare like with like. Naive input is
    taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock digits only, so drop the zone after converting to UTC;
        # keeping every value in UTC also makes SQLite's text comparison order correct.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type(*, nullable_as_sql_null: bool = True) -> TypeEngine:
    """JSON on SQLite, JSONB on PostgreSQL; Python None is stored as SQL NULL, not JSON null."""
    return JSON(none_as_null=nullable_as_sql_null).with_variant(
        JSONB(none_as_null=nullable_as_sql_null), "postgresql"
    )


def autoincrement_id() -> TypeEngine:
    """BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY auto-increments."""
    return BigInteger().with_variant(Integer(), "sqlite")
