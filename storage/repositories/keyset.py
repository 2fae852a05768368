"""Query building shared by the listable repositories: keyset pages and their ordering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer, Select, Table, bindparam, literal, tuple_


def keyset_page(
    statement: Select[Any],
    table: Table,
    sort_column: Any,
    *,
    descending: bool,
    after: tuple | None,
    limit: int,
) -> Select[Any]:
    """Order by (sort column, id) and start strictly after the cursor; never uses OFFSET.

    The id breaks ties on the sort value, so rows with equal values are neither skipped nor
    repeated across pages.
    """
    id_column = table.c.id
    if after is not None:
        value, last_id = after
        # Typed literals so the cursor value goes through the column's bind processing
        # (UTC normalisation of datetimes on SQLite).
        cursor = tuple_(literal(value, sort_column.type), literal(last_id, id_column.type))
        statement = statement.where(_beyond(sort_column, id_column, cursor, descending))
    return _ordered(statement, sort_column, id_column, descending).limit(limit)


def bound_keyset_page(
    statement: Select[Any], table: Table, sort_column: Any, *, descending: bool, after: bool
) -> Select[Any]:
    """:func:`keyset_page` with the cursor and the size left as bind parameters.

    For a statement compiled once and run for every page: ``after_value`` and ``after_id``
    (only when ``after``) hold the cursor, ``limit`` the page size.
    """
    id_column = table.c.id
    if after:
        cursor = tuple_(
            bindparam("after_value", type_=sort_column.type),
            bindparam("after_id", type_=id_column.type),
        )
        statement = statement.where(_beyond(sort_column, id_column, cursor, descending))
    ordered = _ordered(statement, sort_column, id_column, descending)
    return ordered.limit(bindparam("limit", type_=Integer))


def _beyond(sort_column: Any, id_column: Any, cursor: Any, descending: bool) -> Any:
    row = tuple_(sort_column, id_column)
    return row < cursor if descending else row > cursor


def _ordered(statement: Select[Any], sort_column: Any, id_column: Any, descending: bool):
    if descending:
        return statement.order_by(sort_column.desc(), id_column.desc())
    return statement.order_by(sort_column.asc(), id_column.asc())


def sort_column(table: Table, order_by: str, allowed: Sequence[str]) -> Any:
    """Return the column to order by; ValueError for an ordering the repository does not offer."""
    if order_by not in allowed:
        raise ValueError(f"cannot order by {order_by!r}; expected one of {list(allowed)}")
    return table.c[order_by]
