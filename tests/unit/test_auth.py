"""API keys: random, prefixed, stored as a hash, verified in constant time."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import grpc
import pytest

from service.app import authentication as auth
from service.app import tenants
from service.domain import errors
from tests.harness import raises_status


def test_issued_keys_authenticate_to_their_tenant(database):
    tenant = tenants.new_tenant(database, "acme")
    authenticator = auth.Authenticator(database)
    # Secrets are url-safe base64 and often contain "_": every one must work.
    for _ in range(40):
        issued = tenants.issue_key(database, tenant.id, "read")
        principal = authenticator.authenticate(issued.secret)
        assert principal.tenant_id == tenant.id and principal.scope == "read"
        assert principal.key_id == issued.record.id


def test_only_a_hash_of_the_key_is_stored(database):
    tenant = tenants.new_tenant(database, "acme")
    issued = tenants.issue_key(database, tenant.id)
    stored = database.run(lambda uow: uow.api_keys.get(issued.record.id))
    assert issued.secret.startswith("sck_")
    assert stored.key_hash == auth.hash_key(issued.secret)
    assert issued.secret not in stored.key_hash
    assert len(issued.secret.split("_", 2)[2]) >= 43  # 256 bits of secret


def test_keys_are_unique(database):
    tenant = tenants.new_tenant(database, "acme")
    secrets = {tenants.issue_key(database, tenant.id).secret for _ in range(20)}
    assert len(secrets) == 20


def test_key_for_missing_tenant_is_not_found(database):
    with raises_status(grpc.StatusCode.NOT_FOUND):
        tenants.issue_key(database, "no-such-tenant")


def test_bad_scope_is_invalid(database):
    tenant = tenants.new_tenant(database, "acme")
    with pytest.raises(errors.InvalidArgument):
        tenants.issue_key(database, tenant.id, "admin")


def count_lookups(database, monkeypatch) -> list:
    """Records every transaction ``database`` runs from now on."""
    runs = []
    real_run = database.run

    def run_and_record(fn):
        runs.append(fn)
        return real_run(fn)

    monkeypatch.setattr(database, "run", run_and_record)
    return runs


@pytest.mark.parametrize(
    "shape",
    [
        "xyz_{id}_{secret}",  # another prefix
        "sck_{id}_",  # no secret
        "sck_{id}",  # no secret part at all
        "sck_{id}x_{secret}",  # a key id that is not 16 hex digits
    ],
)
def test_malformed_keys_are_refused_without_a_lookup(database, monkeypatch, shape):
    tenant = tenants.new_tenant(database, "acme")
    issued = tenants.issue_key(database, tenant.id)
    _, key_id, secret = issued.secret.split("_", 2)
    lookups = count_lookups(database, monkeypatch)

    with pytest.raises(errors.Unauthenticated) as raised:
        auth.Authenticator(database).authenticate(shape.format(id=key_id, secret=secret))

    assert raised.value.message == "the API key is unknown or revoked"
    assert lookups == []


def test_a_well_formed_key_nobody_issued_is_unauthenticated(database):
    tenant = tenants.new_tenant(database, "acme")
    tenants.issue_key(database, tenant.id)
    unknown = "sck_0123456789abcdef_" + "x" * 43

    with pytest.raises(errors.Unauthenticated) as raised:
        auth.Authenticator(database).authenticate(unknown)

    assert raised.value.message == "the API key is unknown or revoked"


@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_key_is_unauthenticated_and_says_which_metadata(database, key):
    with pytest.raises(errors.Unauthenticated) as raised:
        auth.Authenticator(database).authenticate(key)

    assert raised.value.message == "missing x-api-key metadata"


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_a_tenant_name_must_be_1_to_200_characters(database, name):
    with pytest.raises(errors.InvalidArgument) as raised:
        tenants.new_tenant(database, name)

    [violation] = raised.value.violations
    assert (violation.field, violation.description) == ("name", "must be 1 to 200 characters")


@pytest.mark.parametrize("name", ["a", "x" * 200, "  padded  "])
def test_tenant_names_of_1_to_200_characters_are_kept_trimmed(database, name):
    assert tenants.new_tenant(database, name).name == name.strip()


def test_a_taken_tenant_name_already_exists(database):
    tenants.new_tenant(database, "acme")

    with raises_status(grpc.StatusCode.ALREADY_EXISTS) as raised:
        tenants.new_tenant(database, "acme")

    assert raised.status.message == "a tenant with name 'acme' already exists"


def test_a_bad_scope_names_the_field_and_the_scopes(database):
    tenant = tenants.new_tenant(database, "acme")

    with pytest.raises(errors.InvalidArgument) as raised:
        tenants.issue_key(database, tenant.id, "admin")

    [violation] = raised.value.violations
    assert (violation.field, violation.description) == ("scope", "must be one of read, write")


def test_a_key_for_a_missing_tenant_names_the_tenant(database):
    with raises_status(grpc.StatusCode.NOT_FOUND) as raised:
        tenants.issue_key(database, "no-such-tenant")

    assert raised.status.message == "tenant 'no-such-tenant' not found"


def test_an_issued_key_keeps_its_description_and_has_256_random_bits(database):
    tenant = tenants.new_tenant(database, "acme")

    issued = tenants.issue_key(database, tenant.id, "read", "ci runner")

    stored = database.run(lambda uow: uow.api_keys.get(issued.record.id))
    assert stored.description == "ci runner"
    assert len(issued.secret.split("_", 2)[2]) == 43  # 32 bytes, url-safe base64 unpadded
    assert tenants.issue_key(database, tenant.id).record.description == ""


def test_tenants_and_keys_get_utc_times_whatever_the_local_time_zone(database, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        before = datetime.now(UTC)
        tenant = tenants.new_tenant(database, "acme")
        issued = tenants.issue_key(database, tenant.id)
        after = datetime.now(UTC)
    finally:
        monkeypatch.undo()
        time.tzset()

    assert before <= tenant.create_time <= after
    assert before <= issued.record.create_time <= after
