"""Webhook delivery to a real local HTTP receiver, through a real server (SQLite and PostgreSQL).

Every change produces exactly the deliveries its endpoint asked for, signed so that the
``standardwebhooks`` package verifies them; a receiver that fails a few times still gets every
event, in order per simulation; an endpoint whose retries run out is marked FAILING.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import standardwebhooks
from simulation.v1 import config_service_pb2 as cpb
from simulation.v1 import (
    config_service_pb2_grpc,
    simulation_pb2,
    simulation_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from simulation.v1 import simulation_service_pb2 as spb
from simulation.v1 import webhook_service_pb2 as wpb

import storage
from service.app import tenants
from service.server import create_server
from service.settings import Settings
from tests.unit.simulation_api import valid_config
from tests.webhook_receiver import Receiver

Kind = simulation_pb2.SimulationEvent.Kind


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request) -> Iterator[storage.Database]:
    name = "migrated_sqlite_url" if request.param == "sqlite" else "postgres_url"
    db = storage.Database(request.getfixturevalue(name))
    db.migrate()
    yield db
    db.dispose()


class Api:
    """A server with fast retries, a tenant's key and stubs."""

    def __init__(self, database, tmp_path, **settings) -> None:
        values = {
            "port": 0,
            "data_dir": tmp_path,
            "architect_workers": 0,
            "webhook_allow_private": True,
            "webhook_poll_seconds": 0.05,
            "webhook_retry_base_seconds": 0.05,
            "webhook_retry_max_seconds": 0.2,
        }
        self.server, port = create_server(Settings(**(values | settings)), database=database)
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        tenant = tenants.new_tenant(database, f"hooks-{uuid.uuid4().hex[:8]}")
        self.key = [("x-api-key", tenants.issue_key(database, tenant.id).secret)]
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(self.channel)
        self.configs = config_service_pb2_grpc.ConfigServiceStub(self.channel)
        self.simulations = simulation_service_pb2_grpc.SimulationServiceStub(self.channel)

    def hook(self, url: str, **fields) -> wpb.CreateWebhookResponse:
        return self.webhooks.CreateWebhook(
            wpb.CreateWebhookRequest(webhook=wpb.Webhook(url=url, **fields)), metadata=self.key
        )

    def simulation(self, name: str) -> str:
        return self.configs.CreateSimulationWithConfig(
            cpb.CreateSimulationWithConfigRequest(
                simulation=simulation_pb2.Simulation(name=name), config=valid_config()
            ),
            metadata=self.key,
        ).simulation.id

    def start(self, simulation_id: str) -> None:
        self.simulations.StartRun(
            spb.StartRunRequest(simulation_id=simulation_id), metadata=self.key
        )

    def trail(self, simulation_id: str) -> list[simulation_pb2.SimulationEvent]:
        return list(
            self.simulations.ListSimulationEvents(
                spb.ListSimulationEventsRequest(simulation_id=simulation_id), metadata=self.key
            ).events
        )

    def settled_deliveries(self, webhook_id: str, timeout: float = 20.0) -> list:
        """The endpoint's delivery log once no delivery is PENDING (polled, bounded)."""
        deadline = time.monotonic() + timeout
        while True:
            deliveries = self.webhooks.ListWebhookDeliveries(
                wpb.ListWebhookDeliveriesRequest(webhook_id=webhook_id), metadata=self.key
            ).deliveries
            pending = [d for d in deliveries if d.state == wpb.WebhookDelivery.PENDING]
            if not pending or time.monotonic() > deadline:
                return list(deliveries)
            threading.Event().wait(0.05)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


def test_every_change_is_delivered_once_and_signed(database, tmp_path, receiver):
    api = Api(database, tmp_path)
    try:
        secret = api.hook(receiver.url).secret
        sim = api.simulation("delivered")
        api.start(sim)
        trail = api.trail(sim)
        got = receiver.take(len(trail))
        verifier = standardwebhooks.Webhook(secret)
        for request in got:
            verifier.verify(request.body, request.headers)
        assert [r.event["id"] for r in got] == [e.id for e in trail]
        assert got[-1].event["to_status"] == "RUNNING"
        assert len({r.headers["webhook-id"] for r in got}) == len(trail)
        (webhook,) = api.webhooks.ListWebhooks(wpb.ListWebhooksRequest(), metadata=api.key).webhooks
        # The receiver answers before the worker records it: wait until every one is settled.
        logged = api.settled_deliveries(webhook.id)
        assert [d.event.id for d in logged] == [e.id for e in reversed(trail)]
        assert {(d.state, d.attempts, d.response_code) for d in logged} == {
            (wpb.WebhookDelivery.DELIVERED, 1, 204)
        }
        # Nothing more: exactly one delivery per event.
        with pytest.raises(queue.Empty):
            receiver.take(1, timeout=0.5)
    finally:
        api.close()


