"""The filter parser and page tokens."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

import storage
from service.api.response_budget import fit_to_budget
from service.app import page_tokens
from service.app.list_filters import FilterField, parse_filter, parse_order_by
from service.app.page_tokens import (
    IntRange,
    Page,
    PageRequest,
    decode_page_token,
    encode_page_token,
    page_size_of,
    query_fingerprint,
    tenant_tag,
)
from service.domain import errors

FIELDS = {
    "name": FilterField("string", contains=True),
    "status": FilterField("enum", values=("PENDING", "RUNNING", "FAILED")),
    "labels": FilterField("labels"),
}


def test_filter_parses_conditions_joined_by_and():
    assert parse_filter(
        'name = "a \\"b\\"" AND labels.env : * AND status = RUNNING', FIELDS
    ) == storage.AllOf(
        (
            storage.Comparison("name", "=", 'a "b"'),
            storage.Comparison("labels", "has", None, key="env"),
            storage.Comparison("status", "=", "RUNNING"),
        )
    )


@pytest.mark.parametrize(
    "text",
    [
        'name = "x" OR',
        'name = "x" AND',
        '(name = "x"',
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
        parse_filter(text, FIELDS)
    assert caught.value.violations[0].field == "filter"


def test_or_binds_tighter_than_and_and_not_applies_to_one_term():
    # AIP-160: `a AND b OR c` is `a AND (b OR c)`.
    assert parse_filter("status = RUNNING AND NOT name = x OR -labels.env : *", FIELDS) == (
        storage.AllOf(
            (
                storage.Comparison("status", "=", "RUNNING"),
                storage.AnyOf(
                    (
                        storage.Negation(storage.Comparison("name", "=", "x")),
                        storage.Negation(storage.Comparison("labels", "has", None, key="env")),
                    )
                ),
            )
        )
    )
    assert parse_filter("(status = RUNNING AND name = x) OR name = y", FIELDS) == storage.AnyOf(
        (
            storage.AllOf(
                (
                    storage.Comparison("status", "=", "RUNNING"),
                    storage.Comparison("name", "=", "x"),
                )
            ),
            storage.Comparison("name", "=", "y"),
        )
    )


def test_values_take_the_type_of_their_field():
    from service.app.simulations import FILTER_FIELDS

    parsed = parse_filter(
        'create_time >= "2026-01-02T03:04:05+02:00" AND config.max_turns > 20'
        " AND config.temperature <= 0.5 AND status < RUNNING AND labels : team",
        FILTER_FIELDS,
    )
    assert parsed == storage.AllOf(
        (
            storage.Comparison("create_time", ">=", datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)),
            storage.Comparison("config", ">", 20, key=("max_turns",)),
            storage.Comparison("config", "<=", 0.5, key=("temperature",)),
            storage.Comparison(
                "status", "in", ("PENDING", "GENERATING_CONFIG", "COMPLETED_CONFIG")
            ),
            storage.Comparison("labels", "has", None, key="team"),
        )
    )
    assert parse_filter('config.agents.role : "buyer"', FILTER_FIELDS) == storage.Comparison(
        "config", "=", "buyer", key=("agents", "*", "role")
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "x" OR', "incomplete filter: it ends early at column 14"),
        ('name = "x" ) ', "unexpected ')' at column 12"),
        ("name = x ~ y", "unexpected character '~' at column 10"),
        ("status = RUNNING AND prompt = x", "unknown field 'prompt' at column 22"),
        (
            'config.max_turns >= "20"',
            "config.max_turns is a number; write it unquoted (at column 18)",
        ),
        ("config.max_turns = 2.5", "config.max_turns is a whole number, not '2.5' (at column 18)"),
        ("create_time > 2026", "create_time is a timestamp"),
        ('create_time > "2026-01-01"', "create_time is a timestamp"),
        ("status = SLEEPING", "unknown status 'SLEEPING' (at column 8)"),
        ("config.model : x", "config.model does not take ':' (at column 14)"),
        ("scenario_id > x", "scenario_id takes only = and != (at column 13)"),
        ("name = *", "'*' at column 6 applies only to labels.KEY : *"),
        ("labels.env > x", "labels take =, != and : (at column 12)"),
    ],
)
def test_a_bad_filter_names_what_is_wrong_and_where(text, message):
    from service.app.simulations import FILTER_FIELDS

    with pytest.raises(errors.InvalidArgument) as caught:
        parse_filter(text, FILTER_FIELDS)
    (violation,) = caught.value.violations
    assert violation.field == "filter"
    assert message in violation.description, violation.description


def test_a_filter_too_deep_or_too_long_is_refused():
    with pytest.raises(errors.InvalidArgument, match="deeper"):
        parse_filter("(" * 30 + "name = x" + ")" * 30, FIELDS)
    with pytest.raises(errors.InvalidArgument, match="comparisons"):
        parse_filter(" OR ".join(["name = x"] * 60), FIELDS)


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
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


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


# -- the edges of page tokens ---------------------------------------------------------------------


def forged_token(payload) -> str:
    """A token made by hand and signed with the service's key: any JSON, as if the key leaked.

    The signature alone refuses a client's own tokens; these check the second line, the
    cursor shape checks, behind it.
    """
    raw = json.dumps(payload).encode("utf-8")
    return page_tokens._b64(raw) + "." + page_tokens._b64(page_tokens._mac(raw))


def test_an_edited_token_is_refused_by_its_signature():
    token = encode_page_token("tenant", "query", (7,))
    body, signature = token.split(".")
    payload = decoded(token)
    payload["c"] = [8]
    edited = page_tokens._b64(json.dumps(payload).encode("utf-8")) + "." + signature

    assert invalid_token_violation(edited, (int,)).field == "page_token"
    assert invalid_token_violation(body, (int,)).field == "page_token"  # signature dropped


def test_a_token_signed_with_another_key_is_refused():
    token = encode_page_token("tenant", "query", (7,))
    before = page_tokens._signing_key.get()
    page_tokens.use_signing_key("another secret of sixteen characters or more")
    try:
        invalid_token_violation(token, (int,))
    finally:
        page_tokens._signing_key.set(before)


def test_a_secret_loaded_on_first_use_is_read_once_and_signs_as_if_it_were_set():
    secret = "a secret of sixteen characters or more"
    reads = []

    def load() -> str:
        reads.append(secret)
        return secret

    page_tokens.use_signing_key_from(load)
    assert reads == []  # a server starts without its database

    token = encode_page_token("tenant", "query", (7,))
    assert encode_page_token("tenant", "query", (7,)) == token
    assert reads == [secret]
    page_tokens.use_signing_key(secret)
    assert decode_page_token(token, "tenant", "query", cursor_types=(int,)) == (7,)


def test_a_secret_that_cannot_be_loaded_fails_the_call_and_is_tried_again_on_the_next():
    answers = [RuntimeError("database unavailable"), "a secret of sixteen characters or more"]

    def load() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    page_tokens.use_signing_key_from(load)

    with pytest.raises(RuntimeError, match="database unavailable"):
        encode_page_token("tenant", "query", (7,))
    token = encode_page_token("tenant", "query", (7,))
    assert decode_page_token(token, "tenant", "query", cursor_types=(int,)) == (7,)
    assert answers == []


def test_a_process_that_sets_no_key_signs_with_a_random_256_bit_one():
    first, second = page_tokens._SigningKey(), page_tokens._SigningKey()

    assert len(first.get()) == 32 and first.get() == first.get()
    assert first.get() != second.get()
    first.set(b"k" * 32)
    assert first.get() == b"k" * 32


def test_a_short_signing_secret_is_refused():
    page_tokens.use_signing_key("s" * 16)
    with pytest.raises(ValueError, match="^a page token secret needs at least 16 characters$"):
        page_tokens.use_signing_key("s" * 15)


def test_a_new_signing_secret_carries_256_random_bits_in_url_safe_text():
    first, second = page_tokens.new_signing_secret(), page_tokens.new_signing_secret()

    assert len(first) == 43 and len(base64.urlsafe_b64decode(first + "=")) == 32
    assert first != second


def test_tokens_issued_before_an_upgrade_are_read_the_same_after_it():
    # Servers of two releases share one secret during a rolling upgrade, so the key
    # derivation, the tenant tag, the query fingerprint and the token bytes are pinned.
    page_tokens.use_signing_key("a secret of sixteen characters or more")
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert tenant_tag("tenant") == "bd5fb0054dcaf628"
    assert query_fingerprint(filter="x", order_by="name") == "3f68887d3c870372c189f416"
    assert encode_page_token("tenant", query_fingerprint(filter="x"), ("name", 7, moment)) == (
        "eyJ2IjozLCJ0IjoiYmQ1ZmIwMDU0ZGNhZjYyOCIsInEiOiI1YmZmODE5ODZlZTM4OWE3NWJmNjNkYzIiLCJj"
        "IjpbIm5hbWUiLDcseyJkdCI6IjIwMjQtMDEtMDJUMDM6MDQ6MDUrMDA6MDAifV19.tGQTnfKw-FxziIhwttOpSg"
    )


def invalid_token_violation(token: str, types, tenant="tenant", query="query"):
    with pytest.raises(errors.InvalidArgument) as caught:
        decode_page_token(token, tenant, query, cursor_types=types)
    assert caught.value.reason == "PAGE_TOKEN_INVALID"
    [violation] = caught.value.violations
    return violation


@pytest.mark.parametrize("requested", [-1, -1000])
def test_a_negative_page_size_names_its_field_and_the_value(requested):
    with pytest.raises(errors.InvalidArgument) as caught:
        page_size_of(requested)
    [violation] = caught.value.violations
    assert (violation.field, violation.description) == (
        "page_size",
        f"must not be negative, got {requested}",
    )

    with pytest.raises(errors.InvalidArgument) as caught:
        page_size_of(requested, "revisions_page_size")
    assert caught.value.violations[0].field == "revisions_page_size"


def test_the_query_fingerprint_ignores_argument_order_and_takes_any_value():
    moment = datetime(2026, 1, 2, tzinfo=UTC)

    assert query_fingerprint(filter="a", order_by="b") == query_fingerprint(
        order_by="b", filter="a"
    )
    assert query_fingerprint(after=moment) == query_fingerprint(after=moment)
    assert query_fingerprint(after=moment) != query_fingerprint(after=moment + timedelta(days=1))


def test_page_tokens_use_only_url_safe_characters_and_round_trip():
    # They travel in REST query strings (?page_token=...): no padding, no "+" or "/"; the
    # "." between payload and signature is an unreserved URL character.
    for size in range(1, 40):
        cursor = ("x" * size,)
        token = encode_page_token("tenant", "query", cursor)
        assert (
            token.strip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") == ""
        )
        assert decode_page_token(token, "tenant", "query", cursor_types=(str,)) == cursor


def test_an_invalid_token_says_it_was_not_issued_here():
    violation = invalid_token_violation("not-a-token", (str,))
    assert (violation.field, violation.description) == (
        "page_token",
        "is not a page token issued by this service",
    )


@pytest.mark.parametrize(
    "payload",
    [
        lambda: [2, "tag", "query", ["x"]],  # a list where the token has an object
        # A cursor of the declared length that is not a list: an object, a string.
        lambda: {"v": 3, "t": tenant_tag("tenant"), "q": "query", "c": {"a": 1}},
        lambda: {"v": 3, "t": tenant_tag("tenant"), "q": "query", "c": "a"},
    ],
    ids=["payload-list", "cursor-object", "cursor-string"],
)
def test_a_token_of_the_wrong_shape_is_invalid_not_internal(payload):
    # Made when the test runs: the tenant tag depends on the key the test signs with.
    invalid_token_violation(forged_token(payload()), (str,))


def test_the_lowest_value_of_an_integer_range_is_a_valid_cursor():
    token = encode_page_token("tenant", "query", (1,))

    assert decode_page_token(token, "tenant", "query", cursor_types=(IntRange(1, 10),)) == (1,)


def test_cursor_strings_and_timestamps_may_reach_their_limits_but_not_pass_them():
    longest = "y" * 1000
    token = encode_page_token("tenant", "query", (longest,))
    assert decode_page_token(token, "tenant", "query", cursor_types=(str,)) == (longest,)

    # fromisoformat takes any number of fraction digits; the cursor takes 64 characters.
    at_limit = "2024-01-01T00:00:00." + "1" * 38 + "+00:00"
    over = "2024-01-01T00:00:00." + "1" * 39 + "+00:00"
    assert (len(at_limit), len(over)) == (64, 65)
    header = {"v": 3, "t": tenant_tag("tenant"), "q": "query"}
    (moment,) = decode_page_token(
        forged_token({**header, "c": [{"dt": at_limit}]}),
        "tenant",
        "query",
        cursor_types=(datetime,),
    )
    assert moment == datetime(2024, 1, 1, 0, 0, 0, 111111, tzinfo=UTC)
    invalid_token_violation(forged_token({**header, "c": [{"dt": over}]}), (datetime,))


def test_a_token_may_be_64_kib_long_but_no_longer():
    limit = 64 * 1024
    types = (str,) * 49
    header = {"v": 3, "t": tenant_tag("tenant"), "q": "query"}

    def token_of_length(length: int) -> str:
        # The longest token of at most ``length`` characters (base64 grows in steps of 4).
        values = ["y" * 1000] * 48
        low, high, best = 0, 1000, None
        while low <= high:
            middle = (low + high) // 2
            token = forged_token({**header, "c": [*values, "z" * middle]})
            if len(token) <= length:
                best, low = token, middle + 1
            else:
                high = middle - 1
        assert best is not None and len(best) > length - 4, f"no token of length {length}"
        return best

    # Padding the signature with "=", which decoding ignores, brings it to the limit exactly.
    at_limit = token_of_length(limit)
    at_limit += "=" * (limit - len(at_limit))
    assert len(at_limit) == limit
    assert len(decode_page_token(at_limit, "tenant", "query", cursor_types=types)) == 49
    invalid_token_violation(token_of_length(limit + 8), types)


def test_a_cut_page_can_be_cut_again():
    page = make_page(10, 8)

    twice = page.cut(6).cut(3)

    assert twice.items == [0, 1, 2] and resumes_after(twice.next_page_token) == 2


def test_a_token_reused_with_other_arguments_says_to_keep_them():
    token = encode_page_token("tenant", "query", ("x",))

    with pytest.raises(errors.InvalidArgument) as caught:
        decode_page_token(
            token, "tenant", "other-query", "revisions_page_token", cursor_types=(str,)
        )

    assert caught.value.reason == "PAGE_TOKEN_MISMATCH"
    [violation] = caught.value.violations
    assert violation.field == "revisions_page_token"
    assert violation.description == (
        "was issued for a request with different arguments; "
        "keep filter, order_by and the other arguments the same while paging"
    )


@pytest.mark.parametrize(
    "header",
    [{"t": 7, "q": "query"}, {"t": "tag", "q": 7}],
    ids=["tenant-tag-not-text", "query-not-text"],
)
def test_a_token_header_that_is_not_text_is_invalid_not_internal(header):
    invalid_token_violation(forged_token({"v": 3, **header, "c": ["x"]}), (str,))


def test_a_cursor_timestamp_comes_back_in_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5)))
        token = encode_page_token("tenant", "query", (moment, "id"))
        decoded_moment, _ = decode_page_token(
            token, "tenant", "query", cursor_types=(datetime, str)
        )
    finally:
        monkeypatch.undo()
        time.tzset()

    assert decoded_moment == moment and decoded_moment.utcoffset() == timedelta(0)
