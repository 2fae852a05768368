"""Opaque page tokens over a keyset (AIP-158).

A token carries the cursor of the last row served, plus the tenant and a hash of
the query it belongs to, so a token reused by another tenant or with other
arguments is rejected with ``INVALID_ARGUMENT`` instead of returning a wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service import errors

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TOKEN_VERSION = 1


def page_size_of(requested: int, field: str = "page_size") -> int:
    """Default 50; values above 1,000 are cut to 1,000; negative values are rejected."""
    if requested < 0:
        raise errors.InvalidArgument.field(field, f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def query_fingerprint(**arguments: Any) -> str:
    """A short hash of the request arguments a token is bound to."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"dt"}:
        return datetime.fromisoformat(value["dt"])
    return value


def encode_page_token(tenant_id: str, fingerprint: str, cursor: tuple) -> str:
    """Makes the opaque token for the page after ``cursor``."""
    payload = {
        "v": _TOKEN_VERSION,
        "t": tenant_id,
        "q": fingerprint,
        "c": [_encode_value(v) for v in cursor],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(
    token: str, tenant_id: str, fingerprint: str, field: str = "page_token"
) -> tuple | None:
    """Returns the cursor in ``token`` (None for an empty token).

    Raises :class:`errors.InvalidArgument` for a malformed token, a token of
    another tenant, or one made for different request arguments.
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION:
            raise ValueError("unknown token version")
        cursor = tuple(_decode_value(v) for v in payload["c"])
        owner, bound_query = payload["t"], payload["q"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
        raise errors.InvalidArgument.field(
            field, "is not a page token issued by this service", reason="PAGE_TOKEN_INVALID"
        ) from None
    if owner != tenant_id:
        raise errors.InvalidArgument.field(
            field, "is not a page token issued by this service", reason="PAGE_TOKEN_INVALID"
        )
    if bound_query != fingerprint:
        raise errors.InvalidArgument.field(
            field,
            "was issued for a request with different arguments; "
            "keep filter, order_by and the other arguments the same while paging",
            reason="PAGE_TOKEN_MISMATCH",
        )
    return cursor


@dataclass(frozen=True)
class Page:
    """One page of a list and the token of the next one (empty on the last page)."""

    items: list
    next_page_token: str


class PageRequest:
    """A list call's paging arguments, checked and resolved.

    ``size`` is the page size to serve, ``after`` the keyset cursor to resume
    from (None on the first page). Fetch ``size + 1`` rows and hand them to
    :meth:`page`, which cuts the extra row off and makes the next token.
    """

    def __init__(self, tenant_id: str, page_size: int, page_token: str, **arguments: Any):
        self.size = page_size_of(page_size)
        self._tenant_id = tenant_id
        self._fingerprint = query_fingerprint(**arguments)
        self.after = decode_page_token(page_token, tenant_id, self._fingerprint)

    @property
    def limit(self) -> int:
        """How many rows to fetch: one more than the page, to learn if another follows."""
        return self.size + 1

    def page(self, rows: list, cursor_of: Callable[[Any], tuple]) -> Page:
        """The page made of ``rows`` (fetched with :attr:`limit`)."""
        if len(rows) <= self.size:
            return Page(items=list(rows), next_page_token="")
        rows = list(rows[: self.size])
        token = encode_page_token(self._tenant_id, self._fingerprint, cursor_of(rows[-1]))
        return Page(items=rows, next_page_token=token)