def test_a_delivered_event_has_the_status_and_revision_fields_of_its_kind_only(
    database, tmp_path, receiver
):
    api = Api(database, tmp_path)
    try:
        api.hook(receiver.url)
        sim = api.simulation("shapes")
        api.start(sim)
        got = receiver.take(len(api.trail(sim)))
        optional = {"from_status", "to_status", "revision", "details"}
        # As in the event's REST form: a field the kind does not have is absent, not null.
        assert [(r.event["kind"], sorted(optional & r.event.keys())) for r in got] == [
            ("CREATED", ["revision", "to_status"]),
            ("CONFIG_CHANGED", ["details", "revision"]),
            ("STATUS_CHANGED", ["from_status", "to_status"]),
        ]
        assert (got[0].event["to_status"], got[0].event["revision"]) == ("COMPLETED_CONFIG", 1)
        # The delivery log's copy of each event has the same presence over gRPC.
        (webhook,) = api.webhooks.ListWebhooks(wpb.ListWebhooksRequest(), metadata=api.key).webhooks
        logged = sorted(api.settled_deliveries(webhook.id), key=lambda d: d.event.id)
        assert [
            [name for name in ("from_status", "to_status", "revision") if d.event.HasField(name)]
            for d in logged
        ] == [["to_status", "revision"], ["revision"], ["from_status", "to_status"]]
    finally:
        api.close()


def test_a_forged_signature_does_not_verify(database, tmp_path, receiver):
    api = Api(database, tmp_path)
    try:
        api.hook(receiver.url, kinds=[Kind.CREATED])
        api.simulation("forged")
        request = receiver.take(1)[0]
        other_secret = api.hook("https://hooks.example.com/").secret
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(other_secret).verify(request.body, request.headers)
    finally:
        api.close()


def test_an_endpoint_gets_only_the_kinds_and_simulation_it_asked_for(database, tmp_path, receiver):
    api = Api(database, tmp_path)
    try:
        first, second = api.simulation("first"), api.simulation("second")
        api.hook(receiver.url, kinds=[Kind.STATUS_CHANGED], simulation_id=second)
        api.start(first)
        api.start(second)
        # The endpoint was created after both simulations: only the run start is new.
        expected = [e.id for e in api.trail(second) if e.kind == Kind.STATUS_CHANGED][-1:]
        got = receiver.take(len(expected))
        assert [r.event["id"] for r in got] == expected
        with pytest.raises(queue.Empty):
            receiver.take(1, timeout=0.5)
    finally:
        api.close()


def test_a_receiver_that_fails_three_times_then_recovers_gets_every_event_in_order(
    database, tmp_path
):
    flaky = Receiver(failures=3)
    api = Api(database, tmp_path, webhook_workers=4)
    try:
        api.hook(flaky.url)
        sims = [api.simulation(f"flaky-{n}") for n in range(3)]
        for sim in sims:
            api.start(sim)
        expected = {sim: [e.id for e in api.trail(sim)] for sim in sims}
        total = sum(len(ids) for ids in expected.values())
        delivered: dict[str, list[int]] = {sim: [] for sim in sims}
        seen: set[str] = set()
        while len(seen) < total:
            request = flaky.take(1)[0]
            if request.status == 204 and request.headers["webhook-id"] not in seen:
                seen.add(request.headers["webhook-id"])
                delivered[request.event["simulation_id"]].append(request.event["id"])
        assert delivered == expected
    finally:
        api.close()
        flaky.close()


def test_an_endpoint_whose_retries_run_out_is_marked_failing(database, tmp_path):
    failing = Receiver(failures=10**6)
    api = Api(database, tmp_path, webhook_retry_window_seconds=0.3)
    try:
        webhook = api.hook(failing.url, kinds=[Kind.CREATED]).webhook
        api.simulation("doomed")
        failing.take(2)  # tried, and tried again
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            state = api.webhooks.GetWebhook(
                wpb.GetWebhookRequest(webhook_id=webhook.id), metadata=api.key
            ).webhook.state
            if state == wpb.Webhook.FAILING:
                break
            try:  # wait for the next attempt, or a moment once there are none
                failing.requests.get(timeout=0.2)
            except queue.Empty:
                pass
        assert state == wpb.Webhook.FAILING
        (delivery,) = api.webhooks.ListWebhookDeliveries(
            wpb.ListWebhookDeliveriesRequest(webhook_id=webhook.id), metadata=api.key
        ).deliveries
        assert delivery.state == wpb.WebhookDelivery.FAILED
        assert (delivery.response_code, delivery.last_error) == (500, "HTTP 500")
        assert delivery.attempts >= 2 and delivery.event.kind == Kind.CREATED

        # The receiver is fixed: re-enable the endpoint and send the event again.
        failing.recover()
        api.webhooks.UpdateWebhook(
            wpb.UpdateWebhookRequest(webhook=wpb.Webhook(id=webhook.id, enabled=True)),
            metadata=api.key,
        )
        api.webhooks.RedeliverWebhook(
            wpb.RedeliverWebhookRequest(webhook_id=webhook.id, delivery_id=delivery.id),
            metadata=api.key,
        )
        while (request := failing.take(1)[0]).status != 204:
            pass
        assert request.headers["webhook-id"] == f"msg_{delivery.id}"
    finally:
        api.close()
        failing.close()


