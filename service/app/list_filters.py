"""The AIP-160 filter language of ListSimulations and ListScenarios, and ``order_by``.

One grammar (below, parsed by lark) gives one tree; :func:`parse_filter` checks it against the
list's :class:`FilterField` catalogue and returns the :mod:`storage.filter_tree` filter that
both database engines compile. What it accepts::

    status = RUNNING AND (labels.team = "risk" OR NOT labels.env : *)
    create_time > "2026-01-01T00:00:00Z" AND config.max_turns >= 20
    config.model = "sim-large-1" AND config.agents.role = "buyer"

- ``AND``, ``OR``, ``NOT`` (or ``-``) and parentheses. As AIP-160 says, ``OR`` binds tighter
  than ``AND``: ``a AND b OR c`` is ``a AND (b OR c)``.
- ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` on strings, numbers, enums (in lifecycle order)
  and timestamps (RFC 3339, quoted, with a zone).
- ``:`` (has): ``labels.KEY : *`` (the label is set), ``labels : KEY`` (same),
  ``labels.KEY : VALUE`` (equals), ``NAME : "text"`` (case-insensitive substring of a name),
  and on config lists ``config.agents.role : "buyer"`` (some agent's role is "buyer", as
  ``=`` is).
- Values are double-quoted strings (``\\"`` escapes) or bare words (``RUNNING``, ``20``).

Every mistake is ``INVALID_ARGUMENT`` on ``filter`` naming its column (1-based): unknown
fields, a value of the wrong type, an operator a field does not take, bad syntax.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import lark

import storage
from service.domain import errors
from service.domain.validation import is_label_key

MAX_FILTER_CHARS = 2000
# A bound on the work one filter can ask of the database.
MAX_COMPARISONS = 50
MAX_DEPTH = 20

_GRAMMAR = r"""
?start: conjunction
?conjunction: disjunction (_AND disjunction)*
?disjunction: negation (_OR negation)*
?negation: _NOT negation -> negation
         | _MINUS negation -> negation
         | "(" conjunction ")" -> group
         | restriction
restriction: member COMPARATOR value
member: NAME ("." NAME)*
?value: STRING -> string
      | WORD -> word
      | "*" -> any

_AND: "AND"
_OR: "OR"
_NOT: "NOT"
_MINUS: "-"
COMPARATOR: "<=" | ">=" | "!=" | "=" | "<" | ">" | ":"
NAME: /[A-Za-z_][A-Za-z0-9_-]*/
WORD: /[A-Za-z0-9_.+-]+/
STRING: /"(?:[^"\\]|\\.)*"/

