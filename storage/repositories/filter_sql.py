"""Compiles a :mod:`storage.filter_tree` filter into one SQL condition, per engine.

Every comparison compiles to a condition that is true or false, never NULL: a missing label, an
unset config value or a simulation without a config simply does not match, and ``NOT`` is the
exact complement of what it negates on both engines.

Config fields are read from the current revision's config document through a correlated
``EXISTS``. On PostgreSQL an equality (or ``:``) becomes JSONB containment (``config @>
'{"agents": [{"role": "buyer"}]}'``), which the GIN index of migration 0011 answers, asked
through ``simconfig_config_matches`` so the tenant wall does not hide the index (migration
0020); other
comparisons, and everything on SQLite, walk the document with the JSON functions
(``jsonb_array_elements`` / ``json_each`` for lists, ``->>`` / ``json_extract`` for values).
Strings order by code point on both engines (``COLLATE "C"`` on PostgreSQL), as SQLite does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    and_,
    cast,
    column,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.types import NullType

from storage.filter_tree import AllOf, AnyOf, Comparison, Filter, Negation
from storage.schema import config_revisions


class FilterField(Protocol):
    """A field a filter can name: it builds the condition of one comparison on itself."""

    def condition(self, comparison: Comparison, dialect: str) -> ColumnElement[bool]:
        """The condition ``comparison`` puts on this field, for the engine ``dialect``."""
        ...


def compile_filter(
    node: Filter | None, fields: Mapping[str, FilterField], dialect: str
) -> ColumnElement[bool]:
    """The SQL condition of ``node`` (TRUE for None); ``fields`` compile each comparison."""
    if node is None:
        return true()
    if isinstance(node, AllOf):
        return and_(*(compile_filter(item, fields, dialect) for item in node.items))
    if isinstance(node, AnyOf):
        return or_(*(compile_filter(item, fields, dialect) for item in node.items))
    if isinstance(node, Negation):
        return not_(compile_filter(node.item, fields, dialect))
    field = fields.get(node.field)
    if field is None:
        raise ValueError(f"cannot filter on {node.field!r}; expected one of {sorted(fields)}")
    return field.condition(node, dialect)


# The fields are built once, when a repository module is imported; their conditions are built
# by ``condition`` each time a filter is compiled. (Identity equality: a column's ``==`` builds
# SQL, so the generated ``__eq__`` would not compare fields.)
@dataclass(frozen=True, eq=False)
class ColumnField:
    """A plain column. ``text``: strings (ordered by code point, ``contains`` allowed).

    ``null_as``: the value a NULL compares as (``""`` for "in no scenario"); without it, a
    NULL never matches.
    """

    column: Any
    text: bool = False
    null_as: Any = None

    def condition(self, comparison: Comparison, dialect: str) -> ColumnElement[bool]:
        """``column op value``: true or false, never NULL."""
        value = comparison.value
        subject = self.column if self.null_as is None else func.coalesce(self.column, self.null_as)
        if comparison.op == "contains":
            return subject.icontains(value, autoescape=True)
        if comparison.op == "in":
            assert isinstance(value, tuple)  # "in" compares with a tuple of values
            return subject.in_(list(value))
        if self.text and dialect == "postgresql" and comparison.op not in ("=", "!="):
            subject = subject.collate("C")
        condition = _compare(subject, comparison.op, value)
        if self.column.nullable and self.null_as is None:
            return func.coalesce(condition, false())
        return condition


@dataclass(frozen=True, eq=False)
class LabelsField:
    """A JSON map of strings: ``labels.KEY = v``, ``labels.KEY : *`` (has the key), …"""

    column: Any

    def condition(self, comparison: Comparison, dialect: str) -> ColumnElement[bool]:
        """The condition on the label ``comparison.key``; a missing label never matches."""
        value = self.column[comparison.key].as_string()
        if comparison.op == "has" and comparison.value is None:
            return value.is_not(None)
        op = "=" if comparison.op == "has" else comparison.op
        if comparison.op == "contains":
            return func.coalesce(value.icontains(comparison.value, autoescape=True), false())
        if dialect == "postgresql" and op not in ("=", "!="):
            value = value.collate("C")
        return func.coalesce(_compare(value, op, comparison.value), false())


@dataclass(frozen=True, eq=False)
class CurrentConfigField:
    """Values inside the config document of the current revision of an ``owner`` row."""

    owner: Table

    def condition(self, comparison: Comparison, dialect: str) -> ColumnElement[bool]:
        """Containment through the GIN index where it applies, else a walk of the document."""
        owner = self.owner
        contained = _containment(comparison, dialect)
        if contained is not None:
            # The GIN index answers containment; behind the tenant wall only through this
            # function (migration 0020), asked once for the matching (simulation, revision).
            matches = (
                func.simconfig_config_matches(cast(literal(contained), JSONB))
                .table_valued(column("simulation_id", String), column("revision", Integer))
                .alias("config_matches")
            )
            # Never NULL: neither the pair (both NOT NULL) nor what the function returns (keys).
            # A bare IN lets the planner start from the few matches (a semi-join).
            pair = tuple_(owner.c.id, owner.c.current_revision)
            return pair.in_(select(matches.c.simulation_id, matches.c.revision))
        revision = config_revisions.alias("current_config")
        condition = _document_condition(revision.c.config, comparison, dialect)
        return exists(
            select(literal(1))
            .select_from(revision)
            .where(
                revision.c.tenant_id == owner.c.tenant_id,
                revision.c.simulation_id == owner.c.id,
                revision.c.revision == owner.c.current_revision,
                condition,
            )
        )


def _containment(comparison: Comparison, dialect: str) -> str | None:
    """The JSON document an equality on PostgreSQL is containment of; None otherwise."""
    op = "=" if comparison.op == "has" else comparison.op
    if dialect != "postgresql" or op != "=":
        return None
    # Containment is what the GIN index (jsonb_path_ops) answers.
    return json.dumps(_nested(tuple(comparison.key or ()), comparison.value))


def _document_condition(document: Any, comparison: Comparison, dialect: str) -> Any:
    path = tuple(comparison.key or ())
    op = "=" if comparison.op == "has" else comparison.op
    return _walk(document, path, op, comparison.value, dialect, 0)


def _nested(path: tuple[str, ...], value: Any) -> Any:
    for step in reversed(path):
        value = [value] if step == "*" else {step: value}
    return value


def _walk(document: Any, path: tuple[str, ...], op: str, value: Any, dialect: str, depth: int):
    """The condition on ``path`` inside ``document``; each ``*`` is an EXISTS over the list."""
    if "*" not in path:
        return _compare(_scalar(document, path, value, dialect), op, value)
    star = path.index("*")
    before, after = path[:star], path[star + 1 :]
    name = f"element_{depth}"
    if dialect == "postgresql":
        source = document[before] if len(before) > 1 else document[before[0]]
        elements = func.jsonb_array_elements(source).table_valued(column("value", JSONB))
    else:
        json_path = "$" + "".join(f".{json.dumps(step)}" for step in before)
        elements = func.json_each(document, json_path).table_valued(column("value", JSON))
    elements = elements.alias(name)
    condition = _walk(elements.c.value, after, op, value, dialect, depth + 1)
    return exists(select(literal(1)).select_from(elements).where(condition))


def _scalar(document: Any, path: tuple[str, ...], value: Any, dialect: str) -> Any:
    """The value at ``path`` (empty: the document itself), typed like ``value``."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if dialect == "postgresql":
        pointer = "{" + ",".join(json.dumps(step) for step in path) + "}"
        text = document.op("#>>", return_type=Text)(cast(literal(pointer), ARRAY(Text)))
        return cast(text, Numeric) if numeric else text.collate("C")
    if not path:
        # json_each's value is already the SQL value of a list element.
        return type_coerce(document, NullType())
    json_path = "$" + "".join(f".{json.dumps(step)}" for step in path)
    # json_extract gives SQL numbers for JSON numbers and text for strings.
    return func.json_extract(document, json_path)


def _compare(subject: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return subject == value
    if op == "!=":
        return subject != value
    if op == "<":
        return subject < value
    if op == "<=":
        return subject <= value
    if op == ">":
        return subject > value
    if op == ">=":
        return subject >= value
    raise ValueError(f"unknown comparison {op!r}")