def test_a_deleted_simulation_is_delivered_as_a_deleted_event_after_its_others(
    database, tmp_path, receiver
):
    api = Api(database, tmp_path)
    try:
        secret = api.hook(receiver.url).secret
        sim = api.simulation("deleted")
        trail = api.trail(sim)
        api.simulations.DeleteSimulation(
            spb.DeleteSimulationRequest(simulation_id=sim), metadata=api.key
        )
        got = receiver.take(len(trail) + 1)
        for request in got:
            standardwebhooks.Webhook(secret).verify(request.body, request.headers)
        assert [r.event["id"] for r in got[:-1]] == [e.id for e in trail]
        deleted = got[-1]
        assert json.loads(deleted.body)["type"] == "simulation.deleted"
        assert deleted.event["kind"] == "DELETED"
        assert deleted.event["simulation_id"] == sim
        assert deleted.event["details"] == {"scenario_id": "", "name": "deleted"}
        with pytest.raises(queue.Empty):
            receiver.take(1, timeout=0.5)
    finally:
        api.close()


def test_an_endpoint_filtered_by_scenario_gets_the_deletion_of_its_simulations(
    database, tmp_path, receiver
):
    from simulation.v1 import scenario_pb2, scenario_service_pb2, scenario_service_pb2_grpc

    api = Api(database, tmp_path)
    try:
        scenarios = scenario_service_pb2_grpc.ScenarioServiceStub(api.channel)
        scenario = scenarios.CreateScenario(
            scenario_service_pb2.CreateScenarioRequest(
                scenario=scenario_pb2.Scenario(display_name="watched")
            ),
            metadata=api.key,
        ).scenario
        sim = api.configs.CreateSimulationWithConfig(
            cpb.CreateSimulationWithConfigRequest(
                simulation=simulation_pb2.Simulation(name="member", scenario_id=scenario.id),
                config=valid_config(),
            ),
            metadata=api.key,
        ).simulation.id
        api.hook(receiver.url, kinds=[Kind.DELETED], scenario_id=scenario.id)
        api.simulations.DeleteSimulation(
            spb.DeleteSimulationRequest(simulation_id=sim), metadata=api.key
        )
        (deleted,) = receiver.take(1)
        assert (deleted.event["kind"], deleted.event["simulation_id"]) == ("DELETED", sim)
        assert deleted.event["details"]["scenario_id"] == scenario.id
    finally:
        api.close()


def test_on_postgresql_a_due_delivery_wakes_the_workers_long_before_their_poll(
    postgres_url, tmp_path, receiver
):
    database = storage.Database(postgres_url)
    database.migrate()
    api = Api(database, tmp_path, webhook_poll_seconds=30)
    try:
        webhook = api.hook(receiver.url, kinds=[Kind.CREATED]).webhook
        # The workers looked once at start-up and found nothing: they now sleep for 30 s.
        time.sleep(1.0)
        started = time.monotonic()
        api.simulation("woken")
        (first,) = receiver.take(1, timeout=10)
        assert time.monotonic() - started < 2.0
        # A redelivery wakes them too.
        (delivery,) = api.settled_deliveries(webhook.id)
        time.sleep(0.5)
        started = time.monotonic()
        api.webhooks.RedeliverWebhook(
            wpb.RedeliverWebhookRequest(webhook_id=webhook.id, delivery_id=delivery.id),
            metadata=api.key,
        )
        (again,) = receiver.take(1, timeout=10)
        assert time.monotonic() - started < 2.0
        assert again.event == first.event
    finally:
        api.close()
        database.dispose()


def test_the_background_maintenance_purges_settled_deliveries_past_the_retention(
    database, tmp_path, receiver
):
    from sqlalchemy import delete

    from service.app.webhooks import WebhookDeliveryRetention
    from storage.schema import periodic_runs

    api = Api(database, tmp_path)
    try:
        webhook = api.hook(receiver.url, kinds=[Kind.CREATED, Kind.STATUS_CHANGED]).webhook
        api.start(api.simulation("kept-a-while"))
        receiver.take(2)
        old, recent = api.settled_deliveries(webhook.id)[::-1]
        # The older one was settled eight days ago.
        eight_days_ago = datetime.now(UTC) - timedelta(days=8)
        database.run(
            lambda uow: uow.webhook_deliveries.settle(
                old.id, eight_days_ago, state="DELIVERED", response_code=204, latency_ms=1
            )
        )
    finally:
        api.close()
    # The purge runs once per interval across servers: make it due for the next one.
    with database.engine.begin() as connection:
        connection.execute(
            delete(periodic_runs).where(periodic_runs.c.name == "webhook-delivery-purge")
        )

    restarted = Api(database, tmp_path, webhook_delivery_retention_days=7)
    try:
        deadline = time.monotonic() + 10
        while True:
            left = restarted.webhooks.ListWebhookDeliveries(
                wpb.ListWebhookDeliveriesRequest(webhook_id=webhook.id), metadata=api.key
            ).deliveries
            if len(left) < 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert [d.id for d in left] == [recent.id]
        # Claimed for the interval: another server's run right away purges nothing.
        assert WebhookDeliveryRetention(database, keep=timedelta(days=0)).purge_expired() == 0
    finally:
        restarted.close()
