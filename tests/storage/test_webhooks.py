"""Contract tests of WebhookRepository: endpoints listed in pages, updated and deleted by etag."""

from __future__ import annotations

from dataclasses import replace

import pytest

from storage import Conflict, NotFound
from tests.storage.test_webhook_outbox import _webhook


def test_endpoints_are_listed_in_id_order_in_pages_of_their_tenant(
    database, tenant_id, other_tenant_id
):
    hooks = sorted((_webhook(tenant_id) for _ in range(3)), key=lambda hook: hook.id)
    # Stored in reverse: the listing orders them, not the order they were written in.
    for hook in (*reversed(hooks), _webhook(other_tenant_id)):
        database.run(lambda uow, hook=hook: uow.webhooks.add(hook))

    def page(after_id, limit):
        return database.run(
            lambda uow: uow.webhooks.list(tenant_id, after_id=after_id, limit=limit)
        )

    assert page(None, 2) == hooks[:2]
    assert page(hooks[1].id, 2) == hooks[2:]
    assert page(hooks[2].id, 2) == []


def test_an_endpoint_is_deleted_only_with_its_etag_in_its_tenant(
    database, tenant_id, other_tenant_id
):
    hook, kept = _webhook(tenant_id), _webhook(tenant_id)
    database.run(lambda uow: (uow.webhooks.add(hook), uow.webhooks.add(kept)))

    def delete(tenant, etag):
        database.run(lambda uow: uow.webhooks.delete(tenant, hook.id, expected_etag=etag))

    with pytest.raises(NotFound) as missing:
        delete(other_tenant_id, hook.etag)
    assert (missing.value.entity, missing.value.id) == ("webhook", hook.id)
    with pytest.raises(Conflict) as stale:
        delete(tenant_id, "stale")
    assert (stale.value.entity, stale.value.id) == ("webhook", hook.id)
    assert database.run(lambda uow: uow.webhooks.get(tenant_id, hook.id)) == hook

    delete(tenant_id, hook.etag)

    with pytest.raises(NotFound):
        database.run(lambda uow: uow.webhooks.get(tenant_id, hook.id))
    assert database.run(lambda uow: uow.webhooks.get(tenant_id, kept.id)) == kept
    with pytest.raises(NotFound):
        delete(tenant_id, None)


def test_an_endpoint_is_deleted_without_an_etag_whatever_its_version(database, tenant_id):
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))

    database.run(lambda uow: uow.webhooks.delete(tenant_id, hook.id, expected_etag=None))

    assert database.run(lambda uow: uow.webhooks.list(tenant_id, after_id=None, limit=10)) == []


def test_an_endpoint_is_updated_with_its_etag_into_a_new_version(
    database, tenant_id, other_tenant_id
):
    hook = _webhook(tenant_id)
    database.run(lambda uow: uow.webhooks.add(hook))
    changed = replace(hook, url="https://new.example.com/", enabled=False)

    with pytest.raises(Conflict) as stale:
        database.run(lambda uow: uow.webhooks.update(changed, expected_etag="stale"))
    assert (stale.value.entity, stale.value.id) == ("webhook", hook.id)
    written = database.run(lambda uow: uow.webhooks.update(changed, expected_etag=hook.etag))

    assert written.etag != hook.etag and written == replace(changed, etag=written.etag)
    assert database.run(lambda uow: uow.webhooks.get(tenant_id, hook.id)) == written
    elsewhere = replace(written, tenant_id=other_tenant_id)
    with pytest.raises(NotFound) as missing:
        database.run(lambda uow: uow.webhooks.update(elsewhere, expected_etag=written.etag))
    assert (missing.value.entity, missing.value.id) == ("webhook", hook.id)
