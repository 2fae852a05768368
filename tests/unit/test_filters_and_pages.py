"""The filter parser and page tokens."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service import errors
from service.filters import Condition, parse_filter, parse_order_by
from service.pagination import decode_page_token, encode_page_token, page_size_of


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
    token = encode_page_token("tenant", "query", cursor)
    assert decode_page_token(token, "tenant", "query") == cursor
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token, "other-tenant", "query")
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token, "tenant", "other-query")
    with pytest.raises(errors.InvalidArgument):
        decode_page_token(token[:-3] + "!!!", "tenant", "query")
