"""A small, strict parser for the AIP-160 filter subset the list RPCs accept.

Grammar: ``condition (AND condition)*`` where a condition is
``FIELD = VALUE``, ``FIELD != VALUE`` is not supported, ``FIELD : VALUE`` (contains /
has) or ``labels.KEY : *`` (has key). VALUE is a double-quoted string (with ``\\"``
escapes) or a bare word. Anything else is ``INVALID_ARGUMENT`` naming ``filter``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.domain import errors
from service.domain.validation import is_label_key

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<op>=|:)
      | (?P<word>[A-Za-z0-9_.\-*]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    """One ``field op value`` term; ``value`` is None for ``labels.KEY : *``."""

    field: str
    op: str
    value: str | None


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        # lastgroup is never None for a match (every alternative is a named group); checking it
        # tells the type checker so.
        if match is None or match.end() == position or match.lastgroup is None:
            raise _error(f"unexpected character at position {position}: {text[position:][:10]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        if kind == "string":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        tokens.append((kind, value))
        position = match.end()
    return tokens


def _error(description: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.field("filter", description, reason="FILTER_INVALID")


def parse_filter(text: str, fields: set[str]) -> list[Condition]:
    """Parses ``text``; ``fields`` are the plain field names allowed (``labels.*`` always is)."""
    if len(text) > 2000:
        raise _error("must be at most 2000 characters")
    if "\x00" in text:
        raise _error("must not contain NUL characters")
    tokens = _tokens(text)
    conditions: list[Condition] = []
    index = 0
    while index < len(tokens):
        if conditions:
            if tokens[index] != ("word", "AND"):
                raise _error(f"expected AND between conditions, got {tokens[index][1]!r}")
            index += 1
        if index + 3 > len(tokens):
            raise _error("incomplete condition: expected FIELD = VALUE or FIELD : VALUE")
        (field_kind, field), (op_kind, op), (value_kind, value) = tokens[index : index + 3]
        index += 3
        if field_kind != "word" or op_kind != "op" or value_kind not in {"word", "string"}:
            raise _error("expected FIELD = VALUE or FIELD : VALUE")
        if field.startswith("labels."):
            key = field[len("labels.") :]
            if not is_label_key(key):
                raise _error(f"invalid label key {key!r}")
            if value_kind == "word" and value == "*":
                if op != ":":
                    raise _error("use labels.KEY : * to test that a label is present")
                conditions.append(Condition(field, ":", None))
                continue
        elif field not in fields:
            allowed = ", ".join(sorted(fields | {"labels.KEY"}))
            raise _error(f"unknown field {field!r}; filterable fields are {allowed}")
        if value_kind == "word" and value in {"AND", "OR", "NOT"}:
            raise _error(f"expected a value after {op!r}")
        conditions.append(Condition(field, op, value))
    return conditions


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
