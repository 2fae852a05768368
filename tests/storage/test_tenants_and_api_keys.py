"""Contract tests of TenantRepository and ApiKeyRepository."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from storage import AlreadyExists, ApiKey, NotFound, Tenant


def _key(tenant_id: str, **overrides) -> ApiKey:
    values = {
        "id": uuid.uuid4().hex,
        "tenant_id": tenant_id,
        "scope": "write",
        "key_hash": "sha256:" + uuid.uuid4().hex,
        "create_time": datetime.now(UTC),
    }
    return ApiKey(**(values | overrides))


def test_added_tenant_reads_back_with_a_utc_aware_create_time(database):
    berlin = datetime(2024, 5, 1, 14, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))
    tenant = Tenant(id=str(uuid.uuid4()), name=f"t-{uuid.uuid4().hex}", create_time=berlin)

    stored = database.run(lambda uow: uow.tenants.add(tenant))
    fetched = database.run(lambda uow: uow.tenants.get(tenant.id))

    assert stored == fetched
    assert fetched.create_time == datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
    assert fetched.create_time.tzinfo == UTC


def test_adding_a_tenant_with_a_taken_name_raises_already_exists(database, make):
    name = f"t-{uuid.uuid4().hex}"
    database.run(lambda uow: uow.tenants.add(Tenant(str(uuid.uuid4()), name, make.now)))

    with pytest.raises(AlreadyExists) as raised:
        database.run(lambda uow: uow.tenants.add(Tenant(str(uuid.uuid4()), name, make.now)))

    assert (raised.value.entity, raised.value.field, raised.value.value) == ("tenant", "name", name)


def test_getting_a_missing_tenant_raises_not_found(database):
    with pytest.raises(NotFound) as raised:
        database.run(lambda uow: uow.tenants.get("nope"))
    assert (raised.value.entity, raised.value.id) == ("tenant", "nope")


def test_tenants_are_listed_oldest_first_and_counted(clean_database):
    base = datetime(2024, 1, 1, tzinfo=UTC)
    tenants = [Tenant(str(uuid.uuid4()), f"t{i}", base + timedelta(minutes=i)) for i in (2, 0, 1)]

    def add_all(uow):
        for tenant in tenants:
            uow.tenants.add(tenant)

    clean_database.run(add_all)

    listed = clean_database.run(lambda uow: uow.tenants.list())
    assert [t.name for t in listed] == ["t0", "t1", "t2"]
    assert clean_database.run(lambda uow: uow.tenants.count()) == 3


def test_added_api_key_is_found_by_id_without_a_tenant(database, tenant_id):
    key = _key(tenant_id, description="ci key", scope="read")

    database.run(lambda uow: uow.api_keys.add(key))

    assert database.run(lambda uow: uow.api_keys.get(key.id)) == key


def test_getting_a_missing_api_key_raises_not_found(database):
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.api_keys.get("missing"))


def test_adding_an_api_key_with_a_taken_id_raises_already_exists(database, tenant_id):
    key = _key(tenant_id)
    database.run(lambda uow: uow.api_keys.add(key))

    with pytest.raises(AlreadyExists) as raised:
        database.run(lambda uow: uow.api_keys.add(key))
    assert raised.value.field == "id"


def test_api_keys_are_listed_only_for_their_own_tenant(database, tenant_id, other_tenant_id):
    now = datetime.now(UTC)
    mine = [_key(tenant_id, create_time=now + timedelta(seconds=i)) for i in range(2)]
    theirs = _key(other_tenant_id)

    def add_all(uow):
        for key in [*mine, theirs]:
            uow.api_keys.add(key)

    database.run(add_all)

    assert database.run(lambda uow: uow.api_keys.list_for_tenant(tenant_id)) == mine
    assert database.run(lambda uow: uow.api_keys.list_for_tenant(other_tenant_id)) == [theirs]


def test_revoking_a_key_records_the_first_revoke_time(database, tenant_id):
    key = _key(tenant_id)
    database.run(lambda uow: uow.api_keys.add(key))
    first = datetime(2030, 1, 1, tzinfo=UTC)

    revoked = database.run(lambda uow: uow.api_keys.revoke(key.id, first))
    again = database.run(lambda uow: uow.api_keys.revoke(key.id, first + timedelta(days=1)))

    assert revoked.revoke_time == first
    assert again.revoke_time == first


def test_revoking_a_missing_key_raises_not_found(database):
    with pytest.raises(NotFound):
        database.run(lambda uow: uow.api_keys.revoke("missing", datetime.now(UTC)))


def _two_key_ids() -> tuple[str, str]:
    """Two fresh key ids, lower first (key ids are unique across tenants)."""
    low, high = sorted(uuid.uuid4().hex[:16] for _ in range(2))
    return low, high


def test_a_tenants_keys_are_listed_oldest_first_whatever_their_ids(database, tenant_id):
    now = datetime.now(UTC)
    low, high = _two_key_ids()
    newer = _key(tenant_id, id=low, create_time=now)
    older = _key(tenant_id, id=high, create_time=now - timedelta(hours=1))
    for key in (newer, older):
        database.run(lambda uow, key=key: uow.api_keys.add(key))

    listed = database.run(lambda uow: uow.api_keys.list_for_tenant(tenant_id))

    assert [k.id for k in listed] == [older.id, newer.id]


def test_keys_created_together_are_listed_in_id_order(database, tenant_id):
    now = datetime.now(UTC)
    low, high = _two_key_ids()
    for key_id in (high, low):
        key = _key(tenant_id, id=key_id, create_time=now)
        database.run(lambda uow, key=key: uow.api_keys.add(key))

    listed = database.run(lambda uow: uow.api_keys.list_for_tenant(tenant_id))

    assert [k.id for k in listed] == [low, high]


def test_adding_a_tenant_with_a_taken_id_raises_already_exists_naming_it(database, make):
    tenant_id = str(uuid.uuid4())
    database.run(lambda uow: uow.tenants.add(Tenant(tenant_id, f"t-{uuid.uuid4().hex}", make.now)))

    with pytest.raises(AlreadyExists) as raised:
        database.run(
            lambda uow: uow.tenants.add(Tenant(tenant_id, f"t-{uuid.uuid4().hex}", make.now))
        )

    error = raised.value
    assert (error.entity, error.field, error.value) == ("tenant", "id", tenant_id)
