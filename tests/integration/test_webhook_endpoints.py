"""WebhookService endpoint management through a real in-process server (SQLite and PostgreSQL).

The secret is shown when an endpoint is created or its secret rotated, and never again; every
endpoint belongs to one tenant; writes are conditional on the etag; bad URLs are refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from simulation.v1 import (
    config_service_pb2,
    config_service_pb2_grpc,
    simulation_pb2,
    webhook_service_pb2_grpc,
)
from simulation.v1 import webhook_service_pb2 as pb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.harness import detail, field_violations, rich_status
from tests.unit.simulation_api import valid_config

Kind = simulation_pb2.SimulationEvent.Kind
State = pb.Webhook.State


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> Iterator[storage.Database]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    db = storage.Database(request.getfixturevalue(name))
    db.migrate()
    yield db
    db.dispose()


def serve(database, tmp_path, **settings):
    values = {"port": 0, "data_dir": tmp_path, "architect_workers": 0} | settings
    server, port = create_server(Settings(**values), database=database)
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
def stub(database, tmp_path):
    server, channel = serve(database, tmp_path)
    yield webhook_service_pb2_grpc.WebhookServiceStub(channel)
    channel.close()
    server.stop(0)


def tenant_key(database, name: str, scope: str = "write") -> list[tuple[str, str]]:
    tenant = tenants.new_tenant(database, f"{name}-{uuid.uuid4().hex[:8]}")
    return [("x-api-key", tenants.issue_key(database, tenant.id, scope).secret)]


def create(stub, key, url="https://hooks.example.com/in", **fields):
    return stub.CreateWebhook(
        pb.CreateWebhookRequest(webhook=pb.Webhook(url=url, **fields)), metadata=key
    )


def test_a_created_endpoint_shows_its_secret_once(stub, database):
    key = tenant_key(database, "hooks-create")
    created = create(stub, key, kinds=[Kind.STATUS_CHANGED], description="ops pager")
    assert created.secret.startswith("whsec_")
    webhook = created.webhook
    assert (webhook.url, list(webhook.kinds), webhook.enabled, webhook.state) == (
        "https://hooks.example.com/in",
        [Kind.STATUS_CHANGED],
        True,
        State.ACTIVE,
    )
    got = stub.GetWebhook(pb.GetWebhookRequest(webhook_id=webhook.id), metadata=key).webhook
    assert got == webhook
    assert created.secret not in str(got)
    listed = stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=key).webhooks
    assert list(listed) == [webhook]


def test_rotating_the_secret_returns_a_new_one_and_changes_the_etag(stub, database):
    key = tenant_key(database, "hooks-rotate")
    created = create(stub, key)
    rotated = stub.RotateWebhookSecret(
        pb.RotateWebhookSecretRequest(webhook_id=created.webhook.id, etag=created.webhook.etag),
        metadata=key,
    )
    assert rotated.secret.startswith("whsec_") and rotated.secret != created.secret
    assert rotated.webhook.etag != created.webhook.etag
    with pytest.raises(grpc.RpcError) as stale:
        stub.RotateWebhookSecret(
            pb.RotateWebhookSecretRequest(webhook_id=created.webhook.id, etag=created.webhook.etag),
            metadata=key,
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED


def test_updates_change_the_masked_fields_and_need_a_fresh_etag(stub, database):
    key = tenant_key(database, "hooks-update")
    webhook = create(stub, key, description="before").webhook
    updated = stub.UpdateWebhook(
        pb.UpdateWebhookRequest(
            webhook=pb.Webhook(
                id=webhook.id, url="https://other.example.com/", enabled=False, etag=webhook.etag
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["url", "enabled"]),
        ),
        metadata=key,
    ).webhook
    assert (updated.url, updated.enabled, updated.description) == (
        "https://other.example.com/",
        False,
        "before",
    )
    with pytest.raises(grpc.RpcError) as stale:
        stub.UpdateWebhook(
            pb.UpdateWebhookRequest(
                webhook=pb.Webhook(id=webhook.id, description="late", etag=webhook.etag)
            ),
            metadata=key,
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED


def test_deleting_an_endpoint_makes_it_not_found(stub, database):
    key = tenant_key(database, "hooks-delete")
    webhook = create(stub, key).webhook
    stub.DeleteWebhook(pb.DeleteWebhookRequest(webhook_id=webhook.id), metadata=key)
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetWebhook(pb.GetWebhookRequest(webhook_id=webhook.id), metadata=key)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_another_tenants_endpoint_is_not_found_and_not_listed(stub, database):
    mine, theirs = tenant_key(database, "hooks-mine"), tenant_key(database, "hooks-theirs")
    webhook = create(stub, theirs).webhook
    assert list(stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=mine).webhooks) == []
    for call in (
        lambda: stub.GetWebhook(pb.GetWebhookRequest(webhook_id=webhook.id), metadata=mine),
        lambda: stub.DeleteWebhook(pb.DeleteWebhookRequest(webhook_id=webhook.id), metadata=mine),
        lambda: stub.RotateWebhookSecret(
            pb.RotateWebhookSecretRequest(webhook_id=webhook.id), metadata=mine
        ),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_read_only_key_can_list_but_not_create(stub, database):
    key = tenant_key(database, "hooks-read", scope="read")
    stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=key)
    with pytest.raises(grpc.RpcError) as refused:
        create(stub, key)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("fields", "violation"),
    [
        ({"url": "ftp://example.com/"}, "webhook.url"),
        ({"url": "http://127.0.0.1:9000/hook"}, "webhook.url"),
        ({"url": "http://169.254.169.254/"}, "webhook.url"),
        ({"kinds": [Kind.KIND_UNSPECIFIED]}, "webhook.kinds[0]"),
    ],
)
def test_bad_endpoints_are_invalid_argument_and_nothing_is_stored(
    stub, database, fields, violation
):
    key = tenant_key(database, "hooks-bad")
    with pytest.raises(grpc.RpcError) as refused:
        create(stub, key, **({"url": "https://hooks.example.com/"} | fields))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(rich_status(refused.value.trailing_metadata())) == [violation]
    assert list(stub.ListWebhooks(pb.ListWebhooksRequest(), metadata=key).webhooks) == []


def test_a_filter_naming_a_missing_simulation_is_not_found(stub, database):
    key = tenant_key(database, "hooks-filter")
    with pytest.raises(grpc.RpcError) as refused:
        create(stub, key, simulation_id="no-such-simulation")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


def test_private_addresses_are_accepted_when_the_server_allows_them(database, tmp_path):
    server, channel = serve(database, tmp_path, webhook_allow_private=True)
    try:
        stub = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        key = tenant_key(database, "hooks-private")
        assert create(stub, key, url="http://127.0.0.1:9000/hook").webhook.url.startswith(
            "http://127.0.0.1"
        )
    finally:
        channel.close()
        server.stop(0)


def test_endpoints_are_listed_in_pages(stub, database):
    key = tenant_key(database, "hooks-pages")
    ids = sorted(create(stub, key).webhook.id for _ in range(3))
    first = stub.ListWebhooks(pb.ListWebhooksRequest(page_size=2), metadata=key)
    second = stub.ListWebhooks(
        pb.ListWebhooksRequest(page_size=2, page_token=first.next_page_token), metadata=key
    )
    assert [w.id for w in first.webhooks] + [w.id for w in second.webhooks] == ids
    assert second.next_page_token == ""


def endpoint_count(stub, key) -> int:
    listed = stub.ListWebhooks(pb.ListWebhooksRequest(page_size=100), metadata=key)
    return len(listed.webhooks)


def assert_request_id_reused(call) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rich_status(caught.value.trailing_metadata())
    info = detail(status, error_details_pb2.ErrorInfo)
    assert info.reason == "REQUEST_ID_REUSED"


def test_a_retried_create_returns_the_first_endpoint_and_its_secret(stub, database):
    key = tenant_key(database, "hooks-retry-create")
    request = pb.CreateWebhookRequest(
        webhook=pb.Webhook(url="https://hooks.example.com/in"), request_id="hook-1"
    )
    first = stub.CreateWebhook(request, metadata=key)
    again = stub.CreateWebhook(request, metadata=key)

    assert again.webhook.id == first.webhook.id
    assert again.secret == first.secret
    assert endpoint_count(stub, key) == 1
    request.webhook.url = "https://hooks.example.com/other"
    assert_request_id_reused(lambda: stub.CreateWebhook(request, metadata=key))


def test_a_retried_update_returns_the_endpoint_and_writes_once(stub, database):
    key = tenant_key(database, "hooks-retry-update")
    created = create(stub, key).webhook
    request = pb.UpdateWebhookRequest(
        webhook=pb.Webhook(id=created.id, description="renamed", etag=created.etag),
        request_id="hook-update-1",
    )
    first = stub.UpdateWebhook(request, metadata=key).webhook
    # The etag sent is stale now: only the request id makes the retry succeed.
    again = stub.UpdateWebhook(request, metadata=key).webhook

    assert again.etag == first.etag != created.etag
    request.webhook.description = "renamed again"
    assert_request_id_reused(lambda: stub.UpdateWebhook(request, metadata=key))


def test_a_retried_delete_answers_again_not_not_found(stub, database):
    key = tenant_key(database, "hooks-retry-delete")
    created = create(stub, key).webhook
    request = pb.DeleteWebhookRequest(webhook_id=created.id, request_id="hook-delete-1")
    stub.DeleteWebhook(request, metadata=key)
    stub.DeleteWebhook(request, metadata=key)

    assert endpoint_count(stub, key) == 0
    request.etag = "some other etag"
    assert_request_id_reused(lambda: stub.DeleteWebhook(request, metadata=key))


def test_a_retried_rotation_returns_the_secret_it_made_and_rotates_once(stub, database):
    key = tenant_key(database, "hooks-retry-rotate")
    created = create(stub, key)
    request = pb.RotateWebhookSecretRequest(
        webhook_id=created.webhook.id, request_id="hook-rotate-1"
    )
    first = stub.RotateWebhookSecret(request, metadata=key)
    again = stub.RotateWebhookSecret(request, metadata=key)

    assert first.secret != created.secret
    assert again.secret == first.secret
    assert again.webhook.etag == first.webhook.etag
    request.etag = "some other etag"
    assert_request_id_reused(lambda: stub.RotateWebhookSecret(request, metadata=key))


def test_a_retried_redelivery_returns_the_delivery_and_queues_it_once(database, tmp_path):
    # No delivery workers: the delivery stays as the calls leave it.
    server, channel = serve(database, tmp_path, webhook_workers=0)
    try:
        stub = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        key = tenant_key(database, "hooks-retry-redeliver")
        webhook = create(stub, key, kinds=[Kind.CREATED]).webhook
        config_service_pb2_grpc.ConfigServiceStub(channel).CreateSimulationWithConfig(
            config_service_pb2.CreateSimulationWithConfigRequest(
                simulation=simulation_pb2.Simulation(name="announced"), config=valid_config()
            ),
            metadata=key,
        )
        (queued,) = stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(webhook_id=webhook.id), metadata=key
        ).deliveries
        request = pb.RedeliverWebhookRequest(
            webhook_id=webhook.id, delivery_id=queued.id, request_id="redeliver-1"
        )
        first = stub.RedeliverWebhook(request, metadata=key).delivery
        again = stub.RedeliverWebhook(request, metadata=key).delivery

        # Queued again once: a second requeue would have moved its update time.
        assert again.update_time == first.update_time != queued.update_time
        request.delivery_id = queued.id + 1
        assert_request_id_reused(lambda: stub.RedeliverWebhook(request, metadata=key))
    finally:
        channel.close()
        server.stop(0)
