"""The filter parser and page tokens."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from service import errors
from service.filters import Condition, parse_filter, parse_order_by
from service.pagination import (
    IntRange,
    Page,
    PageRequest,
    decode_page_token,
    encode_page_token,
    page_size_of,
    query_fingerprint,
    tenant_tag,
)
from service.servicers.paging import fit_to_budget


def test_filter_parses_conditions_joined_by_and():
    assert parse_filter(
        'name = "a \\"b\\"" AND labels.env : * AND status = RUNNING', {"name", "status"}
    ) == [
        Condition("name", "=", 'a "b"'),
        Condition("labels.env", ":", None),
        Condition("status", "=", "RUNNING"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'name = "x" OR name = "y"',
        "name",
        'name = "x" name = "y"',
        "unknown = 1",
        "labels.BAD = x",
        'name ~ "x"',
        'name = "open',
    ],
)
def test_bad_filters_are_invalid_and_name_the_field(text):
    with pytest.raises(errors.InvalidArgument) as caught:
        parse_filter(text, {"name"})
    assert caught.value.violations[0].field == "filter"


def test_order_by_accepts_desc_and_rejects_unknown_fields():
    assert parse_order_by("name desc", {"name"}) == ("name", True)
    assert parse_order_by("", {"name"}) == ("create_time", False)
    with pytest.raises(errors.InvalidArgument):
        parse_order_by("name sideways", {"name"})


def test_page_size_rules():
    assert page_size_of(0) == 50
    assert page_size_of(5000) == 1000
    with pytest.raises(errors.InvalidArgument):
        page_size_of(-1)


def test_page_token_round_trips_a_cursor_with_a_datetime():
    cursor = (datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "id-1")
    types = (datetime, str)
    token = encode_page_token("tenant", "query", cursor)
    assert decode_page_token(token, "tenant", "query", cursor_types=types) == cursor
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token, "other-tenant", "query", cursor_types=types)
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token, "tenant", "other-query", cursor_types=types)
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token[:-3] + "!!!", "tenant", "query", cursor_types=types)


def decoded(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def test_page_token_carries_a_hash_of_the_tenant_not_the_tenant_id():
    tenant = "0b7f3c1e-2a4d-4e8b-9f6a-1c2d3e4f5a6b"
    token = encode_page_token(tenant, "query", (7,))
    payload = decoded(token)
    assert payload["t"] == tenant_tag(tenant) and len(payload["t"]) == 16
    assert tenant not in json.dumps(payload)
    assert tenant_tag(tenant) != tenant_tag("another-tenant")


@pytest.mark.parametrize(
    ("cursor", "types"),
    [
        ((True,), (int,)),
        ((1.0,), (int,)),
        ((0,), (IntRange(1, 2**31),)),
        ((2**31,), (IntRange(1, 2**31),)),
        (("x", "y"), (str,)),
        (("x",), (str, str)),
        (("x" * 1001, "id"), (str, str)),
        (("id",), (datetime,)),
        ((datetime(2026, 1, 2), "id"), (datetime, str)),
    ],
)
def test_a_cursor_not_of_the_declared_types_is_an_invalid_token(cursor, types):
    token = encode_page_token("tenant", "query", cursor)
    with pytest.raises(errors.InvalidArgument) as caught:
        decode_page_token(token, "tenant", "query", cursor_types=types)
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    assert caught.value.violations[0].field == "page_token"


def test_a_cursor_timestamp_comes_back_in_utc():
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
    token = encode_page_token("tenant", "query", (moment, "id"))
    decoded_moment, _ = decode_page_token(token, "tenant", "query", cursor_types=(datetime, str))
    assert decoded_moment == moment and decoded_moment.tzinfo == UTC


def make_page(count: int, page_size: int) -> Page:
    paging = PageRequest("tenant", page_size, "", cursor_types=(int,), kind="test")
    return paging.page(list(range(count)), lambda row: (row,))


def resumes_after(token: str) -> int:
    """The last item served before ``token`` (made by :func:`make_page`)."""
    (after,) = decode_page_token(
        token, "tenant", query_fingerprint(kind="test"), cursor_types=(int,)
    )
    return after


def test_a_cut_page_resumes_after_its_last_item():
    page = make_page(10, 5)
    assert page.cut(5) is page
    cut = page.cut(2)
    assert cut.items == [0, 1] and resumes_after(cut.next_page_token) == 1
    last = make_page(3, 5)
    assert last.next_page_token == ""
    assert last.cut(1).items == [0] and resumes_after(last.cut(1).next_page_token) == 0
    with pytest.raises(ValueError):
        page.cut(0)


class Sized:
    """Stands in for a proto message of a given encoded size."""

    def __init__(self, size: int):
        self.size = size

    def ByteSize(self) -> int:  # noqa: N802 - the protobuf method name
        return self.size


def test_fit_to_budget_keeps_what_fits_and_at_least_one_item():
    page = make_page(4, 4)
    protos = [Sized(400), Sized(400), Sized(400), Sized(400)]
    kept, token = fit_to_budget(page, protos, budget=1000)
    assert kept == protos[:2] and resumes_after(token) == 1
    kept, token = fit_to_budget(page, [Sized(5000), *protos[1:]], budget=1000)
    assert len(kept) == 1 and resumes_after(token) == 0
    kept, token = fit_to_budget(page, protos, budget=10_000)
    assert kept == protos and token == ""
    assert fit_to_budget(make_page(0, 4), [], budget=10) == ([], "")
