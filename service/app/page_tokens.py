"""Opaque page tokens over a keyset (AIP-158).

A token carries the cursor of the last row served, a short hash of the tenant and a
hash of the query it belongs to, so a token reused by another tenant or with other
arguments is rejected with ``INVALID_ARGUMENT`` instead of returning a wrong page.

Tokens are signed (HMAC-SHA256) with a key every server shares (:func:`use_signing_key`:
from ``SIMCONFIG_PAGE_TOKEN_SECRET``, or generated once and stored in the database), so an
edited or forged token is refused before its cursor is even read. Every list still declares
the shape of its cursor (``cursor_types``) and a cursor of any other shape is rejected here,
before it can reach a query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from service.app.conventions import fingerprint
from service.domain import errors

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# List responses stop adding items once their encoded size would pass this budget: under
# the 4 MiB default of ``Settings.max_message_bytes``, with room left for the envelope.
RESPONSE_BUDGET_BYTES = 3 * 1024 * 1024

# Version 2 carries a hash of the tenant id instead of the id itself; version 3 is signed.
_TOKEN_VERSION = 3
_MAX_TOKEN_CHARS = 64 * 1024
_MAX_CURSOR_STRING_CHARS = 1000
_MAX_TIMESTAMP_CHARS = 64
_MAC_BYTES = 16


class _SigningKey:
    """The key tokens are signed with; a random one until the server sets the shared one.

    A server sets a loader instead of a key when the key lives in the database: it is read
    on first use, so a server starts (and reports its health) while the database is down.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._key: bytes | None = secrets.token_bytes(32)
        self._loader: Callable[[], str] | None = None

    def set(self, key: bytes) -> None:
        with self._lock:
            self._key, self._loader = key, None

    def load_with(self, loader: Callable[[], str]) -> None:
        with self._lock:
            self._key, self._loader = None, loader

    def get(self) -> bytes:
        key = self._key
        if key is not None:
            return key
        with self._lock:
            if self._key is None:
                if self._loader is None:
                    raise RuntimeError("no page token signing key: create_server sets one")
                # A failure (the database is down) propagates: the call that needed a token
                # fails as the database's unavailability, and the next one tries again.
                self._key = _derive(self._loader())
            return self._key


def _derive(secret: str) -> bytes:
    if len(secret) < 16:
        raise ValueError("a page token secret needs at least 16 characters")
    return hashlib.sha256(b"simconfig/page-token\0" + secret.encode("utf-8")).digest()


_signing_key = _SigningKey()


def use_signing_key(secret: str) -> None:
    """Signs and checks tokens with ``secret`` from now on (the same on every server)."""
    _signing_key.set(_derive(secret))


def use_signing_key_from(load_secret: Callable[[], str]) -> None:
    """Signs and checks tokens with the secret ``load_secret()`` returns, read on first use."""
    _signing_key.load_with(load_secret)


def new_signing_secret() -> str:
    """A fresh random secret, for the first server to store in the database."""
    return secrets.token_urlsafe(32)


def _mac(payload: bytes) -> bytes:
    return hmac.new(_signing_key.get(), payload, hashlib.sha256).digest()[:_MAC_BYTES]


@dataclass(frozen=True)
class IntRange:
    """Declares an integer cursor value within ``low <= value < high``."""

    low: int
    high: int


# What a cursor value may be declared as: ``str``, ``datetime``, ``int`` (a signed 64-bit
# value) or an :class:`IntRange`.
CursorType = type | IntRange
_INT64 = IntRange(-(2**63), 2**63)


def page_size_of(requested: int, field: str = "page_size") -> int:
    """Default 50; values above 1,000 are cut to 1,000; negative values are rejected."""
    if requested < 0:
        raise errors.InvalidArgument.field(field, f"must not be negative, got {requested}")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def query_fingerprint(**arguments: Any) -> str:
    """A short hash of the request arguments a token is bound to."""
    return fingerprint(**arguments)[:24]


def tenant_tag(tenant_id: str) -> str:
    """A short keyed hash of ``tenant_id``: binds a token to its tenant without showing it."""
    digest = hmac.new(_signing_key.get(), b"tenant\0" + tenant_id.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:16]


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    return value


def _decode_string(value: Any) -> str:
    if type(value) is not str or len(value) > _MAX_CURSOR_STRING_CHARS or "\x00" in value:
        raise ValueError("bad string in cursor")
    value.encode("utf-8")  # lone surrogates raise UnicodeEncodeError
    return value


def _decode_datetime(value: Any) -> datetime:
    if not isinstance(value, dict) or set(value) != {"dt"}:
        raise ValueError("bad timestamp in cursor")
    text = value["dt"]
    if type(text) is not str or len(text) > _MAX_TIMESTAMP_CHARS:
        raise ValueError("bad timestamp in cursor")
    moment = datetime.fromisoformat(text)
    if moment.utcoffset() is None:
        raise ValueError("naive timestamp in cursor")
    return moment.astimezone(UTC)  # OverflowError near year 1 or 9999


