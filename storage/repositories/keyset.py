"""Query building shared by the listable repositories: keyset pages and their ordering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Table, literal, tuple_


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
        row = tuple_(sort_column, id_column)
        # Typed literals so the cursor value goes through the column's bind processing
        # (UTC normalisation of datetimes on SQLite).
        cursor = tuple_(literal(value, sort_column.type), literal(last_id, id_column.type))
        statement = statement.where(row < cursor if descending else row > cursor)
    if descending:
        statement = statement.order_by(sort_column.desc(), id_column.desc())
    else:
        statement = statement.order_by(sort_column.asc(), id_column.asc())
    return statement.limit(limit)


def sort_column(table: Table, order_by: str, allowed: Sequence[str]) -> Any:
    """Return the column to order by; ValueError for an ordering the repository does not offer."""
    if order_by not in allowed:
        raise ValueError(f"cannot order by {order_by!r}; expected one of {list(allowed)}")
    return table.c[order_by]