%import common.WS
%ignore WS
"""

_ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
_EQUALITY_OPS = frozenset({"=", "!="})


@dataclass(frozen=True)
class FilterField:
    """A field a list filter may name, and how its values are read.

    ``kind``: ``string``, ``id`` (string, = and != only), ``enum`` (``values`` in order),
    ``integer``, ``number``, ``timestamp``, ``labels`` (a map of strings) or ``config`` (a value
    in the current config at ``path``; ``"*"`` steps are lists and the value kind is
    ``value_kind``). ``contains``: ``:`` is a substring match.
    """

    kind: str
    values: tuple[str, ...] = ()
    path: tuple[str, ...] = ()
    value_kind: str = "string"
    contains: bool = False

    @property
    def repeated(self) -> bool:
        """True for config values inside a list (``:`` means "some element is")."""
        return "*" in self.path


def config_fields(paths: Mapping[str, str]) -> dict[str, FilterField]:
    """Catalogue entries for config fields: ``{"agents.role": "string"}`` → ``config.agents.role``.

    Which path segments are lists is given by a ``[]`` suffix: ``agents[].role``.
    """
    catalogue = {}
    for spelled, value_kind in paths.items():
        steps: list[str] = []
        for part in spelled.split("."):
            if part.endswith("[]"):
                steps += [part[:-2], "*"]
            else:
                steps.append(part)
        name = "config." + spelled.replace("[]", "")
        catalogue[name] = FilterField("config", path=tuple(steps), value_kind=value_kind)
    return catalogue


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(_GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def parse_filter(text: str, fields: Mapping[str, FilterField]) -> storage.Filter | None:
    """The storage filter of ``text`` (None when blank), checked against ``fields``."""
    if len(text) > MAX_FILTER_CHARS:
        raise _error(f"must be at most {MAX_FILTER_CHARS} characters")
    if "\x00" in text:
        raise _error("must not contain NUL characters")
    if not text.strip():
        return None
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedCharacters as caught:
        raise _error(
            f"unexpected character {text[caught.pos_in_stream or 0]!r} at column {caught.column}"
        ) from None
    except lark.exceptions.UnexpectedEOF:
        raise _error(f"incomplete filter: it ends early at column {len(text) + 1}") from None
    except lark.exceptions.UnexpectedToken as caught:
        token = caught.token
        if token.type == "$END":
            raise _error(f"incomplete filter: it ends early at column {len(text) + 1}") from None
        raise _error(f"unexpected {str(token)!r} at column {token.column}") from None
    builder = _Builder(fields)
    return builder.build(tree, 0)


class _Builder:
    """Turns the parse tree into the storage filter, checking fields, operators and values."""

    def __init__(self, fields: Mapping[str, FilterField]):
        self._fields = fields
        self._comparisons = 0

    def build(self, tree: lark.Tree, depth: int) -> storage.Filter:
        if depth > MAX_DEPTH:
            raise _error(f"nests deeper than {MAX_DEPTH} levels at column {tree.meta.column}")
        if tree.data == "conjunction":
            return storage.AllOf(tuple(self.build(child, depth + 1) for child in tree.children))
        if tree.data == "disjunction":
            return storage.AnyOf(tuple(self.build(child, depth + 1) for child in tree.children))
        if tree.data == "group":
            return self.build(tree.children[0], depth + 1)
        if tree.data == "negation":
            return storage.Negation(self.build(tree.children[0], depth + 1))
        self._comparisons += 1
        if self._comparisons > MAX_COMPARISONS:
            raise _error(f"has more than {MAX_COMPARISONS} comparisons (column {tree.meta.column})")
        return self._restriction(tree)

    def _restriction(self, tree: lark.Tree) -> storage.Comparison:
        # The grammar makes the middle child the comparator token.
        member, comparator, value = cast(tuple[Any, lark.Token, Any], tuple(tree.children))
        names = [str(token) for token in member.children]
        column = member.meta.column
        name = ".".join(names)
        op = str(comparator)
        at = f"at column {comparator.column}"
        if names[0] == "labels" and "labels" in self._fields:
            return _labels(names, op, value, column, at)
        spec = self._fields.get(name)
        if spec is None:
            allowed = ", ".join(sorted(set(self._fields) - {"labels"} | {"labels.KEY"}))
            raise _error(f"unknown field {name!r} at column {column}; filterable fields: {allowed}")
        if value.data == "any":
            raise _error(f"'*' {at} applies only to labels.KEY : *")
        raw = _text_of(value)
        if op == ":":
            if spec.contains:
                return storage.Comparison(name, "contains", raw)
            if spec.kind == "config" and spec.repeated:
                op = "="
            else:
                raise _error(
                    f"{name} does not take ':' ({at}); ':' applies to labels, lists and names"
                )
        if spec.kind == "config":
            typed = _typed(spec.value_kind, name, raw, value, at)
            return storage.Comparison("config", op, typed, key=spec.path)
        if spec.kind == "enum":
            return _enum(spec, name, op, raw, at)
        if spec.kind == "id" and op not in _EQUALITY_OPS:
            raise _error(f"{name} takes only = and != ({at})")
        return storage.Comparison(name, op, _typed(spec.kind, name, raw, value, at))


def _labels(
    names: list[str], op: str, value: lark.Tree, column: int, at: str
) -> storage.Comparison:
    if len(names) == 1:
        # labels : KEY, the AIP spelling of "has the key".
        if op != ":" or value.data == "any":
            raise _error(f"use labels.KEY = VALUE or labels : KEY ({at})")
        key = _text_of(value)
        _check_label_key(key, column)
        return storage.Comparison("labels", "has", None, key=key)
    if len(names) != 2:
        raise _error(f"a label is named labels.KEY (column {column})")
    key = names[1]
    _check_label_key(key, column)
    if value.data == "any":
        if op != ":":
            raise _error(f"use labels.KEY : * to test that a label is set ({at})")
        return storage.Comparison("labels", "has", None, key=key)
    if op in _ORDERING_OPS:
        raise _error(f"labels take =, != and : ({at})")
    return storage.Comparison("labels", "=" if op == ":" else op, _text_of(value), key=key)


def _check_label_key(key: str, column: int) -> None:
    if not is_label_key(key):
        raise _error(f"invalid label key {key!r} at column {column}")


def _enum(spec: FilterField, name: str, op: str, raw: str, at: str) -> storage.Comparison:
    if raw not in spec.values:
        raise _error(f"unknown {name} {raw!r} ({at}); expected one of {', '.join(spec.values)}")
    if op in _EQUALITY_OPS:
        return storage.Comparison(name, op, raw)
    position = spec.values.index(raw)
    chosen = {
        "<": spec.values[:position],
        "<=": spec.values[: position + 1],
        ">": spec.values[position + 1 :],
        ">=": spec.values[position:],
    }[op]
    return storage.Comparison(name, "in", tuple(chosen))


def _typed(kind: str, name: str, raw: str, value: lark.Tree, at: str):
    quoted = value.data == "string"
    if kind in ("string", "id"):
        return raw
    if kind in ("integer", "number"):
        if quoted:
            raise _error(f"{name} is a number; write it unquoted ({at})")
        try:
            number = int(raw) if re.fullmatch(r"[+-]?\d+", raw) else float(raw)
        except ValueError:
            raise _error(f"{name} is a number, not {raw!r} ({at})") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise _error(f"{name} must be a finite number ({at})")
        if isinstance(number, int) and abs(number) >= 2**63:
            raise _error(f"{name} is out of range ({at})")
        if kind == "integer" and isinstance(number, float):
            raise _error(f"{name} is a whole number, not {raw!r} ({at})")
        return number
    if kind == "timestamp":
        moment = None
        if quoted and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", raw):
            try:
                moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError:
                moment = None
        if moment is None:
            raise _error(
                f'{name} is a timestamp: write it quoted in RFC 3339, e.g. "2026-01-01T00:00:00Z"'
                f" ({at})"
            )
        return moment
    raise ValueError(f"unknown field kind {kind!r}")


def _text_of(value: lark.Tree) -> str:
    token = str(value.children[0])
    if value.data == "string":
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    return token


def _error(description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.field("filter", description, reason="FILTER_INVALID")


def parse_order_by(text: str, fields: set[str], default: str = "create_time") -> tuple[str, bool]:
    """Parses ``FIELD`` or ``FIELD desc``/``FIELD asc``; returns (field, descending)."""
    parts = text.split()
    if not parts:
        return default, False
    if (
        len(parts) > 2
        or parts[0] not in fields
        or (len(parts) == 2 and parts[1].lower() not in {"asc", "desc"})
    ):
        raise errors.InvalidArgument.field(
            "order_by",
            f"must be one of {', '.join(sorted(fields))}, optionally followed by ' desc'",
        )
    return parts[0], len(parts) == 2 and parts[1].lower() == "desc"