def _decode_int(value: Any, bounds: IntRange) -> int:
    if type(value) is not int or not bounds.low <= value < bounds.high:
        raise ValueError("bad integer in cursor")
    return value


def _decode_value(value: Any, declared: CursorType) -> Any:
    if isinstance(declared, IntRange):
        return _decode_int(value, declared)
    if declared is int:
        return _decode_int(value, _INT64)
    if declared is str:
        return _decode_string(value)
    if declared is datetime:
        return _decode_datetime(value)
    raise TypeError(f"unsupported cursor type {declared!r}")


def _decode_cursor(values: Any, cursor_types: Sequence[CursorType]) -> tuple:
    if not isinstance(values, list) or len(values) != len(cursor_types):
        raise ValueError("cursor has the wrong shape")
    return tuple(_decode_value(v, t) for v, t in zip(values, cursor_types, strict=True))


def encode_page_token(tenant_id: str, fingerprint: str, cursor: tuple) -> str:
    """Makes the opaque token for the page after ``cursor``."""
    payload = {
        "v": _TOKEN_VERSION,
        "t": tenant_tag(tenant_id),
        "q": fingerprint,
        "c": [_encode_value(v) for v in cursor],
    }
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return _b64(raw) + "." + _b64(_mac(raw))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _invalid_token(field: str) -> errors.InvalidArgument:
    return errors.InvalidArgument.field(
        field, "is not a page token issued by this service", reason="PAGE_TOKEN_INVALID"
    )


def decode_page_token(
    token: str,
    tenant_id: str,
    fingerprint: str,
    field: str = "page_token",
    *,
    cursor_types: Sequence[CursorType],
) -> tuple | None:
    """Returns the cursor in ``token`` (None for an empty token).

    Raises :class:`errors.InvalidArgument` for a malformed token, a cursor not of
    ``cursor_types`` (same length, each value of its declared type), a token of
    another tenant, or one made for different request arguments.
    """
    if not token:
        return None
    try:
        if len(token) > _MAX_TOKEN_CHARS:
            raise ValueError("token too long")
        body, _, signature = token.partition(".")
        raw = _unb64(body)
        if not hmac.compare_digest(_unb64(signature), _mac(raw)):
            raise ValueError("bad signature")
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("v") != _TOKEN_VERSION:
            raise ValueError("unknown token version")
        owner, bound_query = payload["t"], payload["q"]
        if type(owner) is not str or type(bound_query) is not str:
            raise ValueError("bad token header")
        cursor = _decode_cursor(payload["c"], cursor_types)
    except (
        ValueError,  # includes UnicodeError and json.JSONDecodeError
        KeyError,
        TypeError,
        OverflowError,
        RecursionError,
        binascii.Error,
    ):
        raise _invalid_token(field) from None
    if not hmac.compare_digest(owner, tenant_tag(tenant_id)):
        raise _invalid_token(field)
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
    # Makes the token that resumes after a given item; None for a page that cannot be cut.
    token_after: Callable[[Any], str] | None = field(default=None, repr=False, compare=False)

    def cut(self, count: int) -> Page:
        """This page's first ``count`` items (at least one), with the token resuming after them.

        ``cut(len(items))`` is the page itself; a response too large to send is cut shorter
        and the client reads the rest from the next page.
        """
        if count >= len(self.items):
            return self
        if count < 1:
            raise ValueError(f"a page keeps at least one item, not {count}")
        if self.token_after is None:
            raise ValueError("this page cannot be cut: it was made without a cursor function")
        kept = self.items[:count]
        return Page(kept, self.token_after(kept[-1]), self.token_after)


class PageRequest:
    """A list call's paging arguments, checked and resolved.

    ``size`` is the page size to serve, ``after`` the keyset cursor to resume
    from (None on the first page), checked against ``cursor_types``: the type of
    each cursor value, as :func:`decode_page_token` takes them. Fetch ``size + 1``
    rows and hand them to :meth:`page`, which cuts the extra row off and makes the
    next token.
    """

    def __init__(
        self,
        tenant_id: str,
        page_size: int,
        page_token: str,
        *,
        cursor_types: Sequence[CursorType],
        **arguments: Any,
    ):
        self.size = page_size_of(page_size)
        self._tenant_id = tenant_id
        self._fingerprint = query_fingerprint(**arguments)
        self.after = decode_page_token(
            page_token, tenant_id, self._fingerprint, cursor_types=tuple(cursor_types)
        )

    @property
    def limit(self) -> int:
        """How many rows to fetch: one more than the page, to learn if another follows."""
        return self.size + 1

    def page(self, rows: list, cursor_of: Callable[[Any], tuple]) -> Page:
        """The page made of ``rows`` (fetched with :attr:`limit`)."""

        def token_after(row: Any) -> str:
            return encode_page_token(self._tenant_id, self._fingerprint, cursor_of(row))

        if len(rows) <= self.size:
            return Page(items=list(rows), next_page_token="", token_after=token_after)
        rows = list(rows[: self.size])
        return Page(items=rows, next_page_token=token_after(rows[-1]), token_after=token_after)
