"""The one filter tree the list queries take: built by the service's filter parser, compiled to
SQL by :mod:`storage.repositories.filter_sql` for SQLite and PostgreSQL alike.

Plain values only. A :class:`Comparison` names a field the repository knows (``name``,
``labels``, ``config.agents.role``), an operator and a value already of the field's type
(``datetime`` for times, ``int``/``float`` for numbers, ``str`` otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# = != < <= > >= compare; "contains" is a case-insensitive substring match; "has" is a label key
# being present (value None) or a repeated field holding the value; "in" takes a tuple.
OPERATORS = frozenset({"=", "!=", "<", "<=", ">", ">=", "contains", "has", "in"})

Value = str | int | float | datetime | tuple | None


@dataclass(frozen=True)
class Comparison:
    """``field op value``.

    ``key`` is the label key of a ``labels`` comparison, or for ``config`` (the current
    revision's config document) the path to the value: names, with ``"*"`` for "any element of
    this list" (``("agents", "*", "role")``).
    """

    field: str
    op: str
    value: Value
    key: str | tuple[str, ...] | None = None


@dataclass(frozen=True)
class AllOf:
    """Every item holds (AND)."""

    items: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one item holds (OR)."""

    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Negation:
    """The item does not hold (NOT); a missing value counts as not matching the item."""

    item: Filter


Filter = Comparison | AllOf | AnyOf | Negation
