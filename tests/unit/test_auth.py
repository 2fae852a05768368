"""API keys: random, prefixed, stored as a hash, verified in constant time."""

from __future__ import annotations

import pytest

from service import auth, errors


def test_issued_keys_authenticate_to_their_tenant(database):
    tenant = auth.new_tenant(database, "acme")
    authenticator = auth.Authenticator(database)
    # Secrets are url-safe base64 and often contain "_": every one must work.
    for _ in range(40):
        issued = auth.issue_key(database, tenant.id, "read")
        principal = authenticator.authenticate(issued.secret)
        assert principal.tenant_id == tenant.id and principal.scope == "read"
        assert principal.key_id == issued.record.id


def test_only_a_hash_of_the_key_is_stored(database):
    tenant = auth.new_tenant(database, "acme")
    issued = auth.issue_key(database, tenant.id)
    stored = database.run(lambda uow: uow.api_keys.get(issued.record.id))
    assert issued.secret.startswith("sck_")
    assert stored.key_hash == auth.hash_key(issued.secret)
    assert issued.secret not in stored.key_hash
    assert len(issued.secret.split("_", 2)[2]) >= 43  # 256 bits of secret


def test_keys_are_unique(database):
    tenant = auth.new_tenant(database, "acme")
    secrets = {auth.issue_key(database, tenant.id).secret for _ in range(20)}
    assert len(secrets) == 20


def test_key_for_missing_tenant_is_not_found(database):
    with pytest.raises(errors.NotFound):
        auth.issue_key(database, "no-such-tenant")


def test_bad_scope_is_invalid(database):
    tenant = auth.new_tenant(database, "acme")
    with pytest.raises(errors.InvalidArgument):
        auth.issue_key(database, tenant.id, "admin")
